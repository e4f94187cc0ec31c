"""Headers: a headers exchange routes on message header values and ignores the routing key.

Each binding carries a table of header values to compare, plus "x-match": "all" means every
listed header must be present with an equal value, "any" means one is enough. Headers of the
message that a binding does not list do not matter.
"""

import os

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
EXCHANGE = "documents"
BINDINGS = {
    # Only PDF invoices: both headers must match.
    "pdf-invoices": {"x-match": "all", "format": "pdf", "kind": "invoice"},
    # Anything urgent, and anything in German: either header is enough.
    "fast-lane": {"x-match": "any", "priority": "urgent", "lang": "de"},
}
MESSAGES = [
    ("march invoice", {"format": "pdf", "kind": "invoice", "lang": "en"}),
    ("draft invoice", {"format": "docx", "kind": "invoice"}),
    ("Rechnung April", {"format": "pdf", "kind": "invoice", "lang": "de"}),
    ("outage report", {"format": "txt", "priority": "urgent"}),
    ("lunch menu", {"format": "pdf"}),
]

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
channel.exchange_declare(exchange=EXCHANGE, exchange_type="headers")

queues: dict[str, str] = {}  # our name for the queue -> the name the broker gave it
for name, match in BINDINGS.items():
    queues[name] = channel.queue_declare(queue="", exclusive=True).method.queue
    # The values to match go in the binding's arguments; the routing key is not used.
    channel.queue_bind(queue=queues[name], exchange=EXCHANGE, arguments=match)
    print(f"{name:12} is bound with {match}")

for text, headers in MESSAGES:
    properties = pika.BasicProperties(headers=headers)  # the headers are what gets matched
    channel.basic_publish(
        exchange=EXCHANGE, routing_key="", body=text.encode(), properties=properties
    )
print(f"published {len(MESSAGES)} documents")


def drain(queue: str) -> list[str]:
    """The bodies of everything in the queue right now (basic_get: see 04)."""
    bodies = []
    while True:
        method, _properties, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body.decode())


for name, queue in queues.items():
    print(f"{name:12} got {drain(queue)}")
# "lunch menu" is a PDF but not an invoice, and neither urgent nor German: no queue took it.

channel.exchange_delete(exchange=EXCHANGE)
connection.close()
