"""Routing: a direct exchange sends each message to the queues bound with its exact routing key.

Two queues listen to one exchange of log lines. "pager" wants only critical lines; "archive"
wants info, warning and critical. A queue may have several bindings, and one key may be bound
by several queues (critical goes to both). A key nobody bound (debug) reaches no queue.
"""

import os

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
EXCHANGE = "app-logs"
BINDINGS = {"pager": ["critical"], "archive": ["info", "warning", "critical"]}
LINES = [
    ("info", "user alice logged in"),
    ("debug", "cache hit ratio 0.93"),
    ("warning", "disk 85% full"),
    ("critical", "database unreachable"),
]

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
channel.exchange_declare(exchange=EXCHANGE, exchange_type="direct")

queues: dict[str, str] = {}  # our name for the queue -> the name the broker gave it
for name, keys in BINDINGS.items():
    queues[name] = channel.queue_declare(queue="", exclusive=True).method.queue
    for key in keys:
        channel.queue_bind(queue=queues[name], exchange=EXCHANGE, routing_key=key)
    print(f"{name} is bound with {keys}")

for severity, text in LINES:
    channel.basic_publish(exchange=EXCHANGE, routing_key=severity, body=text.encode())
print(f"published {len(LINES)} lines with keys {[severity for severity, _ in LINES]}")


def drain(queue: str) -> list[str]:
    """Everything in the queue right now. basic_get polls, which is fine for a demo;
    a real program would consume (see 01). The broker handles a channel's commands in order,
    so what we published above has been routed by the time these gets arrive."""
    bodies = []
    while True:
        method, _properties, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(f"{method.routing_key}: {body.decode()}")


for name, queue in queues.items():
    print(f"{name} got {drain(queue)}")

channel.exchange_delete(exchange=EXCHANGE)
connection.close()
