"""What the sans-IO core costs per message: a fixed in-process workload, no sockets, no event loop.

    python tests/bench/core_cost.py                 # CPU microseconds per message, best of runs
    python tests/bench/core_cost.py --instructions  # instructions per message, under callgrind

It drives `ServerConnection`s on a `Node` (with a store, as `amqp-lite serve` has) the way
`amqp-lite bench` drives a broker. What is measured is the calls into the connections; the
client's side in them only hands over pre-encoded bytes and counts what comes back by length:

  publish      transient 100 B messages under publisher confirms, 256 a read, acks drained
  consume      those messages with basic.qos 500 and a multiple ack every 50 deliveries
  round trip   one message at a time, publisher connection -> auto-ack consumer connection

Instructions are counted by valgrind's callgrind, only inside the measured calls, for two
message counts; their difference over the difference in messages cancels the setup. Unlike
CPU time on a shared machine, the figure is the same run after run (and moves with any change
to the code run, however small). It needs only the `ServerConnection` interface, so it measures
any checkout: run it with that checkout's interpreter (`cd other && .venv/bin/python
/path/to/core_cost.py`), or with PYTHONPATH naming the checkout.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PHASES = ("publish", "consume", "roundtrip")
BODY = b"x" * 100
PUBLISH_BATCH = 256  # publishes per read, as amqp-lite bench writes them
PREFETCH = 500
ACK_EVERY = 50


class Rig:
    """A node with a store, and two connections past the handshake."""

    def __init__(self, directory: str) -> None:
        from amqp_lite.connection import ServerConnection
        from amqp_lite.storage import open_store
        from vhosts import Node

        self.store = open_store(directory)
        self.node = Node(store=self.store)
        self.publisher = _open(ServerConnection(self.node))
        self.consumer = _open(ServerConnection(self.node))

    def call(self, connection: Any, channel: int, method: Any) -> bytes:
        """Send `method`, write the store as the server would, and return the reply."""
        from amqp_lite.wire.frames import encode_method

        connection.receive_data(encode_method(channel, method))
        store = self.store
        if store.has_pending:  # replies about topology wait for the store's write
            batch, upto = store.take_batch()
            store.write_batch(batch)
            store.batch_written(upto)
            for each in (self.publisher, self.consumer):
                each.store_progressed()
        reply = connection.data_to_send()
        assert reply[:1] == b"\x01" and struct.unpack_from(">H", reply, 1)[0] == channel, reply
        return reply


def _open(connection: Any) -> Any:
    from amqp_lite.wire import methods
    from amqp_lite.wire.frames import PROTOCOL_HEADER, encode_method

    connection.receive_data(PROTOCOL_HEADER)
    connection.data_to_send()
    response = b"\0guest\0guest"
    properties = {"product": "core-cost", "capabilities": {"publisher_confirms": True}}
    start_ok = methods.ConnectionStartOk(
        client_properties=properties, mechanism="PLAIN", response=response, locale="en_US"
    )
    tune_ok = methods.ConnectionTuneOk(channel_max=2047, frame_max=131072, heartbeat=0)
    for method in (start_ok, tune_ok, methods.ConnectionOpen(virtual_host="/")):
        connection.receive_data(encode_method(0, method))
    assert b"\x00\x0a\x00\x29" in connection.data_to_send(), "no connection.open-ok"
    return connection


def message_bytes(channel: int, queue: str) -> bytes:
    from amqp_lite.wire import methods
    from amqp_lite.wire.frames import encode_content, encode_method

    publish = methods.BasicPublish(exchange="", routing_key=queue)
    return encode_method(channel, publish) + encode_content(channel, 60, BODY, 131072, None)


Timer = Callable[[Callable[[], Any]], Any]  # runs the measured calls of a phase


def publish_phase(publisher: Any, queue: str, n: int, measured: Timer) -> None:
    """`n` confirmed publishes on channel 1 (in confirm mode), PUBLISH_BATCH a read."""
    message = message_bytes(1, queue)
    batches = [message * PUBLISH_BATCH] * (n // PUBLISH_BATCH)
    if n % PUBLISH_BATCH:
        batches.append(message * (n % PUBLISH_BATCH))

    def run() -> bytes:
        last = b""
        receive, drain = publisher.receive_data, publisher.data_to_send
        for batch in batches:
            receive(batch)
            last = drain()
        return last

    last_ack = measured(run)
    # basic.ack multiple: the last read's ack names the n-th publish
    assert last_ack[:1] == b"\x01" and last_ack[7:11] == b"\x00\x3c\x00\x50", last_ack
    assert struct.unpack_from(">Q", last_ack, 11)[0] == n, last_ack


def consume_phase(rig: Rig, queue: str, n: int, measured: Timer) -> None:
    """Consume the `n` messages in `queue` on channel 2, acking every ACK_EVERY."""
    from amqp_lite.wire import methods
    from amqp_lite.wire.frames import encode_method

    consumer = rig.consumer
    rig.call(consumer, 2, methods.ChannelOpen())
    rig.call(consumer, 2, methods.BasicQos(prefetch_count=PREFETCH))
    consume_ok = encode_method(2, methods.BasicConsumeOk(consumer_tag="bench"))
    one = _delivery_size(queue)
    acks = [encode_method(2, methods.BasicAck(delivery_tag=t, multiple=True)) for t in range(n + 1)]
    start = encode_method(2, methods.BasicConsume(queue=queue, consumer_tag="bench"))

    def run() -> int:
        receive, drain = consumer.receive_data, consumer.data_to_send
        receive(start)
        data = drain()
        assert data.startswith(consume_ok)
        size = len(data) - len(consume_ok)
        received = acked = 0
        while received < n:
            assert size and size % one == 0, (size, one)
            received += size // one
            upto = received - received % ACK_EVERY if received < n else n
            receive(b"".join(acks[t] for t in range(acked + ACK_EVERY, upto + 1, ACK_EVERY)))
            if upto == n and n % ACK_EVERY:
                receive(acks[n])
            acked = upto
            size = len(drain())
        return received

    assert measured(run) == n


def roundtrip_phase(rig: Rig, queue: str, n: int, measured: Timer) -> None:
    """`n` messages one at a time from the publisher's channel 3 to an auto-ack consumer."""
    from amqp_lite.wire import methods

    publisher, consumer = rig.publisher, rig.consumer
    rig.call(consumer, 1, methods.ChannelOpen())
    rig.call(consumer, 1, methods.QueueDeclare(queue=queue))
    rig.call(consumer, 1, methods.BasicConsume(queue=queue, consumer_tag="rtt", no_ack=True))
    rig.call(publisher, 3, methods.ChannelOpen())
    message = message_bytes(3, queue)
    one = _delivery_size(queue, "rtt")

    def run() -> None:
        send, quiet = publisher.receive_data, publisher.data_to_send
        deliver = consumer.data_to_send
        for _ in range(n):
            send(message)
            quiet()  # nothing to say: as the publisher's writer would find
            assert len(deliver()) == one

    measured(run)


