"""RPC with direct reply-to: ask a server over a queue and get the answer back, no reply queue.

The server consumes a request queue and publishes each answer to the default exchange, with
the request's reply_to as routing key and its correlation_id copied over. The client would
normally need a reply queue of its own; direct reply-to avoids that: the client consumes the
pseudo-queue "amq.rabbitmq.reply-to" (with auto_ack, and before it publishes any request) and
sends its requests with reply_to="amq.rabbitmq.reply-to" on that same channel. The broker
rewrites reply_to into a name that leads straight back to this channel.

The server runs in a thread on its own connection, as it would in a process of its own.
"""

import os
import threading
import uuid

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
REQUESTS = "word-count"
REPLY_TO = "amq.rabbitmq.reply-to"


def serve(ready: threading.Event, stop: threading.Event) -> None:
    """Answer each request (a sentence) with the number of words in it."""
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    channel.queue_declare(queue=REQUESTS, auto_delete=True)  # gone when the server stops
    ready.set()
    for method, properties, body in channel.consume(REQUESTS, inactivity_timeout=0.05):
        if stop.is_set():
            break
        if method is None:
            continue
        answer = str(len(body.decode().split()))
        # The broker replaced "amq.rabbitmq.reply-to" with a name for the client's channel.
        print(f"server: answering {body.decode()!r} to {properties.reply_to[:32]}...")
        channel.basic_publish(
            exchange="",  # the default exchange routes on reply_to...
            routing_key=properties.reply_to,
            # ...and correlation_id tells the client which question this answers.
            properties=pika.BasicProperties(correlation_id=properties.correlation_id),
            body=answer.encode(),
        )
        channel.basic_ack(method.delivery_tag)
    channel.cancel()
    connection.close()


ready, stop = threading.Event(), threading.Event()
# daemon: should the client fail, the program still ends instead of waiting for the server.
server = threading.Thread(target=serve, args=(ready, stop), daemon=True)
server.start()
ready.wait(5)

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
answers: dict[str, str] = {}  # correlation_id -> answer


def on_reply(channel, method, properties, body: bytes) -> None:
    answers[properties.correlation_id] = body.decode()


# First consume the reply-to pseudo-queue (auto_ack is required), then publish requests.
channel.basic_consume(queue=REPLY_TO, on_message_callback=on_reply, auto_ack=True)

questions = {str(uuid.uuid4()): text for text in ["hello world", "to be or not to be", ""]}
print(f"sending {len(questions)} requests to {REQUESTS!r}")
for correlation_id, text in questions.items():
    channel.basic_publish(
        exchange="",
        routing_key=REQUESTS,
        properties=pika.BasicProperties(reply_to=REPLY_TO, correlation_id=correlation_id),
        body=text.encode(),
    )

for _ in range(100):  # wait at most 5 s for all the answers
    if len(answers) == len(questions):
        break
    connection.process_data_events(time_limit=0.05)

for correlation_id, text in questions.items():
    print(f"{text!r} has {answers.get(correlation_id, '?')} words")
if len(answers) < len(questions):
    raise SystemExit("some answers did not arrive")
print("every request got its answer")

stop.set()
server.join()
connection.close()
