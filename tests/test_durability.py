"""Durability over the wire: restarts and kill -9 never lose a confirmed persistent message."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pika
import pytest
from pika.exceptions import AMQPError

from amqp_lite import Clock, run_in_thread
from tests.processes import BrokerProcess

PERSISTENT = pika.BasicProperties(delivery_mode=2)
PAGED = ("--queue-memory-budget", "0")  # classic queues keep next to nothing in memory


def drain(channel, queue: str) -> list[tuple[bytes, bool]]:
    got = []
    while True:
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        got.append((body, method.redelivered))


def test_restart_keeps_durable_things_and_persistent_messages(tmp_path: Path) -> None:
    with run_in_thread(data_dir=tmp_path) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.exchange_declare("orders", "direct", durable=True)
        channel.exchange_declare("scratch", "fanout")
        channel.queue_declare("kept", durable=True)
        channel.queue_declare("lost")
        channel.queue_bind("kept", "orders", "new")
        channel.queue_bind("lost", "orders", "new")
        for body in (b"p1", b"p2", b"p3", b"p4"):
            channel.basic_publish("orders", "new", body, PERSISTENT)
        channel.basic_publish("orders", "new", b"transient")
        first = channel.basic_get("kept")[0]
        channel.basic_ack(first.delivery_tag)  # p1 acked: gone
        channel.basic_get("kept")  # p2 delivered, never acked
        connection.close()  # p2 goes back to the queue, redelivered

    with run_in_thread(data_dir=tmp_path) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.exchange_declare("orders", "direct", passive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as missing:
            connection.channel().exchange_declare("scratch", passive=True)
        assert missing.value.reply_code == 404
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            connection.channel().queue_declare("lost", passive=True)
        assert drain(channel, "kept") == [(b"p2", True), (b"p3", False), (b"p4", False)]
        # The binding survived too: a new publish still routes.
        channel.basic_publish("orders", "new", b"p5", PERSISTENT)
        assert drain(channel, "kept") == [(b"p5", False)]
        connection.close()


def test_transient_broker_writes_nothing(tmp_path: Path) -> None:
    with run_in_thread() as broker:
        assert broker.node.store is None
    assert list(tmp_path.iterdir()) == []


# -- kill -9 -----------------------------------------------------------------------------------


def publish_until_killed(url: str, publisher: str, confirmed: list[bytes]) -> None:
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.confirm_delivery()
        for n in range(100_000):
            body = f"{publisher}-{n}".encode()
            channel.basic_publish("", "crash", body, PERSISTENT)  # returns once confirmed
            confirmed.append(body)
    except (AMQPError, OSError):
        return  # the broker died under us, as intended


class QuorumTraffic:
    """Publishes transient messages to a quorum queue, which keeps them all the same, while it
    takes some, acks some, requeues some and leaves others unacked when the broker dies.

    live: confirmed and not acked; maybe: an ack sent but not known to have landed.
    """

    QUEUE = "crash-quorum"
    ARGUMENTS = {"x-queue-type": "quorum", "x-delivery-limit": 1000}  # requeues to the front

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.live: set[bytes] = set()
        self.maybe: set[bytes] = set()
        self._count = 0
        self.published = 0  # confirmed, over all rounds

    def check_recovered(self, url: str) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.queue_declare(self.QUEUE, durable=True, arguments=self.ARGUMENTS)
        recovered = [body for body, _redelivered in drain(channel, self.QUEUE)]
        connection.close()
        assert len(recovered) == len(set(recovered)), "a quorum message came back twice"
        assert self.live <= set(recovered), f"quorum lost {sorted(self.live - set(recovered))}"
        self.live, self.maybe = set(), set()  # drained: acked with no-ack gets

    def run_until_killed(self, url: str, name: str) -> None:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(url))
            channel = connection.channel()
            channel.confirm_delivery()
            while True:
                for _ in range(self.rng.randint(1, 5)):
                    body = f"{name}-{self._count}".encode()
                    self._count += 1
                    channel.basic_publish("", self.QUEUE, body)  # transient; once confirmed
                    self.live.add(body)
                    self.published += 1
                method, _properties, body = channel.basic_get(self.QUEUE)
                if method is None:
                    continue
                how = self.rng.choice(("ack", "requeue", "hold"))
                if how == "ack":
                    self.live.discard(body)
                    self.maybe.add(body)
                    channel.basic_ack(method.delivery_tag)
                elif how == "requeue":
                    channel.basic_nack(method.delivery_tag, requeue=True)
        except (AMQPError, OSError):
            return  # the broker died under us, as intended


@pytest.fixture
def crash_rounds(request) -> int:
    return int(request.config.getoption("--crash-rounds"))


class Churn:
    """Deletes a durable queue and declares it again and again, holding deliveries across the
    deletes and settling them once the next incarnation has stored messages of its own.

    What it knows of each message (by body), as the broker has answered so far:
      live   confirmed and never settled: must come back after a crash, exactly once;
      gone   its queue's delete-ok came (answered only once on disk): must never come back;
      maybe  anything in flight when the broker died (a publish, an ack, a delete): either.
    """

    QUEUE = "churn"

    def __init__(self, name: str, rng: random.Random) -> None:
        self.name = name
        self.rng = rng
        self.live: set[bytes] = set()
        self.maybe: set[bytes] = set()
        self.gone: set[bytes] = set()
        self._count = 0
        self.cycles = 0  # deletes answered, over all rounds

    def check_recovered(self, url: str) -> None:
        """After a restart: every live message back once, nothing gone back; then start over."""
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.queue_declare(self.QUEUE, durable=True)
        recovered = [body for body, _redelivered in drain(channel, self.QUEUE)]
        channel.queue_delete(self.QUEUE)  # delete-ok: what was drained is gone on disk too
        connection.close()
        assert len(recovered) == len(set(recovered)), "a message came back twice"
        assert self.live <= set(recovered), f"lost {sorted(self.live - set(recovered))}"
        assert not self.gone & set(recovered), (
            f"deleted, back: {sorted(self.gone & set(recovered))}"
        )
        self.gone |= self.live | self.maybe
        self.live, self.maybe = set(), set()

    def run_until_killed(self, url: str) -> None:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(url))
            channel = connection.channel()
            channel.confirm_delivery()
            held: list[tuple[int, bytes]] = []  # deliveries from an earlier incarnation
            while True:
                channel.queue_declare(self.QUEUE, durable=True)
                incarnation = [self._publish(channel) for _ in range(self.rng.randint(1, 3))]
                self._settle(channel, held)  # must not touch what the new incarnation stored
                incarnation += [self._publish(channel) for _ in range(self.rng.randint(1, 5))]
                held = self._hold(channel, self.rng.randint(1, 3))
                if held and self.rng.random() < 0.3:  # an ack of this incarnation's own
                    tag, body = held.pop()
                    self._in_flight([body])
                    channel.basic_ack(tag)
                self._in_flight(incarnation)
                channel.queue_delete(self.QUEUE)
                self.maybe -= set(incarnation)
                self.gone |= set(incarnation)
                self.cycles += 1
        except (AMQPError, OSError):
            return  # the broker died under us, as intended

    def _publish(self, channel) -> bytes:
        body = f"{self.name}-{self._count}".encode()
        self._count += 1
        self.maybe.add(body)
        channel.basic_publish("", self.QUEUE, body, PERSISTENT)  # returns once confirmed
        self.maybe.discard(body)
        self.live.add(body)
        return body

    def _hold(self, channel, count: int) -> list[tuple[int, bytes]]:
        """Take up to `count` deliveries and leave them unacked: (delivery tag, body) each."""
        held = []
        for _ in range(count):
            method, _properties, body = channel.basic_get(self.QUEUE)
            if method is None:
                break
            held.append((method.delivery_tag, body))
        return held

    def _settle(self, channel, held: list[tuple[int, bytes]]) -> None:
        for tag, _body in held:
            how = self.rng.choice(("ack", "reject", "nack", "requeue"))
            if how == "ack":
                channel.basic_ack(tag)
            elif how == "nack":
                channel.basic_nack(tag, requeue=False)
            else:
                channel.basic_reject(tag, requeue=how == "requeue")

    def _in_flight(self, bodies: list[bytes]) -> None:
        """Sent to the broker, not answered yet: whatever was live may now go either way."""
        moving = self.live & set(bodies)
        self.live -= moving
        self.maybe |= moving


def test_kill_9_never_loses_a_confirmed_message(tmp_path: Path, crash_rounds: int) -> None:
    """Publishers fill a queue while another client deletes and declares a second one, holding
    deliveries across the deletes, and another works a quorum queue with transient messages;
    the broker is killed at a random moment, each round. Every other round (and the survivor)
    runs with a memory budget of nothing, so that classic queues page."""
    rng = random.Random(os.environ.get("CRASH_SEED"))
    expected: set[bytes] = set()
    churn = Churn("churn", rng)
    quorum = QuorumTraffic(rng)
    for round_number in range(crash_rounds):
        broker = BrokerProcess(tmp_path, *PAGED if round_number % 2 else ())
        try:
            churn.check_recovered(broker.url)
            quorum.check_recovered(broker.url)
            setup = pika.BlockingConnection(pika.URLParameters(broker.url))
            setup.channel().queue_declare("crash", durable=True)
            setup.close()

            confirmed: list[list[bytes]] = [[] for _ in range(3)]
            threads = [
                threading.Thread(
                    target=publish_until_killed,
                    args=(broker.url, f"{round_number}.{i}", confirmed[i]),
                )
                for i in range(3)
            ]
            churn.name = f"churn{round_number}"
            threads.append(
                threading.Thread(
                    target=quorum.run_until_killed, args=(broker.url, f"quorum{round_number}")
                )
            )
            threads.append(threading.Thread(target=churn.run_until_killed, args=(broker.url,)))
            for thread in threads:
                thread.start()
            # At a random moment, not on a count of confirms: those arrive right after an fsync,
            # and killing only then would hardly ever find a batch half-way. But not before the
            # queue was deleted once this round.
            kill_at = time.monotonic() + rng.uniform(0.02, 0.4)
            cycles, churner = churn.cycles, threads[-1]
            with _watching(threads):
                while churner.is_alive() and (time.monotonic() < kill_at or churn.cycles == cycles):
                    churner.join(0.001)
                broker.kill()
            for bodies in confirmed:
                expected.update(bodies)
        finally:
            broker.kill()  # also when a check failed, so no broker outlives the test

    survivor = BrokerProcess(tmp_path, *PAGED)
    try:
        churn.check_recovered(survivor.url)
        quorum.check_recovered(survivor.url)
        connection = pika.BlockingConnection(pika.URLParameters(survivor.url))
        recovered = [body for body, _redelivered in drain(connection.channel(), "crash")]
        connection.close()
    finally:
        survivor.stop()
    assert len(recovered) == len(set(recovered)), "a message came back twice"
    assert expected <= set(recovered), f"lost {len(expected - set(recovered))} confirmed"
    assert churn.cycles >= crash_rounds, "the queue was hardly ever deleted"
    assert quorum.published >= crash_rounds, "the quorum queue was hardly used"


class _watching:
    """Join the publisher threads on the way out, whatever happened."""

    def __init__(self, threads: list[threading.Thread]) -> None:
        self.threads = threads

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        for thread in self.threads:
            thread.join(timeout=10)


def test_committed_transaction_survives_a_restart(tmp_path: Path) -> None:
    with run_in_thread(data_dir=tmp_path) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.queue_declare("tx", durable=True)
        channel.tx_select()
        channel.basic_publish("", "tx", b"committed", PERSISTENT)
        channel.tx_commit()  # answered only once the message is on disk
        channel.basic_publish("", "tx", b"rolled back", PERSISTENT)
        channel.tx_rollback()
        connection.close()

    with run_in_thread(data_dir=tmp_path) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        assert drain(connection.channel(), "tx") == [(b"committed", False)]
        connection.close()


def test_a_durable_declaration_answered_survives_an_immediate_kill(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path)
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    channel.exchange_declare("audit", "fanout", durable=True)
    channel.queue_declare("audit-log", durable=True)
    channel.queue_bind("audit-log", "audit")  # answered only once all three are on disk
    broker.kill()

    survivor = BrokerProcess(tmp_path)
    try:
        connection = pika.BlockingConnection(pika.URLParameters(survivor.url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("audit", "", b"routed", PERSISTENT)
        assert drain(channel, "audit-log") == [(b"routed", False)]
        connection.close()
    finally:
        survivor.stop()


def test_a_delayed_persistent_message_survives_a_restart(tmp_path: Path) -> None:
    """A confirm means on disk, also for a message a durable delayed exchange holds back."""
    start = 1_700_000_000.0
    with run_in_thread(data_dir=tmp_path, clock=Clock(frozen_at=start)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare(
            "later", "x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"}
        )
        channel.queue_declare("due", durable=True)
        channel.queue_bind("due", "later", "k")
        for body, delay in ((b"in 10 s", 10_000), (b"in 1 h", 3_600_000)):
            properties = pika.BasicProperties(delivery_mode=2, headers={"x-delay": delay})
            channel.basic_publish("later", "k", body, properties)  # confirmed: on disk
        broker.advance(11)
        assert drain(channel, "due") == [(b"in 10 s", False)]
        connection.close()

    with run_in_thread(data_dir=tmp_path, clock=Clock(frozen_at=start + 11)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        assert drain(channel, "due") == []  # still held, and the delivered one did not come back
        broker.advance(3600)
        assert drain(channel, "due") == [(b"in 1 h", False)]
        connection.close()

    with run_in_thread(data_dir=tmp_path, clock=Clock(frozen_at=start + 7200)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        assert drain(connection.channel(), "due") == []  # released once, not again
        connection.close()


@pytest.mark.parametrize("settle", ["ack", "reject", "nack", "requeue", "close"])
def test_settling_a_delivery_of_a_deleted_queue_leaves_its_successor_alone(
    tmp_path: Path, settle: str
) -> None:
    """A queue deleted and declared again is a new queue: a delivery the old one made, settled
    later, must not touch what the new one stored (its positions start over)."""
    with run_in_thread(data_dir=tmp_path) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.queue_declare("reborn", durable=True)
        channel.basic_publish("", "reborn", b"old", PERSISTENT)
        held = channel.basic_get("reborn")[0]
        channel.queue_delete("reborn")
        channel.queue_declare("reborn", durable=True)
        channel.confirm_delivery()
        channel.basic_publish("", "reborn", b"new", PERSISTENT)  # confirmed: on disk
        if settle == "ack":
            channel.basic_ack(held.delivery_tag)
        elif settle == "reject":
            channel.basic_reject(held.delivery_tag, requeue=False)
        elif settle == "nack":
            channel.basic_nack(held.delivery_tag, requeue=False)
        elif settle == "requeue":
            channel.basic_reject(held.delivery_tag, requeue=True)
        connection.close()  # "close" settles it by requeueing on the way out
    with run_in_thread(data_dir=tmp_path) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        assert drain(connection.channel(), "reborn") == [(b"new", False)]
        connection.close()
