"""Topics: a topic exchange matches dotted routing keys against patterns with wildcards.

A routing key is a list of words separated by dots, here <region>.<service>.<event>.
A binding pattern uses the same form, where "*" stands for exactly one word and "#" for
zero or more words. A message goes to every queue with at least one matching pattern, once,
even when several of that queue's patterns match.
"""

import os

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
EXCHANGE = "events"
BINDINGS = {
    "europe-desk": ["eu.#"],  # anything from Europe, however many words follow
    "order-service": ["*.orders.*"],  # orders events of any region: exactly three words
    "alerts": ["#.failed", "eu.payments.*"],  # any failure, and every EU payment event
}
KEYS = [
    "eu.orders.created",
    "us.orders.cancelled",
    "eu.payments.failed",
    "us.payments.card.failed",
    "eu.payments.refunded",
    "eu",  # "eu.#" matches it too: "#" can stand for no words at all
    "asia.shipping.delivered",
]

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
channel.exchange_declare(exchange=EXCHANGE, exchange_type="topic")

queues: dict[str, str] = {}  # our name for the queue -> the name the broker gave it
for name, patterns in BINDINGS.items():
    queues[name] = channel.queue_declare(queue="", exclusive=True).method.queue
    for pattern in patterns:
        channel.queue_bind(queue=queues[name], exchange=EXCHANGE, routing_key=pattern)
    print(f"{name:13} is bound with {patterns}")

for key in KEYS:
    channel.basic_publish(exchange=EXCHANGE, routing_key=key, body=b"")
print(f"published {len(KEYS)} events")


def drain(queue: str) -> list[str]:
    """The routing keys of everything in the queue right now (basic_get: see 04)."""
    keys = []
    while True:
        method, _properties, _body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            return keys
        keys.append(method.routing_key)


for name, queue in queues.items():
    print(f"{name:13} got {drain(queue)}")
# eu.payments.failed matched both patterns of alerts and still arrived there once.
# asia.shipping.delivered matched no pattern, so it reached no queue and was dropped.

channel.exchange_delete(exchange=EXCHANGE)
connection.close()
