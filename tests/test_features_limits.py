"""Queue length limits over the wire with pika: x-max-length, x-max-length-bytes and every
x-overflow mode, seen through publisher confirms. Every outcome and text was first observed on
RabbitMQ 3.10.8.

Publishes go through a confirming channel, so each one is settled before the test looks:
`_publish` says whether the broker acked it, nacked it, or returned it.
"""

from __future__ import annotations

import time
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker, NackError, UnroutableError

from amqp_lite import ThreadedBroker
from tests.pika_helpers import Received, collector, ready, wait_for

DEAD = "dead"  # where the limited queues dead-letter to, through the default exchange
TO_DEAD = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": DEAD}


@pytest.fixture
def confirming(connection: pika.BlockingConnection) -> BlockingChannel:
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(DEAD)
    return channel


def _publish(
    channel: BlockingChannel,
    queue: str,
    body: bytes,
    *,
    exchange: str = "",
    mandatory: bool = False,
    headers: dict[str, Any] | None = None,
) -> str:
    properties = pika.BasicProperties(headers=headers) if headers else None
    try:
        channel.basic_publish(exchange, queue, body, properties, mandatory=mandatory)
    except NackError:
        return "nack"
    except UnroutableError:
        return "returned"
    return "ack"


def _bodies(channel: BlockingChannel, queue: str) -> list[bytes]:
    taken = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append(body)


def _dead_letters(channel: BlockingChannel, expected: int = 0) -> list[tuple[bytes, str, str]]:
    """(body, reason, queue) of each dead letter, from its x-death; waits for `expected` of
    them (RabbitMQ dead-letters asynchronously)."""
    deadline = time.monotonic() + 5
    while ready(channel, DEAD) < expected and time.monotonic() < deadline:
        channel.connection.sleep(0.01)
    taken = []
    while True:
        method, properties, body = channel.basic_get(DEAD, auto_ack=True)
        if method is None:
            return taken
        death = properties.headers["x-death"][0]
        assert death["count"] == 1
        taken.append((body, death["reason"], death["queue"]))


def _limited(channel: BlockingChannel, name: str, **arguments: Any) -> None:
    channel.queue_declare(name, arguments={**TO_DEAD, **arguments})


# -- x-max-length, each overflow mode ------------------------------------------------------------


def test_drop_head_acks_every_publish_and_dead_letters_the_oldest(
    confirming: BlockingChannel,
) -> None:
    _limited(confirming, "q", **{"x-max-length": 2})  # drop-head is the default
    assert [_publish(confirming, "q", b"%d" % n) for n in range(1, 5)] == ["ack"] * 4
    assert _bodies(confirming, "q") == [b"3", b"4"]
    assert _dead_letters(confirming, 2) == [(b"1", "maxlen", "q"), (b"2", "maxlen", "q")]


def test_reject_publish_nacks_what_does_not_fit_and_dead_letters_nothing(
    confirming: BlockingChannel,
) -> None:
    _limited(confirming, "q", **{"x-max-length": 2, "x-overflow": "reject-publish"})
    outcomes = [_publish(confirming, "q", b"%d" % n) for n in range(1, 5)]
    assert outcomes == ["ack", "ack", "nack", "nack"]
    assert _bodies(confirming, "q") == [b"1", b"2"]
    assert _dead_letters(confirming) == []


def test_reject_publish_dlx_nacks_and_dead_letters_what_does_not_fit(
    confirming: BlockingChannel,
) -> None:
    _limited(confirming, "q", **{"x-max-length": 2, "x-overflow": "reject-publish-dlx"})
    outcomes = [_publish(confirming, "q", b"%d" % n) for n in range(1, 5)]
    assert outcomes == ["ack", "ack", "nack", "nack"]
    assert _bodies(confirming, "q") == [b"1", b"2"]
    assert _dead_letters(confirming, 2) == [(b"3", "maxlen", "q"), (b"4", "maxlen", "q")]


@pytest.mark.parametrize("overflow", ["reject-publish", "reject-publish-dlx"])
def test_a_refused_message_still_reaches_the_other_queues_it_was_routed_to(
    confirming: BlockingChannel, overflow: str
) -> None:
    confirming.exchange_declare("fan", "fanout")
    _limited(confirming, "full", **{"x-max-length": 1, "x-overflow": overflow})
    confirming.queue_declare("roomy")
    confirming.queue_bind("full", "fan")
    confirming.queue_bind("roomy", "fan")
    outcomes = [_publish(confirming, "", b"%d" % n, exchange="fan") for n in range(1, 4)]
    assert outcomes == ["ack", "nack", "nack"]
    assert _bodies(confirming, "full") == [b"1"]
    assert _bodies(confirming, "roomy") == [b"1", b"2", b"3"]


