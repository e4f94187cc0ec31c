"""A task queue on a quorum queue, safe from poison messages.

A poison message is one that kills the worker that takes it. With a plain queue it comes back
to the next worker, which dies too, forever. A quorum queue counts every delivery that was not
acked, and with x-delivery-limit it stops: once a message has come back more often than the
limit, the broker dead-letters it (reason "delivery_limit") instead of delivering it again.

    tasks (quorum, x-delivery-limit 2) ──(returned a third time)──> tasks.poison

- Each worker takes one task at a time (prefetch 1). A worker that dies with a task unacked
  (here: its channel closes) puts the task back at the front of the queue, counted.
- Every redelivery carries the x-delivery-count header: how often the task came back, which a
  worker can log or act on.
- The queue's dead-letter exchange is the default exchange with routing key "tasks.poison", so a
  task past the limit lands in that queue, with an x-death header saying why, for a person to
  look at. The other tasks are done meanwhile.

Quorum queues are durable and keep every message on disk, so nothing here is lost if the
broker restarts either.
"""

import os

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
TASKS, POISON = "tasks", "tasks.poison"
LIMIT = 2  # deliveries after the first that may fail before the task is set aside

connection = pika.BlockingConnection(pika.URLParameters(URL))
setup = connection.channel()
setup.queue_declare(queue=POISON, durable=True, arguments={"x-queue-type": "quorum"})
setup.queue_declare(
    queue=TASKS,
    durable=True,
    arguments={
        "x-queue-type": "quorum",
        "x-delivery-limit": LIMIT,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": POISON,
    },
)
setup.confirm_delivery()  # each publish returns once the task is on disk
for task in ("resize photo 1", "resize corrupt.jpg", "resize photo 2", "resize photo 3"):
    setup.basic_publish(exchange="", routing_key=TASKS, body=task.encode())
print(f"queued 4 tasks in quorum queue {TASKS!r}, delivery limit {LIMIT}")

done: list[str] = []
crashes = 0
while len(done) < 3:
    worker = connection.channel()  # a worker process, as far as the broker can tell
    worker.basic_qos(prefetch_count=1)
    for method, properties, body in worker.consume(TASKS, inactivity_timeout=2):
        if method is None:
            raise SystemExit("the tasks did not all come")
        task = body.decode()
        count = (properties.headers or {}).get("x-delivery-count", 0)
        if "corrupt" in task:
            crashes += 1
            print(f"worker crashed on {task!r} (delivered before: {count} times)")
            worker.close()  # dies with the task unacked: back to the front, counted
            break
        worker.basic_ack(method.delivery_tag)
        done.append(task)
        print(f"done: {task!r}")
        if len(done) == 3:
            worker.cancel()
            worker.close()
            break

method, properties, body = setup.basic_get(POISON, auto_ack=True)
if method is None:
    raise SystemExit("the poison task was not set aside")
(death,) = properties.headers["x-death"]
print(
    f"set aside after {crashes} crashes: {body.decode()!r} in {POISON!r} "
    f"(reason {death['reason']}, from {death['queue']!r})"
)

setup.queue_delete(queue=TASKS)
setup.queue_delete(queue=POISON)
connection.close()
