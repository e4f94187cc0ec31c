"""amqp-lite: an AMQP 0-9-1 broker on trio that RabbitMQ clients use unchanged."""

__version__ = "0.1.0"

from amqp_lite.broker import Broker, ThreadedBroker, run_in_thread

__all__ = ["Broker", "ThreadedBroker", "__version__", "run_in_thread"]