@pytest.mark.parametrize("overflow", ["reject-publish", "reject-publish-dlx"])
def test_a_refused_mandatory_message_is_nacked_not_returned(
    confirming: BlockingChannel, overflow: str
) -> None:
    confirming.queue_declare("q", arguments={"x-max-length": 1, "x-overflow": overflow})
    assert _publish(confirming, "q", b"1", mandatory=True) == "ack"
    assert _publish(confirming, "q", b"2", mandatory=True) == "nack"


def test_without_confirms_a_refused_message_is_dropped_quietly(
    channel: BlockingChannel,
) -> None:
    channel.queue_declare("q", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    channel.basic_publish("", "q", b"1")
    channel.basic_publish("", "q", b"2")
    assert _bodies(channel, "q") == [b"1"]  # the channel is still open


def test_unacked_messages_do_not_count_toward_the_length(confirming: BlockingChannel) -> None:
    confirming.queue_declare("q", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    assert _publish(confirming, "q", b"1") == "ack"
    method, _properties, _body = confirming.basic_get("q")  # delivered, not yet acked
    assert _publish(confirming, "q", b"2") == "ack"
    assert _publish(confirming, "q", b"3") == "nack"
    confirming.basic_ack(method.delivery_tag)
    assert _bodies(confirming, "q") == [b"2"]


@pytest.mark.parametrize("overflow", ["drop-head", "reject-publish"])
def test_max_length_zero_with_a_waiting_consumer(
    connection: pika.BlockingConnection, confirming: BlockingChannel, overflow: str
) -> None:
    """drop-head hands the message straight to a consumer with room; reject-publish refuses it
    before looking for one."""
    confirming.queue_declare("q", arguments={"x-max-length": 0, "x-overflow": overflow})
    received: Received = []
    consumer = connection.channel()
    consumer.basic_consume("q", collector(received), auto_ack=True)
    outcome = _publish(confirming, "q", b"m")
    if overflow == "drop-head":
        assert outcome == "ack"
        wait_for(connection, lambda: len(received) == 1)
    else:
        assert outcome == "nack"
        assert received == []


# -- x-max-length-bytes --------------------------------------------------------------------------


def test_max_length_bytes_counts_ready_body_bytes_only(confirming: BlockingChannel) -> None:
    confirming.queue_declare(
        "q", arguments={"x-max-length-bytes": 10, "x-overflow": "reject-publish"}
    )
    assert _publish(confirming, "q", b"12345") == "ack"
    assert _publish(confirming, "q", b"67890") == "ack"  # exactly 10: fits
    assert _publish(confirming, "q", b"x") == "nack"
    method, _properties, _body = confirming.basic_get("q")  # "12345", unacked: no longer counts
    assert _publish(confirming, "q", b"abcde") == "ack"
    assert _publish(confirming, "q", b"y") == "nack"
    # Properties and headers are not body bytes: an empty body with big headers still fits.
    assert _publish(confirming, "q", b"", headers={"big": "x" * 1000}) == "ack"
    confirming.basic_ack(method.delivery_tag)
    assert _bodies(confirming, "q") == [b"67890", b"abcde", b""]


def test_drop_head_by_bytes_drops_as_many_as_it_takes(confirming: BlockingChannel) -> None:
    _limited(confirming, "q", **{"x-max-length-bytes": 6})
    for body in [b"aa", b"bb", b"cc", b"dddd"]:
        assert _publish(confirming, "q", body) == "ack"
    assert ready(confirming, "q") == 2  # "cc" and "dddd": aa and bb made room
    # A message bigger than the limit drops everything ahead of it, and then itself.
    assert _publish(confirming, "q", b"eeeeeee") == "ack"
    assert _bodies(confirming, "q") == []
    assert [body for body, _reason, _queue in _dead_letters(confirming, 5)] == [
        b"aa",
        b"bb",
        b"cc",
        b"dddd",
        b"eeeeeee",
    ]


def test_both_limits_apply_whichever_is_hit_first(confirming: BlockingChannel) -> None:
    arguments = {"x-max-length": 3, "x-max-length-bytes": 4, "x-overflow": "reject-publish"}
    confirming.queue_declare("q", arguments=arguments)
    outcomes = [_publish(confirming, "q", body) for body in [b"a", b"b", b"cc", b"d", b""]]
    assert outcomes == ["ack", "ack", "ack", "nack", "nack"]  # 4 bytes, then 3 messages


# -- requeues ------------------------------------------------------------------------------------


def _requeue_over_the_limit(channel: BlockingChannel, overflow: str) -> None:
    """Take 1 and 2 (unacked), publish 3 and 4, then requeue 1 and 2: four ready, limit two."""
    _limited(channel, "q", **{"x-max-length": 2, "x-overflow": overflow})
    channel.basic_publish("", "q", b"1")
    channel.basic_publish("", "q", b"2")
    tags = [channel.basic_get("q")[0].delivery_tag for _ in range(2)]
    channel.basic_publish("", "q", b"3")
    channel.basic_publish("", "q", b"4")
    channel.basic_nack(tags[-1], multiple=True, requeue=True)


def test_a_requeue_over_the_limit_drops_the_head_in_drop_head_mode(
    confirming: BlockingChannel,
) -> None:
    _requeue_over_the_limit(confirming, "drop-head")
    assert _bodies(confirming, "q") == [b"3", b"4"]
    assert _dead_letters(confirming, 2) == [(b"1", "maxlen", "q"), (b"2", "maxlen", "q")]


def test_a_requeue_may_overfill_a_reject_publish_queue(confirming: BlockingChannel) -> None:
    _requeue_over_the_limit(confirming, "reject-publish")
    assert ready(confirming, "q") == 4
    assert _publish(confirming, "q", b"5") == "nack"
    assert _bodies(confirming, "q") == [b"1", b"2", b"3", b"4"]
    assert _dead_letters(confirming) == []


def test_a_requeue_goes_to_a_waiting_consumer_after_the_head_is_dropped(
    connection: pika.BlockingConnection, confirming: BlockingChannel
) -> None:
    _limited(confirming, "q", **{"x-max-length": 1})
    confirming.basic_publish("", "q", b"1")
    method, _properties, _body = confirming.basic_get("q")
    confirming.basic_publish("", "q", b"2")
    received: Received = []
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=1)
    consumer.basic_consume("q", collector(received))  # takes "2", then has no room
    wait_for(connection, lambda: len(received) == 1)
    confirming.basic_publish("", "q", b"3")
    confirming.basic_nack(method.delivery_tag, requeue=True)  # "1" goes back, over the limit
    consumer.basic_ack(received[0][1])
    wait_for(connection, lambda: len(received) == 2)
    assert [body for body, _tag, _redelivered in received] == [b"2", b"3"]
    assert _dead_letters(confirming, 1) == [(b"1", "maxlen", "q")]


# -- priorities and policies ---------------------------------------------------------------------


def test_drop_head_in_a_priority_queue_drops_the_highest_priority_first(
    confirming: BlockingChannel,
) -> None:
    """The head is the message that would be delivered next."""
    _limited(confirming, "q", **{"x-max-length": 2, "x-max-priority": 5})
    for body, priority in [(b"low-1", 1), (b"high", 5), (b"low-2", 1)]:
        confirming.basic_publish("", "q", body, pika.BasicProperties(priority=priority))
    assert _bodies(confirming, "q") == [b"low-1", b"low-2"]
    assert _dead_letters(confirming, 1) == [(b"high", "maxlen", "q")]


def test_a_policy_limit_trims_the_queue_at_once(
    broker: ThreadedBroker, confirming: BlockingChannel
) -> None:
    """RabbitMQ applies a policy's limits before its overflow mode, so a queue that dropped
    heads until now trims itself even when the same policy says reject-publish."""
    _limited(confirming, "limited")
    for n in range(5):
        confirming.basic_publish("", "limited", b"%d" % n)
    definition = {"max-length": 2, "overflow": "reject-publish"}
    broker.set_policy("/", "limits", "^limited$", definition, apply_to="queues")
    assert [body for body, _reason, _queue in _dead_letters(confirming, 3)] == [b"0", b"1", b"2"]
    assert _publish(confirming, "limited", b"5") == "nack"
    assert _bodies(confirming, "limited") == [b"3", b"4"]


def test_the_smaller_of_argument_and_policy_limit_wins(
    broker: ThreadedBroker, confirming: BlockingChannel
) -> None:
    confirming.queue_declare("limited", arguments={"x-max-length": 1})
    broker.set_policy("/", "limits", "^limited$", {"max-length": 3}, apply_to="queues")
    for n in range(3):
        confirming.basic_publish("", "limited", b"%d" % n)
    assert _bodies(confirming, "limited") == [b"2"]


# -- the arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"x-max-length": -1}, "x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"),
        (
            {"x-max-length": "10"},
            "x-max-length' for queue 'q' in vhost '/': \"expected integer, got longstr\"",
        ),
        (
            {"x-max-length-bytes": -5},
            "x-max-length-bytes' for queue 'q' in vhost '/': {value_negative,-5}",
        ),
        ({"x-overflow": "drop-tail"}, "x-overflow' for queue 'q' in vhost '/': invalid_overflow"),
        (
            {"x-overflow": 1},
            "x-overflow' for queue 'q' in vhost '/': {unacceptable_type,signedint}",
        ),
    ],
)
def test_bad_limit_arguments_are_refused(
    channel: BlockingChannel, arguments: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.queue_declare("q", arguments=arguments)
    assert (caught.value.reply_code, caught.value.reply_text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg '{reason}",
    )


def test_an_overflow_mode_without_a_limit_changes_nothing(confirming: BlockingChannel) -> None:
    confirming.queue_declare("q", arguments={"x-overflow": "reject-publish"})
    assert [_publish(confirming, "q", b"%d" % n) for n in range(3)] == ["ack"] * 3
