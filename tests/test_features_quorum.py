"""Quorum queues over the wire with pika, as RabbitMQ 3.10.8 runs them on one node.

Every test here takes the `target` fixture, so each passes against RabbitMQ 3.10.8 too
(`--rabbitmq-url amqp://guest:guest@127.0.0.1:5682/`): declaring and its refusals, redeclare
equivalence, delivery order and where requeued messages go, x-delivery-count, the delivery
limit, dead-lettering, overflow, consumers and the delete flags. What needs a clock or a
restart is in test_features_quorum_time.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from amqp_lite import run_in_thread
from tests.conftest import Target
from tests.quorum_helpers import QUORUM, QuorumSession, session


@pytest.fixture(scope="module")
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """One broker for the module (each test keeps to names of its own), with a data directory
    so that confirms wait for the disk; or the broker named by --rabbitmq-url."""
    url = request.config.getoption("rabbitmq_url")
    if url:
        yield Target(url)
        return
    with run_in_thread(data_dir=tmp_path_factory.mktemp("quorum")) as running:
        yield Target(running.url, broker=running)


@pytest.fixture
def qq(target: Target) -> Iterator[QuorumSession]:
    yield from session(target)


def _declare_text(qq: QuorumSession, **declare: Any) -> tuple[str, tuple[int, str]]:
    name = qq.name()
    refusal = qq.refusal(lambda channel: channel.queue_declare(name, **declare))
    return name, (refusal.code, refusal.text)


# -- declaring -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "refused"),
    [
        ({"durable": False}, "non-durable"),
        ({"durable": True, "exclusive": True}, "exclusive-owner"),
        ({"durable": True, "auto_delete": True}, "auto-delete"),
        # Checked in this order: auto-delete, then exclusive, then non-durable.
        ({"durable": False, "exclusive": True, "auto_delete": True}, "auto-delete"),
        ({"durable": False, "exclusive": True}, "exclusive-owner"),
    ],
)
def test_only_a_durable_shared_queue_may_be_quorum(
    qq: QuorumSession, flags: dict[str, bool], refused: str
) -> None:
    name, error = _declare_text(qq, arguments=QUORUM, **flags)
    assert error == (
        406,
        f"PRECONDITION_FAILED - invalid property '{refused}' for queue '{name}' in vhost '/'",
    )


def test_a_server_named_quorum_queue_is_refused(qq: QuorumSession) -> None:
    refusal = qq.refusal(lambda channel: channel.queue_declare("", durable=True, arguments=QUORUM))
    assert (refusal.code, refusal.text) == (
        406,
        "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue",
    )


@pytest.mark.parametrize(
    "arguments",
    [
        {"x-expires": 1000, "x-message-ttl": 0, "x-max-length": 0, "x-max-length-bytes": 10},
        {"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "k"},
        {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"},
        {"x-dead-letter-strategy": "at-most-once", "x-overflow": "reject-publish-dlx"},
        {"x-max-in-memory-length": 5, "x-max-in-memory-bytes": 0},
        {"x-single-active-consumer": True, "x-quorum-initial-group-size": 3},
        {"x-queue-leader-locator": "client-local"},
        {"x-queue-leader-locator": "balanced"},
        {"x-queue-leader-locator": "random"},
        {"x-queue-leader-locator": "least-leaders"},
        # RabbitMQ checks nothing of x-delivery-limit.
        {"x-delivery-limit": -1},
        {"x-delivery-limit": "a"},
        {"x-delivery-limit": True},
        {"x-whatever": 5, "colour": "red"},
    ],
)
def test_arguments_a_quorum_queue_takes(qq: QuorumSession, arguments: dict[str, Any]) -> None:
    qq.declare(**arguments)


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"x-expires": 0}, "{value_zero,0}"),
        ({"x-expires": -1}, "{value_negative,-1}"),
        ({"x-expires": "a"}, '"expected integer, got longstr"'),
        ({"x-message-ttl": -1}, "{value_negative,-1}"),
        ({"x-message-ttl": 315360000001}, "{value_too_large,315360000001}"),
        ({"x-dead-letter-strategy": "bogus"}, "invalid_dlx_strategy"),
        ({"x-dead-letter-strategy": 5}, "{unacceptable_type,signedint}"),
        ({"x-dead-letter-routing-key": "k"}, "routing_key_but_no_dlx_defined"),
        ({"x-max-length": -1}, "{value_negative,-1}"),
        ({"x-max-length-bytes": "a"}, '"expected integer, got longstr"'),
        ({"x-max-in-memory-length": -1}, "{value_negative,-1}"),
        ({"x-max-in-memory-bytes": -1}, "{value_negative,-1}"),
        ({"x-overflow": "bogus"}, "invalid_overflow"),
        ({"x-overflow": 5}, "{unacceptable_type,signedint}"),
        ({"x-single-active-consumer": 1}, "{unacceptable_type,signedint}"),
        ({"x-quorum-initial-group-size": 0}, "{value_zero,0}"),
        ({"x-quorum-initial-group-size": -1}, "{value_negative,-1}"),
        ({"x-queue-leader-locator": "bogus"}, "invalid_queue_locator_arg"),
        ({"x-queue-leader-locator": 5}, "{unacceptable_type,signedint}"),
    ],
)
def test_bad_argument_values_are_refused(
    qq: QuorumSession, arguments: dict[str, Any], reason: str
) -> None:
    name, error = _declare_text(qq, durable=True, arguments={**QUORUM, **arguments})
    (key,) = arguments
    assert error == (
        406,
        f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}' in vhost '/': {reason}",
    )


def test_argument_checks_run_in_rabbitmqs_order_whatever_the_tables(qq: QuorumSession) -> None:
    arguments = {**QUORUM, "x-max-length": -1, "x-message-ttl": -2}
    name, error = _declare_text(qq, durable=True, arguments=arguments)
    assert error == (
        406,
        f"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue '{name}' in vhost '/': "
        "{value_negative,-2}",
    )


@pytest.mark.parametrize(
    "key",
    [
        "x-max-priority",
        "x-queue-mode",
        "x-queue-version",
        "x-queue-master-locator",
        "x-max-age",
        "x-stream-max-segment-size-bytes",
        "x-initial-cluster-size",
    ],
)
def test_other_types_arguments_are_refused(qq: QuorumSession, key: str) -> None:
    name, error = _declare_text(qq, durable=True, arguments={**QUORUM, key: 1})
    assert error == (
        406,
        f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}' in vhost '/' "
        "of queue type rabbit_quorum_queue",
    )


def test_argument_values_are_checked_before_flags_and_other_types_arguments(
    qq: QuorumSession,
) -> None:
    arguments = {**QUORUM, "x-queue-mode": "lazy", "x-max-priority": 1, "x-max-length": -1}
    name, error = _declare_text(qq, durable=False, arguments=arguments)
    assert error[1].endswith(
        f"invalid arg 'x-max-length' for queue '{name}' in vhost '/': {{value_negative,-1}}"
    )
    del arguments["x-max-length"]
    name, error = _declare_text(qq, durable=False, arguments=arguments)
    assert error[1] == (  # and other types' arguments in the table's order
        f"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue '{name}' in vhost '/' "
        "of queue type rabbit_quorum_queue"
    )


@pytest.mark.parametrize(
    ("first", "again", "text"),
    [
        (
            QUORUM,
            {},
            "inequivalent arg 'x-queue-type' for queue '{q}' in vhost '/': "
            "received none but current is the value 'quorum' of type 'longstr'",
        ),
        (
            QUORUM,
            {"x-queue-type": "classic"},
            "inequivalent arg 'x-queue-type' for queue '{q}' "
            "in vhost '/': received 'classic' but current is 'quorum'",
        ),
        (
            {},
            QUORUM,
            "inequivalent arg 'x-queue-type' for queue '{q}' in vhost '/': "
            "received the value 'quorum' of type 'longstr' but current is none",
        ),
        # Compared in RabbitMQ's order for quorum queues: dead-lettering before x-expires...
        (
            {**QUORUM, "x-delivery-limit": 1, "x-expires": 10000, "x-dead-letter-exchange": "a"},
            {**QUORUM, "x-delivery-limit": 2, "x-expires": 20000, "x-dead-letter-exchange": "b"},
            "inequivalent arg 'x-dead-letter-exchange' for queue '{q}' in vhost '/': "
            "received 'b' but current is 'a'",
        ),
        # ...and x-delivery-limit before x-message-ttl.
        (
            {**QUORUM, "x-delivery-limit": 1, "x-message-ttl": 5},
            {**QUORUM, "x-delivery-limit": 2, "x-message-ttl": 6},
            "inequivalent arg 'x-delivery-limit' for queue '{q}' in vhost '/': "
            "received '2' but current is '1'",
        ),
        (
            {**QUORUM, "x-dead-letter-strategy": "at-least-once"},
            QUORUM,
            "inequivalent arg 'x-dead-letter-strategy' for queue '{q}' in vhost '/': "
            "received none but current is the value 'at-least-once' of type 'longstr'",
        ),
        (
            {**QUORUM, "x-quorum-initial-group-size": 3},
            QUORUM,
            "inequivalent arg 'x-quorum-initial-group-size' for queue '{q}' in vhost '/': "
            "received none but current is the value '3' of type 'signedint'",
        ),
    ],
)
def test_a_redeclare_must_be_equivalent(
    qq: QuorumSession, first: dict[str, Any], again: dict[str, Any], text: str
) -> None:
    name = qq.name()
    qq.channel.queue_declare(name, durable=True, arguments=first)
    refusal = qq.refusal(lambda channel: channel.queue_declare(name, durable=True, arguments=again))
    assert (refusal.code, refusal.text) == (406, "PRECONDITION_FAILED - " + text.format(q=name))


def test_a_redeclare_may_differ_in_what_the_type_does_not_compare(qq: QuorumSession) -> None:
    name = qq.declare(**{"x-whatever": 1})
    qq.channel.queue_declare(name, durable=True, arguments={**QUORUM, "x-whatever": 2})
    assert qq.channel.queue_declare(name, passive=True).method.queue == name


@pytest.mark.parametrize(
    ("flags", "code", "text"),
    [
        (
            {"durable": False},
            406,
            "inequivalent arg 'durable' for queue '{q}' in vhost '/': "
            "received 'false' but current is 'true'",
        ),
        (
            {"durable": True, "auto_delete": True},
            406,
            "inequivalent arg 'auto_delete' for "
            "queue '{q}' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            {"durable": True, "exclusive": True},
            405,
            "cannot obtain exclusive access to locked "
            "queue '{q}' in vhost '/'. It could be originally declared on another connection or "
            "the exclusive property value does not match that of the original declaration.",
        ),
    ],
)
def test_a_redeclare_with_other_flags_is_refused(
    qq: QuorumSession, flags: dict[str, bool], code: int, text: str
) -> None:
    name = qq.declare()
    refusal = qq.refusal(lambda channel: channel.queue_declare(name, arguments=QUORUM, **flags))
    prefix = "RESOURCE_LOCKED - " if code == 405 else "PRECONDITION_FAILED - "
    assert (refusal.code, refusal.text) == (code, prefix + text.format(q=name))


# -- delivering ------------------------------------------------------------------------------------


def test_fifo_and_a_nack_or_reject_with_requeue_goes_to_the_back(qq: QuorumSession) -> None:
    queue = qq.declare()
    qq.publish(queue, "m1", "m2", "m3", "m4")
    first, second = qq.get(queue), qq.get(queue)
    assert first is not None and second is not None
    assert (first.body, second.body) == ("m1", "m2")
    qq.channel.basic_nack(second.tag, requeue=True)
    qq.channel.basic_reject(first.tag, requeue=True)
    qq.until(lambda: qq.ready(queue) == 4)
    assert qq.take_all(queue) == ["m3", "m4", "m2", "m1"]


def test_recover_requeues_to_the_back_too(qq: QuorumSession) -> None:
    queue = qq.declare()
    qq.publish(queue, "m1", "m2")
    assert qq.get(queue) is not None
    qq.publish(queue, "m3")
    qq.channel.basic_recover(requeue=True)
    qq.until(lambda: qq.ready(queue) == 3)
    assert qq.take_all(queue) == ["m2", "m3", "m1"]


def test_with_a_delivery_limit_set_requeued_messages_go_to_the_front(qq: QuorumSession) -> None:
    # Any value counts as set, even one that limits nothing.
    for limit in (100, "a"):
        queue = qq.declare(**{"x-delivery-limit": limit})
        qq.publish(queue, "m1", "m2", "m3", "m4")
        first, second = qq.get(queue), qq.get(queue)
        assert first is not None and second is not None
        qq.channel.basic_nack(second.tag, requeue=True)
        qq.channel.basic_nack(first.tag, requeue=True)
        qq.until(lambda queue=queue: qq.ready(queue) == 4)
        assert qq.take_all(queue) == ["m2", "m1", "m3", "m4"]


def test_a_channel_that_closes_puts_its_unacked_messages_back_at_the_front(
    qq: QuorumSession,
) -> None:
    queue = qq.declare()
    qq.publish(queue, "m1", "m2", "m3", "m4")
    other = qq.connection.channel()
    taken = [other.basic_get(queue)[2] for _ in range(2)]
    assert taken == [b"m1", b"m2"]
    third = qq.get(queue)
    assert third is not None and third.body == "m3"
    qq.channel.basic_reject(third.tag, requeue=True)  # to the back
    other.close()
    qq.until(lambda: qq.ready(queue) == 4)
    got = [qq.get(queue, no_ack=True) for _ in range(4)]
    assert [(g.body, g.redelivered, g.delivery_count) for g in got if g] == [
        ("m1", True, 1),
        ("m2", True, 1),
        ("m4", False, 0),
        ("m3", True, 1),
    ]


def test_basic_get_carries_x_delivery_count_from_the_first_delivery(qq: QuorumSession) -> None:
    queue = qq.declare()
    qq.publish(queue, "m", headers={"z": 1, "a": 2, "x-delivery-count": 77})
    first = qq.get(queue)
    assert first is not None and (first.redelivered, first.delivery_count) == (False, 0)
    # Set as RabbitMQ sets it: replacing the publisher's, the table sorted by key.
    assert list(first.headers.items()) == [("a", 2), ("x-delivery-count", 0), ("z", 1)]
    qq.channel.basic_nack(first.tag, requeue=True)
    qq.until(lambda: qq.ready(queue) == 1)
    again = qq.get(queue, no_ack=True)
    assert again is not None and (again.redelivered, again.delivery_count) == (True, 1)


def test_a_consumer_sees_x_delivery_count_on_redeliveries_only(qq: QuorumSession) -> None:
    queue = qq.declare()
    qq.publish(queue, "m1", "m2")
    qq.channel.basic_qos(prefetch_count=2)
    received = qq.consume(queue)
    qq.wait_for(received, 2)
    assert [(g.body, g.redelivered, g.delivery_count) for g in received] == [
        ("m1", False, None),
        ("m2", False, None),
    ]
    qq.channel.basic_nack(received[1].tag, multiple=True, requeue=True)
    qq.wait_for(received, 4)
    assert [(g.body, g.redelivered, g.delivery_count) for g in received[2:]] == [
        ("m1", True, 1),
        ("m2", True, 1),
    ]
    qq.channel.basic_ack(received[3].tag, multiple=True)


def test_every_message_is_kept_whatever_its_delivery_mode_says(qq: QuorumSession) -> None:
    # A confirm comes once the message is on disk; the message keeps the mode it was sent with.
    queue = qq.declare()
    assert qq.publish(queue, "transient", delivery_mode=1) == [True]
    method, properties, _body = qq.channel.basic_get(queue, auto_ack=True)
    assert method is not None and properties.delivery_mode == 1


# -- the delivery limit ----------------------------------------------------------------------------


def test_past_the_delivery_limit_a_message_is_dead_lettered_with_a_full_x_death(
    qq: QuorumSession,
) -> None:
    dead = qq.classic("dead")
    dlx = qq.fanout(dead)
    queue = qq.declare(**{"x-delivery-limit": 1, "x-dead-letter-exchange": dlx})
    qq.publish(queue, "poison", headers={"a": 1}, expiration="60000")
    for count in (0, 1):
        got = qq.get(queue)
        assert got is not None and got.delivery_count == count
        qq.channel.basic_nack(got.tag, requeue=True)
    qq.until(lambda: qq.ready(dead) == 1)
    assert qq.ready(queue) == 0
    method, properties, body = qq.channel.basic_get(dead, auto_ack=True)
    assert body == b"poison" and method.exchange == dlx and method.routing_key == queue
    headers = properties.headers
    assert properties.expiration is None and "x-delivery-count" not in headers
    (death,) = headers["x-death"]
    assert {k: v for k, v in death.items() if k != "time"} == {
        "count": 1,
        "reason": "delivery_limit",
        "queue": queue,
        "exchange": "",
        "routing-keys": [queue],
        "original-expiration": "60000",
    }
    assert (
        headers["x-first-death-reason"],
        headers["x-first-death-queue"],
        headers["x-first-death-exchange"],
    ) == ("delivery_limit", queue, "")


@pytest.mark.parametrize(("limit", "deliveries"), [(0, 1), (-1, 1), (2, 3), ("a", 5), (None, 5)])
def test_the_delivery_limit_drops_without_a_dead_letter_exchange(
    qq: QuorumSession, limit: Any, deliveries: int
) -> None:
    queue = qq.declare(**({} if limit is None else {"x-delivery-limit": limit}))
    qq.publish(queue, "m")
    delivered = 0
    while delivered < 5 and (got := qq.get(queue)) is not None:  # each get follows the reject
        delivered += 1
        qq.channel.basic_reject(got.tag, requeue=True)
    assert delivered == deliveries


def test_a_channel_closing_counts_against_the_delivery_limit(qq: QuorumSession) -> None:
    dead = qq.classic("dead")
    queue = qq.declare(**{"x-delivery-limit": 0, "x-dead-letter-exchange": qq.fanout(dead)})
    qq.publish(queue, "m")
    other = qq.connection.channel()
    assert other.basic_get(queue)[2] == b"m"
    other.close()
    qq.until(lambda: qq.ready(dead) == 1)
    _method, properties, _body = qq.channel.basic_get(dead, auto_ack=True)
    assert properties.headers["x-death"][0]["reason"] == "delivery_limit"


# -- dead-letter strategies ------------------------------------------------------------------------


def test_at_most_once_a_dead_letter_with_nowhere_to_go_is_gone(qq: QuorumSession) -> None:
    dlx = qq.fanout()  # bound to nothing
    queue = qq.declare(
        **{"x-dead-letter-exchange": dlx, "x-max-length": 1, "x-overflow": "reject-publish"}
    )  # the strategy is at-most-once
    qq.publish(queue, "m")
    got = qq.get(queue)
    assert got is not None
    qq.channel.basic_reject(got.tag, requeue=False)
    assert qq.publish(queue, "a", "b") == [True, True]  # nothing held back: not over the limit


def test_at_least_once_a_dead_letter_stays_and_counts_against_the_limit(
    qq: QuorumSession,
) -> None:
    dlx = qq.fanout()  # bound to nothing: the dead letter cannot be confirmed
    queue = qq.declare(
        **{
            "x-dead-letter-exchange": dlx,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
            "x-max-length": 1,
        }
    )
    qq.publish(queue, "poison")
    got = qq.get(queue)
    assert got is not None
    qq.channel.basic_reject(got.tag, requeue=False)
    assert qq.publish(queue, "a") == [True]  # the dead letter held and this one: over the limit
    assert qq.ready(queue) == 1
    assert qq.publish(queue, "b") == [False]
    assert qq.channel.queue_purge(queue).method.message_count == 1
    # Purged, but the held dead letter still counts: 1 is not below 80% of 1.
    assert qq.publish(queue, "c") == [False]


def test_at_least_once_falls_back_to_at_most_once_unless_overflow_rejects(
    qq: QuorumSession,
) -> None:
    dlx = qq.fanout()
    queue = qq.declare(
        **{
            "x-dead-letter-exchange": dlx,
            "x-dead-letter-strategy": "at-least-once",
            "x-max-length": 1,
        }
    )
    qq.publish(queue, "m")
    got = qq.get(queue)
    assert got is not None
    qq.channel.basic_reject(got.tag, requeue=False)
    # Dropped, as at-most-once (drop-head is the overflow): nothing held, nothing dropped.
    assert qq.publish(queue, "a") == [True]
    assert qq.take_all(queue) == ["a"]


# -- overflow --------------------------------------------------------------------------------------


def test_drop_head_dead_letters_the_oldest_ready_messages(qq: QuorumSession) -> None:
    dead = qq.classic("dead")
    queue = qq.declare(**{"x-max-length": 2, "x-dead-letter-exchange": qq.fanout(dead)})
    qq.publish(queue, "m1")
    assert qq.get(queue) is not None  # unacked: not counted
    assert qq.publish(queue, "m2", "m3", "m4") == [True, True, True]
    assert qq.ready(queue) == 2
    assert qq.take_all(dead) == ["m2"]
    assert qq.take_all(queue) == ["m3", "m4"]


def test_reject_publish_takes_one_past_the_limit_then_refuses_until_80_percent(
    qq: QuorumSession,
) -> None:
    queue = qq.declare(**{"x-max-length": 10, "x-overflow": "reject-publish"})
    acked = qq.publish(queue, *(f"m{n}" for n in range(13)))
    assert acked == [True] * 11 + [False, False]
    assert qq.ready(queue) == 11
    outcomes = []
    for _ in range(4):
        assert qq.get(queue, no_ack=True) is not None
        outcomes.append((qq.ready(queue), qq.publish(queue, "again")))
    # Refused at 10 and 9; at 8 (80% of 10) it takes publishes again.
    assert outcomes == [(10, [False]), (9, [False]), (8, [True]), (8, [True])]


def test_reject_publish_dlx_acts_as_drop_head(qq: QuorumSession) -> None:
    dead = qq.classic("dead")
    queue = qq.declare(
        **{
            "x-max-length": 2,
            "x-overflow": "reject-publish-dlx",
            "x-dead-letter-exchange": qq.fanout(dead),
        }
    )
    assert qq.publish(queue, "m1", "m2", "m3", "m4") == [True] * 4
    assert qq.take_all(queue) == ["m3", "m4"]
    assert qq.take_all(dead) == ["m1", "m2"]


# -- consumers -------------------------------------------------------------------------------------


def test_higher_consumer_priorities_first_round_robin_among_equals(qq: QuorumSession) -> None:
    queue = qq.declare()
    by_consumer: list[list[Any]] = []
    for priority in (1, 5, 5):
        channel = qq.connection.channel()
        channel.basic_qos(prefetch_count=2)
        by_consumer.append(qq.consume(queue, channel, arguments={"x-priority": priority}))
    qq.publish(queue, *(f"m{n}" for n in range(6)))
    qq.until(lambda: sum(map(len, by_consumer)) == 6)
    assert [[g.body for g in received] for received in by_consumer] == [
        ["m4", "m5"],
        ["m0", "m2"],
        ["m1", "m3"],
    ]


def test_single_active_consumer_the_next_takes_over_when_the_active_one_cancels(
    qq: QuorumSession,
) -> None:
    queue = qq.declare(**{"x-single-active-consumer": True})
    channels, received = [], []
    for n, priority in enumerate((0, 5, 9)):  # x-priority means nothing here in 3.10
        channel = qq.connection.channel()
        channel.basic_qos(prefetch_count=2)
        received.append(
            qq.consume(queue, channel, consumer_tag=f"c{n}", arguments={"x-priority": priority})
        )
        channels.append(channel)
    qq.publish(queue, "m1", "m2", "m3", "m4")
    qq.until(lambda: len(received[0]) == 2)
    channels[0].basic_cancel("c0")  # its two stay unacked with it
    qq.until(lambda: len(received[1]) == 2)
    assert [g.body for g in received[1]] == ["m3", "m4"]
    assert qq.channel.queue_declare(queue, passive=True).method.consumer_count == 2
    qq.quiet()
    assert received[2] == []


def test_an_exclusive_consume_is_not_enforced(qq: QuorumSession) -> None:
    queue = qq.declare()
    qq.consume(queue, exclusive=True)
    qq.consume(queue)
    qq.consume(queue, exclusive=True)
    assert qq.channel.queue_declare(queue, passive=True).method.consumer_count == 3


def test_a_channel_with_a_global_prefetch_cannot_consume(qq: QuorumSession) -> None:
    queue = qq.declare()

    def consume(channel: Any) -> None:
        channel.basic_qos(prefetch_count=10, global_qos=True)
        channel.basic_consume(queue, lambda *_: None)

    refusal = qq.refusal(consume)
    assert refusal == (
        540,
        f"NOT_IMPLEMENTED - queue '{queue}' in vhost '/' does not support global qos",
        True,
    )
    qq.channel.basic_qos(prefetch_count=0, global_qos=True)  # no limit: fine
    qq.consume(queue)
    qq.channel.basic_qos(prefetch_count=5, global_qos=True)  # after the consume: fine too


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        ({"if_unused": True}, "if-unused"),
        ({"if_empty": True}, "if-empty"),
        ({"if_unused": True, "if_empty": True}, "if-unused"),
    ],
)
def test_delete_with_if_unused_or_if_empty_is_not_implemented(
    qq: QuorumSession, flags: dict[str, bool], flag: str
) -> None:
    queue = qq.declare()
    refusal = qq.refusal(lambda channel: channel.queue_delete(queue, **flags))
    assert refusal == (
        540,
        f"NOT_IMPLEMENTED - cannot delete queue '{queue}' in vhost '/'. queue.delete operations "
        f"with {flag} flag set are not supported by quorum queues",
        True,
    )


def test_consumer_arguments_of_other_types_are_refused(qq: QuorumSession) -> None:
    queue = qq.declare()
    for key in ("x-cancel-on-ha-failover", "x-stream-offset"):
        refusal = qq.refusal(
            lambda channel, key=key: channel.basic_consume(queue, print, arguments={key: True})
        )
        assert (refusal.code, refusal.text) == (
            406,
            f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{queue}' in vhost '/' "
            "of queue type rabbit_quorum_queue",
        )
