"""Fuzzing with mutated real sessions: bad input never crashes the broker, never disturbs
another client, never leaves anything behind.

Sessions of real clients (pika, py-amqp: publish, get, consume, confirms, transactions,
topology) are recorded through a proxy, then replayed with damage (see `tests.fuzz_sessions`)
against a live broker, many at once, while a healthy pika client publishes and gets with
confirms beside them. Each damaged session sends everything, then end-of-file, and the broker
must hang up within a few seconds. Afterwards no error may have been logged (an internal error
is a bug: a failure meant for one connection), every damaged connection must be gone with
everything it held (channels, consumers, unacked deliveries, exclusive queues), and the healthy
client must not have missed a message.

`make test` runs FUZZ_CASES cases (a few seconds); `pytest tests/test_fuzz.py --fuzz-cases
20000` runs longer, and `--fuzz-seed N` repeats a run. A failing case is written to
.artifacts/fuzz/ with its seed and number.
"""

from __future__ import annotations

import logging
import random
import threading
from pathlib import Path

import pika
import pytest
import trio

from amqp_lite import Broker
from tests.fuzz_sessions import Session, mutate, record

CASE_DEADLINE = 15.0  # a refused login is hung up on after 3 s, a closing connection after 3 s
AT_ONCE = 24  # damaged sessions in flight together
ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts" / "fuzz"


class HealthyClient:
    """Publishes with confirms and gets each message back, until told to stop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.round_trips = 0
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(self.url))
            channel = connection.channel()
            channel.confirm_delivery()
            channel.queue_declare("healthy")
            while not self.stop.is_set():
                body = f"healthy {self.round_trips}".encode()
                channel.basic_publish("", "healthy", body, mandatory=True)
                method, _, got = channel.basic_get("healthy")
                assert method is not None and got == body, (method, got, body)
                channel.basic_ack(method.delivery_tag)
                self.round_trips += 1
            assert channel.queue_declare("healthy", passive=True).method.message_count == 0
            connection.close()
        except BaseException as error:  # reported by the test
            self.failure = error


async def _replay(port: int, data: bytes) -> None:
    """Send a session and end-of-file, reading whatever comes back, until the broker hangs up."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        async with trio.open_nursery() as nursery:

            async def send() -> None:
                try:
                    await stream.send_all(data)
                    await stream.send_eof()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the broker hung up first: it may

            nursery.start_soon(send)
            try:
                while await stream.receive_some(65536):
                    pass
            except trio.BrokenResourceError:
                pass  # a reset is a hang-up too
    finally:
        await trio.aclose_forcefully(stream)


def _save(seed: int, number: int, data: bytes) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"seed{seed}-case{number}.bin"
    path.write_bytes(data)
    return path


async def test_damaged_real_sessions_leave_the_broker_and_its_clients_whole(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    cases = int(request.config.getoption("fuzz_cases"))
    seed_option = request.config.getoption("fuzz_seed")
    seed = int(seed_option) if seed_option is not None else random.randrange(2**32)
    caplog.set_level(logging.WARNING, logger="amqp_lite")
    async with Broker(max_message_size=1 << 20) as broker:
        sessions: list[Session] = await trio.to_thread.run_sync(record, broker.port)
        assert all(len(s.frames) > 8 for s in sessions), [(s.name, len(s.frames)) for s in sessions]
        for session in sessions:  # undamaged, each replays cleanly
            with trio.fail_after(CASE_DEADLINE):
                await _replay(broker.port, session.bytes())

        healthy = HealthyClient(broker.url)
        rng = random.Random(seed)
        failures: list[str] = []
        limiter = trio.CapacityLimiter(AT_ONCE)

        async def case(number: int, data: bytes) -> None:
            async with limiter:
                with trio.move_on_after(CASE_DEADLINE) as timer:
                    await _replay(broker.port, data)
                if timer.cancelled_caught:
                    path = _save(seed, number, data)
                    failures.append(
                        f"case {number}: not hung up on within {CASE_DEADLINE} s ({path})"
                    )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, healthy.run)
            async with trio.open_nursery() as fuzzing:
                for number in range(cases):
                    session, other = rng.choice(sessions), rng.choice(sessions)
                    fuzzing.start_soon(case, number, mutate(session, other, rng))
            healthy.stop.set()

        assert not failures, f"seed {seed}: " + "; ".join(failures[:5])
        assert healthy.failure is None, (
            f"seed {seed}: the healthy client failed: {healthy.failure!r}"
        )
        assert healthy.round_trips > 0
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, f"seed {seed}: " + "\n".join(
            f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in errors[:3]
        )

        # Nothing is left of the damaged sessions.
        await trio.testing.wait_all_tasks_blocked()
        assert broker.server.connections == set()
        node = broker.node
        assert node is not None
        assert not node.tracking.vhost_connections and not node.tracking.user_channels
        for vhost in node.vhosts.values():
            for queue in vhost.queues.values():
                assert queue.exclusive_owner is None, queue.name
                assert (queue.consumer_count, queue.unacked_count) == (0, 0), queue.name
