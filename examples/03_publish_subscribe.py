"""Publish/subscribe: a fanout exchange gives every bound queue its own copy of each message.

The publisher only knows the exchange; it does not know who listens. Each subscriber makes
its own private queue (server-named, exclusive: it goes away with the connection) and binds it
to the exchange. A fanout exchange ignores the routing key and copies each message to all of
its bound queues. A message published while nobody is bound is simply dropped.
"""

import os

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
EXCHANGE = "news"

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
channel.exchange_declare(exchange=EXCHANGE, exchange_type="fanout")

# Nobody is subscribed yet: the exchange has no queue to copy this to, so it is lost.
channel.basic_publish(exchange=EXCHANGE, routing_key="", body=b"too early")
print("published 'too early' before anyone subscribed")

received: dict[str, list[str]] = {}


def subscribe(subscriber: str) -> None:
    # queue="" asks the broker to pick a unique name (amq.gen-...).
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=queue, exchange=EXCHANGE)  # fanout: no routing key needed
    received[subscriber] = []

    def on_message(channel, method, properties, body: bytes) -> None:
        received[subscriber].append(body.decode())

    channel.basic_consume(queue=queue, on_message_callback=on_message, auto_ack=True)


subscribe("mobile app")
subscribe("email digest")

headlines = ["rain tomorrow", "trains on time", "cat elected mayor"]
for headline in headlines:
    channel.basic_publish(exchange=EXCHANGE, routing_key="", body=headline.encode())
print(f"published {len(headlines)} headlines")

# Let pika run the callbacks until every subscriber has every headline (at most 5 s).
expected = len(headlines) * len(received)
for _ in range(100):
    if sum(len(messages) for messages in received.values()) >= expected:
        break
    connection.process_data_events(time_limit=0.05)

for subscriber, messages in received.items():
    print(f"{subscriber} got {messages}")
if any(messages != headlines for messages in received.values()):
    raise SystemExit("a subscriber missed a headline, or got one it should not have")
print("every subscriber got every headline; nobody got 'too early'")

channel.exchange_delete(exchange=EXCHANGE)  # the exclusive queues go with the connection
connection.close()
