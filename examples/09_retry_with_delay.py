"""Retry with delay: failed messages wait in a second queue, then come back to be tried again.

Two queues, both fed by the default exchange, point at each other through dead-lettering:

    jobs ──(worker rejects it)──> jobs.wait ──(its 200 ms TTL runs out)──> jobs

- "jobs" has x-dead-letter-exchange "" and x-dead-letter-routing-key "jobs.wait": a message the
  worker rejects without requeueing is republished there instead of being dropped.
- "jobs.wait" has no consumer, x-message-ttl 200 (ms) and a dead-letter routing key "jobs":
  a message that waited 200 ms expires and is dead-lettered back to "jobs".

Each time a message is dead-lettered the broker updates its x-death header: one entry per
(queue, reason), with a count. The count of the ("jobs", "rejected") entry is how many times
the worker already failed on this message, so the worker knows the attempt number without
keeping any state. Here the job fails twice, then succeeds.
"""

import os
import time

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
WORK, WAIT = "jobs", "jobs.wait"
DELAY_MS = 200
FAILURES = 2  # the first two attempts fail

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
channel.queue_declare(
    queue=WORK,
    arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": WAIT},
)
channel.queue_declare(
    queue=WAIT,
    arguments={
        "x-message-ttl": DELAY_MS,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": WORK,
    },
)


def attempt_number(properties: pika.BasicProperties) -> int:
    """1 for a fresh message; 1 + the times the worker rejected it so far otherwise."""
    deaths = (properties.headers or {}).get("x-death", [])
    rejected = sum(d["count"] for d in deaths if d["queue"] == WORK and d["reason"] == "rejected")
    return 1 + rejected


channel.basic_publish(exchange="", routing_key=WORK, body=b"charge card 4242")
start = time.monotonic()
print(f"published a job to {WORK!r}; it will fail {FAILURES} times, {DELAY_MS} ms apart")

for method, properties, body in channel.consume(WORK, inactivity_timeout=5):
    if method is None:
        raise SystemExit("the job did not come back")
    attempt = attempt_number(properties)
    at = f"{(time.monotonic() - start) * 1000:4.0f} ms"
    if attempt <= FAILURES:
        print(f"{at}: attempt {attempt} at {body.decode()!r} failed, retrying in {DELAY_MS} ms")
        # requeue=False: do not put it back in "jobs" at once; dead-letter it to "jobs.wait".
        channel.basic_reject(method.delivery_tag, requeue=False)
    else:
        print(f"{at}: attempt {attempt} at {body.decode()!r} succeeded")
        channel.basic_ack(method.delivery_tag)
        break

channel.cancel()
channel.queue_delete(queue=WORK)
channel.queue_delete(queue=WAIT)
connection.close()
