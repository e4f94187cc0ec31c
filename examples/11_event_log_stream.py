"""An event log on a stream: readers replay it from any point, and reading removes nothing.

A stream queue (x-queue-type: stream) keeps every message it is given, in order, each at an
offset, until its retention (here x-max-age, seven days) removes old ones. Consumers do not
take messages away: each reads from where its x-stream-offset says ("first", "last", "next",
an offset, a point in time) and every delivery says where it was (the x-stream-offset header).
A stream consumer must set a prefetch count and acknowledge what it gets, as a classic
consumer would.

Here a service writes order events; a new reader replays the whole log from the start, and an
auditor reads only what happened since a moment it cares about.
"""

import datetime
import os
import time

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
STREAM = "order-events"

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
channel.queue_delete(STREAM)  # start afresh if an earlier run left it
# Streams are durable, and neither exclusive nor auto-delete.
channel.queue_declare(
    queue=STREAM, durable=True, arguments={"x-queue-type": "stream", "x-max-age": "7D"}
)
channel.confirm_delivery()  # each publish returns once the event is on disk


def write(events):
    for event in events:
        channel.basic_publish(exchange="", routing_key=STREAM, body=event.encode())


def read(offset, until):
    """The events from `offset` on, up to the event `until` (a reader of a real log would go
    on reading what comes next, for as long as it runs)."""
    reader = connection.channel()
    reader.basic_qos(prefetch_count=100)  # required for a stream consumer
    events = []

    def on_event(ch, method, properties, body):
        events.append((properties.headers["x-stream-offset"], body.decode()))
        ch.basic_ack(method.delivery_tag)

    reader.basic_consume(STREAM, on_event, arguments={"x-stream-offset": offset})
    deadline = time.monotonic() + 10
    while not (events and events[-1][1] == until) and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.1)
    reader.close()
    return events


write(["order 1 placed", "order 2 placed", "order 1 paid"])
time.sleep(1.1)  # an AMQP timestamp counts whole seconds
since = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
write(["order 2 cancelled", "order 3 placed"])

replayed = read("first", until="order 3 placed")
for offset, event in replayed:
    print(f"new reader  at offset {offset}: {event}")
recent = read(since, until="order 3 placed")
for offset, event in recent:
    print(f"auditor     at offset {offset}: {event}")
print(
    f"the new reader replayed {len(replayed)} events from the start; the auditor read "
    f"{len(recent)} since {since:%H:%M:%S}, beginning with {recent[0][1]!r}"
)

channel.queue_delete(STREAM)
connection.close()