def _delivery_size(queue: str, tag: str = "bench") -> int:
    from amqp_lite.wire import methods
    from amqp_lite.wire.frames import encode_delivery

    deliver = methods.BasicDeliver(
        consumer_tag=tag, delivery_tag=1, redelivered=False, exchange="", routing_key=queue
    )
    return len(encode_delivery(2, deliver, b"\x00\x00", BODY, 131072))


def run_phase(phase: str, n: int, measured: Timer) -> None:
    """Set up, then run `phase` with `n` messages; only what `measured` runs is measured."""
    with tempfile.TemporaryDirectory(prefix="core-cost-") as directory:
        rig = Rig(directory)
        try:
            _run_phase(rig, phase, n, measured)
        finally:
            rig.store.close()


def _run_phase(rig: Rig, phase: str, n: int, measured: Timer) -> None:
    from amqp_lite.wire import methods

    publisher = rig.publisher
    rig.call(publisher, 1, methods.ChannelOpen())
    rig.call(publisher, 1, methods.ConfirmSelect())
    rig.call(publisher, 1, methods.QueueDeclare(queue="q"))
    if phase == "roundtrip":
        roundtrip_phase(rig, "rtt", n, measured)
        return
    publish_phase(publisher, "q", n, measured if phase == "publish" else _unmeasured)
    if phase == "consume":
        consume_phase(rig, "q", n, measured)


def _unmeasured(run: Callable[[], Any]) -> Any:
    return run()


def _toggled(run: Callable[[], Any]) -> Any:
    """Run through itertools.starmap, whose C iterator callgrind switches collection on for."""
    return next(itertools.starmap(run, [()]))


def cpu_us_per_message(phase: str, n: int, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        spent = 0.0

        def timed(run: Callable[[], Any]) -> Any:
            nonlocal spent
            start = time.process_time()
            try:
                return run()
            finally:
                spent = time.process_time() - start

        run_phase(phase, n, timed)
        best = min(best, spent)
    return best * 1e6 / n


def instructions(phase: str, n: int) -> int:
    """Instructions callgrind counts inside the measured calls of one run."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        "--collect-atstart=no",
        "--toggle-collect=starmap_next",
        sys.executable,
        __file__,
        "--child",
        phase,
        str(n),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or found is None:
        raise SystemExit(f"callgrind run failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return int(found.group(1))


def instructions_per_message(phase: str, low: int, high: int, jobs: int) -> float:
    """(instructions at `high` messages - at `low`) / (`high` - `low`): setup cancels out."""
    with ThreadPoolExecutor(jobs) as pool:
        at_low, at_high = pool.map(lambda n: instructions(phase, n), (low, high))
    return (at_high - at_low) / (high - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--phase", choices=PHASES, action="append", help="default: all")
    parser.add_argument("--messages", type=int, default=20000, help="CPU mode (default 20000)")
    parser.add_argument("--runs", type=int, default=5, help="CPU mode: best of (default 5)")
    parser.add_argument(
        "--counts", default="1000,3000", help="instructions mode: the two message counts"
    )
    parser.add_argument("--jobs", type=int, default=2, help="instructions mode: at once")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_phase(args.child[0], int(args.child[1]), _toggled)
        return
    import amqp_lite

    print(f"core cost of {os.path.dirname(os.path.dirname(amqp_lite.__file__))}")
    for phase in args.phase or PHASES:
        if args.instructions:
            low, high = (int(c) for c in args.counts.split(","))
            per = instructions_per_message(phase, low, high, args.jobs)
            print(f"  {phase:10} {per:10,.0f} instructions/message")
        else:
            cpu = cpu_us_per_message(phase, args.messages, args.runs)
            print(f"  {phase:10} {cpu:10.2f} us CPU/message")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
