"""How long a broker takes to recover a large store at start-up.

    python tests/bench/recovery.py --messages 1000000 --queues 10 [--dir DIR]

Fills a store through the domain (as publishes would), closes it, then times opening it again:
recovery of topology and every persistent message into its queue.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from amqp_lite.storage import open_store
from amqp_lite.wire import Properties
from amqp_lite.wire.properties import encode_properties
from vhosts import Message, Node


def fill(directory: Path, messages: int, queues: int, size: int) -> None:
    node = Node(store=open_store(directory))
    vhost = node.vhosts["/"]
    targets = [vhost.declare_queue(f"q{i}", None, durable=True) for i in range(queues)]
    properties = Properties(delivery_mode=2, content_type="application/octet-stream")
    raw = encode_properties(properties)
    body = b"x" * size
    store = node.store
    assert store is not None
    for n in range(messages):
        targets[n % queues].enqueue(Message("", "k", properties, body, raw))
        if n % 50_000 == 0:
            store.flush()
    store.flush()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queues", type=int, default=10)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="amqp-lite-recovery-"))
    started = time.perf_counter()
    fill(directory, args.messages, args.queues, args.size)
    print(f"filled {args.messages} messages in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    node = Node(store=open_store(directory))
    elapsed = time.perf_counter() - started
    total = sum(q.message_count for q in node.vhosts["/"].queues.values())
    print(f"recovered {total} messages in {args.queues} queues in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
