"""Work queues: several workers share the tasks of one queue, each task done once.

Two workers consume the same queue. With prefetch_count=1 the broker sends a worker its next
task only after it acked the previous one, so a worker stuck on a long task does not hoard
the short ones: the idle worker picks them up. Acking after the work (not on delivery) means
a worker that dies mid-task leaves its task in the queue for another worker.

Each worker runs in its own thread with its own connection: pika connections are not
thread-safe, and a real deployment would run them as separate processes anyway.
"""

import os
import threading
import time

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
QUEUE = "tasks"
# Each dot is 0.1 s of pretend work, so the tasks take different times.
TASKS = ["resize photo ...", "send email .", "build report .....", "thumbnail .", "invoice ."]

done = threading.Semaphore(0)  # released once per finished task
stop = threading.Event()


def worker(name: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)  # at most one unacked task at a time
    # inactivity_timeout lets the loop look at `stop` even while the queue is empty.
    for method, _properties, body in channel.consume(QUEUE, inactivity_timeout=0.05):
        if stop.is_set():
            break
        if method is None:
            continue
        task = body.decode()
        print(f"{name} started  {task!r}")
        time.sleep(0.1 * task.count("."))
        print(f"{name} finished {task!r}")
        channel.basic_ack(method.delivery_tag)  # only now may the broker forget the task
        done.release()
    channel.cancel()
    connection.close()


connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
# durable=True: the queue survives a broker restart. Persistent messages (delivery_mode 2) in it
# survive too. Both matter for tasks you cannot afford to lose.
channel.queue_declare(queue=QUEUE, durable=True)

workers = [threading.Thread(target=worker, args=(f"worker-{n}",)) for n in (1, 2)]
for thread in workers:
    thread.start()

for task in TASKS:
    channel.basic_publish(
        exchange="",
        routing_key=QUEUE,
        body=task.encode(),
        properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
    )
print(f"queued {len(TASKS)} tasks")

for _ in TASKS:
    if not done.acquire(timeout=10):
        raise SystemExit("a task was not done in time")
stop.set()
for thread in workers:
    thread.join()
print(f"all {len(TASKS)} tasks done, by two workers")

channel.queue_delete(queue=QUEUE)
connection.close()
