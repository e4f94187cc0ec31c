"""Hello world: put one message in a queue, then take it out again.

The smallest useful AMQP program. A producer publishes to the default exchange (named ""),
which routes a message to the queue whose name equals the routing key. A consumer then
subscribes to that queue and the broker pushes the message to it.
"""

import os

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
QUEUE = "hello"

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()

# Declaring is idempotent: it creates the queue, or checks that the existing one matches.
# Producer and consumer both declare it, so whichever starts first is fine.
channel.queue_declare(queue=QUEUE)

# The default exchange binds every queue under its own name: routing_key=QUEUE reaches it.
channel.basic_publish(exchange="", routing_key=QUEUE, body=b"Hello, world!")
print(f"sent 'Hello, world!' to queue {QUEUE!r}")


received: list[bytes] = []


def on_message(channel, method, properties, body: bytes) -> None:
    received.append(body)
    print(f"received {body.decode()!r} from queue {QUEUE!r}")
    channel.stop_consuming()  # one message is all we wait for


# auto_ack=True: the broker forgets the message as soon as it sends it (see 02 for manual acks).
channel.basic_consume(queue=QUEUE, on_message_callback=on_message, auto_ack=True)
connection.call_later(5, channel.stop_consuming)  # never wait forever if something is wrong
channel.start_consuming()
if not received:
    raise SystemExit("no message arrived")

channel.queue_delete(queue=QUEUE)  # leave the broker as we found it
connection.close()
