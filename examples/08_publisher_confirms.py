"""Publisher confirms: the broker tells the publisher when it has taken charge of each message.

After confirm.select (pika: confirm_delivery) the broker acks every publish on the channel:
once a message is in all the queues it was routed to (on disk, for a persistent message in a
durable queue), or once it is known to reach no queue. Add mandatory=True and a message that
reaches no queue is first handed back with basic.return, then acked. pika's BlockingChannel
waits for each confirm inside basic_publish and raises UnroutableError for a returned message.
"""

import logging
import os
import time

import pika
from pika.exceptions import UnroutableError

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
QUEUE = "confirmed"
COUNT = 200

# pika logs a warning of its own for each returned message; we print our own line instead.
logging.getLogger("pika").setLevel(logging.ERROR)

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
channel.queue_declare(queue=QUEUE, durable=True)
channel.confirm_delivery()

# 1. Unroutable: no queue is named "nowhere", so the default exchange cannot route this.
try:
    channel.basic_publish(exchange="", routing_key="nowhere", body=b"lost?", mandatory=True)
except UnroutableError as error:
    returned = error.messages[0]
    print(
        f"returned: {returned.body.decode()!r} came back with "
        f"{returned.method.reply_code} {returned.method.reply_text}"
    )

# 2. A stream of persistent messages, each confirmed before the next is sent. Waiting for each
# confirm is the simplest correct way; it is also the slowest, as every message waits a round
# trip (and for a persistent one, the disk). Faster publishers keep many messages in flight.
start = time.monotonic()
for number in range(COUNT):
    channel.basic_publish(
        exchange="",
        routing_key=QUEUE,
        body=f"message {number}".encode(),
        properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        mandatory=True,
    )
elapsed = time.monotonic() - start
print(f"confirmed: {COUNT} persistent messages in {elapsed * 1000:.0f} ms")

depth = channel.queue_declare(queue=QUEUE, passive=True).method.message_count
print(f"queue {QUEUE!r} holds {depth} messages")

channel.queue_delete(queue=QUEUE)
connection.close()
