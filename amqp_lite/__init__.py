"""amqp-lite: an AMQP 0-9-1 broker on trio that RabbitMQ clients use unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from amqp_lite.version import __version__

__all__ = [
    "Broker",
    "Clock",
    "DefinitionsError",
    "ThreadedBroker",
    "TlsOptions",
    "__version__",
    "run_in_thread",
]

if TYPE_CHECKING:
    from amqp_lite.broker import Broker, ThreadedBroker, run_in_thread
    from amqp_lite.tls import TlsOptions
    from vhosts.clock import Clock
    from vhosts.definitions import DefinitionsError

# Imported on first use: the pytest plugin makes every pytest run import this package, and a run
# that never asks for a broker should not pay for trio and the codec.
_LAZY = {
    "Broker": "amqp_lite.broker",
    "ThreadedBroker": "amqp_lite.broker",
    "run_in_thread": "amqp_lite.broker",
    "TlsOptions": "amqp_lite.tls",
    "Clock": "vhosts.clock",
    "DefinitionsError": "vhosts.definitions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'amqp_lite' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
