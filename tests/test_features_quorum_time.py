"""Quorum queues where a clock, a restart, a policy or the vhost's default type comes in.

Each rule was first observed on RabbitMQ 3.10.8 (with real time there; a frozen clock here, so
that minutes pass at once): at-least-once dead letters offered again every 180 s, message TTL,
x-expires, what survives a restart, policies, and the vhost default queue type.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from amqp_lite import Clock, ThreadedBroker, run_in_thread
from tests.conftest import FROZEN_AT, Target
from tests.quorum_helpers import QUORUM, QuorumSession
from vhosts.quorum_queue import DEAD_LETTER_RETRY


@pytest.fixture
def qq(broker: ThreadedBroker) -> Iterator[QuorumSession]:
    opened = QuorumSession(Target(broker.url, broker=broker))
    yield opened
    opened.connection.close()


def _at_least_once(qq: QuorumSession, dlx: str, **more: object) -> str:
    return qq.declare(
        **{
            "x-dead-letter-exchange": dlx,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
            **more,
        }
    )


# -- at-least-once dead-lettering ------------------------------------------------------------------


@pytest.mark.frozen_clock
def test_an_at_least_once_dead_letter_waits_for_a_queue_and_is_offered_every_180_s(
    broker: ThreadedBroker, qq: QuorumSession
) -> None:
    dlx = qq.fanout()  # bound to nothing yet
    queue = _at_least_once(qq, dlx)
    qq.publish(queue, "poison")
    got = qq.get(queue)
    assert got is not None
    qq.channel.basic_reject(got.tag, requeue=False)
    late = qq.classic("late")
    qq.channel.queue_bind(late, dlx)
    broker.advance(DEAD_LETTER_RETRY - 1)
    assert qq.ready(late) == 0
    broker.advance(1)
    _method, properties, body = qq.channel.basic_get(late, auto_ack=True)
    assert body == b"poison"
    (death,) = properties.headers["x-death"]
    assert (death["reason"], death["queue"]) == ("rejected", queue)
    # Taken by its target: it no longer counts against the queue's limit.
    assert qq.publish(queue, "next") == [True]


@pytest.mark.frozen_clock
def test_an_at_least_once_dead_letter_a_full_queue_refuses_is_offered_again(
    broker: ThreadedBroker, qq: QuorumSession
) -> None:
    full = qq.declare(**{"x-max-length": 1, "x-overflow": "reject-publish"})
    qq.publish(full, "one", "two")  # taken past the limit: full now
    taken = qq.classic("taken")
    dlx = qq.fanout(full, taken)
    queue = _at_least_once(qq, dlx)
    qq.publish(queue, "dead")
    got = qq.get(queue)
    assert got is not None
    qq.channel.basic_reject(got.tag, requeue=False)
    assert qq.take_all(taken) == ["dead"]  # the target that took it gets it once
    assert qq.take_all(full) == ["one", "two"]
    broker.advance(DEAD_LETTER_RETRY)
    assert qq.take_all(full) == ["dead"]
    broker.advance(DEAD_LETTER_RETRY)
    assert qq.take_all(taken) == [] and qq.take_all(full) == []


def test_a_held_dead_letter_survives_a_restart_and_is_offered_at_start(tmp_path: Path) -> None:
    with run_in_thread(data_dir=tmp_path) as broker:
        qq = QuorumSession(Target(broker.url, broker=broker))
        queue = _at_least_once(qq, "dlx")  # no such exchange yet
        qq.publish(queue, "kept")
        got = qq.get(queue)
        assert got is not None
        qq.channel.basic_reject(got.tag, requeue=False)
        qq.channel.exchange_declare("dlx", "fanout", durable=True)
        qq.channel.queue_declare("dead", durable=True)
        qq.channel.queue_bind("dead", "dlx")
        qq.connection.close()
    with run_in_thread(data_dir=tmp_path) as broker:
        qq = QuorumSession(Target(broker.url, broker=broker))
        qq.until(lambda: qq.ready("dead") == 1)
        assert qq.take_all("dead") == ["kept"]
        qq.connection.close()


# -- message TTL -----------------------------------------------------------------------------------


@pytest.mark.frozen_clock
def test_message_ttl_the_smaller_of_queue_and_message_dead_lettered_as_expired(
    broker: ThreadedBroker, qq: QuorumSession
) -> None:
    dead = qq.classic("dead")
    queue = qq.declare(**{"x-message-ttl": 300, "x-dead-letter-exchange": qq.fanout(dead)})
    qq.publish(queue, "queue-ttl")
    qq.publish(queue, "short", expiration="100")
    qq.publish(queue, "long", expiration="5000")
    broker.advance(0.2)
    assert qq.ready(queue) == 3  # the short one waits behind the head: expiry is at the head
    broker.advance(0.1)
    assert qq.ready(queue) == 0
    deaths = []
    while (got := qq.get(dead, no_ack=True)) is not None:
        (death,) = got.headers["x-death"]
        deaths.append((got.body, death["reason"], death.get("original-expiration")))
    assert deaths == [
        ("queue-ttl", "expired", None),
        ("short", "expired", "100"),
        ("long", "expired", "5000"),
    ]


@pytest.mark.frozen_clock
def test_a_requeued_message_keeps_its_expiry(broker: ThreadedBroker, qq: QuorumSession) -> None:
    queue = qq.declare(**{"x-message-ttl": 400})
    qq.publish(queue, "m")
    got = qq.get(queue)
    assert got is not None
    broker.advance(0.5)
    qq.channel.basic_nack(got.tag, requeue=True)
    assert qq.get(queue) is None


@pytest.mark.frozen_clock
def test_ttl_0_reaches_a_waiting_consumer_and_no_one_else(
    broker: ThreadedBroker, qq: QuorumSession
) -> None:
    queue = qq.declare()
    consumer = qq.connection.channel()
    received = qq.consume(queue, consumer, auto_ack=True)
    qq.publish(queue, "now", expiration="0")
    qq.wait_for(received, 1)
    consumer.close()
    qq.publish(queue, "nobody", expiration="0")
    broker.advance(0.001)  # gone unless taken within the millisecond
    assert qq.get(queue) is None


# -- x-expires -------------------------------------------------------------------------------------


def _exists(qq: QuorumSession, queue: str) -> bool:
    return not qq.refusal(lambda channel: channel.queue_declare(queue, passive=True)).code


@pytest.mark.frozen_clock
def test_x_expires_counts_from_a_redeclare_but_not_a_passive_declare(
    broker: ThreadedBroker, qq: QuorumSession
) -> None:
    redeclared = qq.declare(**{"x-expires": 2000})
    passive = qq.declare(**{"x-expires": 2000})
    for _ in range(2):
        broker.advance(0.9)
        qq.channel.queue_declare(redeclared, durable=True, arguments={**QUORUM, "x-expires": 2000})
        qq.channel.queue_declare(passive, passive=True)
    broker.advance(0.9)  # 2.7 s since both were declared, 0.9 s since the redeclare
    assert qq.channel.queue_declare(redeclared, passive=True).method.queue == redeclared
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        qq.connection.channel().queue_declare(passive, passive=True)


@pytest.mark.frozen_clock
def test_an_unacked_message_keeps_a_quorum_queue_in_use(
    broker: ThreadedBroker, qq: QuorumSession
) -> None:
    queue = qq.declare(**{"x-expires": 2000})
    qq.publish(queue, "m")
    got = qq.get(queue)
    assert got is not None
    broker.advance(10)
    assert qq.channel.queue_declare(queue, passive=True).method.queue == queue
    qq.channel.basic_ack(got.tag)
    qq.ready(queue)  # the ack has landed (a passive declare is no use of the queue)
    broker.advance(2)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        qq.connection.channel().queue_declare(queue, passive=True)


# -- policies --------------------------------------------------------------------------------------


def test_policies_as_a_quorum_queue_takes_them(broker: ThreadedBroker, qq: QuorumSession) -> None:
    broker.admin.set_policy(
        "/",
        "limits",
        "^qq-",
        {"delivery-limit": 2, "overflow": "drop-head", "max-length": 1},
        apply_to="queues",
    )
    # The policy's overflow wins over the argument (a classic queue's argument would win), and
    # the smaller delivery limit applies.
    queue = qq.declare(**{"x-overflow": "reject-publish", "x-delivery-limit": 5})
    assert qq.publish(queue, "m1", "m2") == [True, True]
    assert qq.take_all(queue) == ["m2"]
    qq.publish(queue, "m")
    deliveries = 0
    while (got := qq.get(queue)) is not None:
        deliveries += 1
        qq.channel.basic_reject(got.tag, requeue=True)
    assert deliveries == 3


def test_a_policy_with_a_key_quorum_queues_cannot_take_keeps_off_them(
    broker: ThreadedBroker, qq: QuorumSession
) -> None:
    broker.admin.set_policy("/", "lazy", "^qq-", {"queue-mode": "lazy", "max-length": 1})
    broker.admin.set_policy("/", "fallback", "^qq-", {"max-length": 2}, priority=-1)
    queue = qq.declare()
    qq.publish(queue, "m1", "m2", "m3")
    assert qq.take_all(queue) == ["m2", "m3"]
    (info,) = [q for q in broker.admin.queues("/") if q.name == queue]
    assert info.type == "quorum" and info.policy is not None and info.policy.name == "fallback"


@pytest.mark.parametrize(
    ("definition", "text"),
    [
        ({"delivery-limit": -1}, "-1 is not a valid delivery limit"),
        ({"delivery-limit": 1.5}, "1.5 is not a valid delivery limit"),
        ({"dead-letter-strategy": "x"}, '<<"x">> is not a valid dead letter strategy'),
        ({"max-in-memory-length": -1}, "-1 is not a valid maximum memory in bytes"),
        ({"queue-leader-locator": "x"}, '<<"x">> is not a valid queue leader locator value'),
    ],
)
def test_quorum_policy_keys_are_checked(
    broker: ThreadedBroker, definition: dict[str, object], text: str
) -> None:
    with pytest.raises(ValueError, match=f"^{text}$"):
        broker.admin.set_policy("/", "bad", ".*", definition)


# -- durability ------------------------------------------------------------------------------------


def test_a_restart_keeps_transient_messages_their_order_and_counts(tmp_path: Path) -> None:
    with run_in_thread(data_dir=tmp_path) as broker:
        qq = QuorumSession(Target(broker.url, broker=broker))
        queue = qq.declare("jobs", **{"x-delivery-limit": 10})
        qq.publish(queue, "m1", "m2", "m3", "m4")  # transient: kept all the same
        first = qq.get(queue)
        assert first is not None
        qq.channel.basic_nack(first.tag, requeue=True)  # m1 returned, to the front
        held = qq.get(queue)  # m1 again, held when the broker stops
        assert held is not None and held.body == "m1"
        qq.connection.close()
    with run_in_thread(data_dir=tmp_path) as broker:
        qq = QuorumSession(Target(broker.url, broker=broker))
        got = [qq.get("jobs", no_ack=True) for _ in range(4)]
        assert [(g.body, g.redelivered, g.delivery_count) for g in got if g] == [
            ("m1", True, 2),  # delivered twice before: its count carries on
            ("m2", False, 0),
            ("m3", False, 0),
            ("m4", False, 0),
        ]
        qq.connection.close()


def test_a_consumer_without_a_prefetch_holds_at_most_2000(
    broker: ThreadedBroker, qq: QuorumSession
) -> None:
    queue = qq.declare()
    for _ in range(2100):
        qq.channel.basic_publish("", queue, b"m")
    consumer = qq.connection.channel()
    received = qq.consume(queue, consumer)
    qq.wait_for(received, 2000)
    qq.quiet()
    assert len(received) == 2000
    consumer.basic_ack(received[9].tag, multiple=True)
    qq.wait_for(received, 2010)


# -- the vhost's default queue type ----------------------------------------------------------------


def test_a_vhost_default_queue_type_makes_quorum_queues_where_it_can(
    broker: ThreadedBroker,
) -> None:
    broker.admin.set_vhost_metadata("other", default_queue_type="quorum")
    qq = QuorumSession(Target(broker.url, broker=broker), broker.vhost_url("other"))
    channel = qq.channel
    channel.queue_declare("durable", durable=True)
    channel.queue_declare("transient")
    channel.queue_declare("exclusive", durable=True, exclusive=True)
    channel.queue_declare("classic", durable=True, arguments={"x-queue-type": "classic"})
    types = {q.name: q.type for q in broker.admin.queues("other")}
    assert types == {
        "durable": "quorum",
        "transient": "classic",
        "exclusive": "classic",
        "classic": "classic",
    }
    (durable,) = [q for q in broker.admin.queues("other") if q.name == "durable"]
    assert durable.arguments == {"x-queue-type": "quorum"}  # kept, as RabbitMQ keeps it
    channel.queue_declare("durable", durable=True)  # a redeclare gets it too: equivalent
    refusal = qq.refusal(lambda c: c.queue_declare("", durable=True))
    assert refusal.text == (
        "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue"
    )
    refusal = qq.refusal(
        lambda c: c.queue_declare("p", durable=True, arguments={"x-max-priority": 1})
    )
    assert refusal.text == (
        "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'p' in vhost 'other' "
        "of queue type rabbit_quorum_queue"
    )
    qq.connection.close()
    with pytest.raises(ValueError, match="unknown queue type 'bogus'"):
        broker.admin.set_vhost_metadata("other", default_queue_type="bogus")


def test_a_vhost_default_queue_type_survives_a_restart(tmp_path: Path) -> None:
    with run_in_thread(vhosts=("/", "jobs"), data_dir=tmp_path) as broker:
        broker.admin.set_vhost_metadata("jobs", default_queue_type="quorum")
    with run_in_thread(data_dir=tmp_path, clock=Clock(frozen_at=FROZEN_AT)) as broker:
        assert broker.admin.vhost_metadata("jobs")["default_queue_type"] == "quorum"
