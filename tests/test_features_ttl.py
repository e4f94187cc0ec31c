"""Message TTL and queue expiry over the wire, on a broker whose clock only the test moves.

Queue `x-message-ttl`, the `expiration` property (the lower wins), expiry at the head only,
TTL 0, requeues, invalid expirations, `x-expires`, and expiry kept across a restart. Every
expectation was first observed on RabbitMQ 3.10.8; none of these tests sleeps.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from amqp_lite import ThreadedBroker, run_in_thread
from tests.conftest import FROZEN_AT
from tests.pika_helpers import ready
from vhosts.clock import Clock

T0 = FROZEN_AT
HOUR_MS = 3_600_000


pytestmark = [pytest.mark.frozen_clock, pytest.mark.confirms]


def _at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def _expiring(expiration: str) -> pika.BasicProperties:
    return pika.BasicProperties(expiration=expiration)


def _dead_letters_to(queue: str, **arguments: Any) -> dict[str, Any]:
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue, **arguments}


def _bodies(channel: BlockingChannel, queue: str) -> list[bytes]:
    """Everything `queue` hands out now, by basic.get."""
    got = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        got.append(body)


def _reasons(channel: BlockingChannel, queue: str) -> list[tuple[bytes, str]]:
    """(body, reason of its latest death) of every dead letter in `queue`."""
    got = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        got.append((body, properties.headers["x-death"][0]["reason"]))


def _exists(broker: ThreadedBroker, queue: str) -> bool:
    """Looked up in the broker itself: a passive declare would count as a use (x-expires)."""
    return broker.call(lambda: queue in broker.node.vhosts["/"].queues)


# -- message TTL -----------------------------------------------------------------------------------


def test_a_one_hour_queue_ttl_expires_after_exactly_one_hour(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("q", arguments={"x-message-ttl": HOUR_MS})
    channel.basic_publish("", "q", b"m")
    broker.advance(3599)
    assert ready(channel, "q") == 1
    broker.advance(1)
    assert ready(channel, "q") == 0
    assert _bodies(channel, "q") == []


def test_a_message_expiration_expires_it(broker: ThreadedBroker, channel: BlockingChannel) -> None:
    channel.queue_declare("q")
    channel.basic_publish("", "q", b"short", _expiring("60000"))
    channel.basic_publish("", "q", b"forever")
    broker.advance(59)
    assert ready(channel, "q") == 2
    broker.advance(1)
    assert _bodies(channel, "q") == [b"forever"]


@pytest.mark.parametrize(
    ("queue_ttl", "expiration"),
    [(HOUR_MS, "60000"), (60_000, str(HOUR_MS))],
    ids=["message", "queue"],
)
def test_the_lower_of_queue_ttl_and_expiration_wins(
    broker: ThreadedBroker, channel: BlockingChannel, queue_ttl: int, expiration: str
) -> None:
    channel.queue_declare("q", arguments={"x-message-ttl": queue_ttl})
    channel.basic_publish("", "q", b"m", _expiring(expiration))
    broker.advance(59)
    assert ready(channel, "q") == 1
    broker.advance(1)
    assert ready(channel, "q") == 0


def test_expired_messages_are_dead_lettered_when_they_reach_the_head(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("dlq")
    channel.queue_declare("q", arguments=_dead_letters_to("dlq", **{"x-message-ttl": 10_000}))
    channel.basic_publish("", "q", b"1")
    broker.advance(4)
    channel.basic_publish("", "q", b"2")
    broker.advance(6)  # "1" is 10 s old, "2" 6 s
    assert (ready(channel, "q"), ready(channel, "dlq")) == (1, 1)
    method, properties, body = channel.basic_get("dlq", auto_ack=True)
    assert (body, method.routing_key) == (b"1", "dlq")
    [death] = properties.headers["x-death"]
    assert (death["reason"], death["queue"], death["time"]) == ("expired", "q", _at(T0 + 10))
    broker.advance(4)
    assert _reasons(channel, "dlq") == [(b"2", "expired")]


def test_an_unexpired_head_keeps_an_expired_message_behind_it_until_it_leaves(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    """RabbitMQ looks for expired messages only at the head of the queue."""
    channel.queue_declare("dlq")
    channel.queue_declare("q", arguments=_dead_letters_to("dlq"))
    channel.basic_publish("", "q", b"long", _expiring("60000"))
    channel.basic_publish("", "q", b"short", _expiring("1000"))
    broker.advance(5)
    assert (ready(channel, "q"), ready(channel, "dlq")) == (2, 0)
    method, _properties, body = channel.basic_get("q")
    assert body == b"long"
    # "short" is the head now, and long past its time: dead-lettered at once, never delivered.
    assert (ready(channel, "q"), ready(channel, "dlq")) == (0, 1)
    channel.basic_ack(method.delivery_tag)
    assert _bodies(channel, "q") == []
    assert _reasons(channel, "dlq") == [(b"short", "expired")]


def test_a_head_dropped_for_the_length_limit_uncovers_an_expired_message(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    """drop-head makes a new head; what is past its time there goes at once, as RabbitMQ does.
    (Found by the queue model test.)"""
    channel.queue_declare("dlq")
    channel.queue_declare("q", arguments=_dead_letters_to("dlq", **{"x-max-length": 2}))
    channel.basic_publish("", "q", b"first")
    channel.basic_publish("", "q", b"stale", _expiring("1000"))
    broker.advance(5)  # "stale" is past its time but not the head: it waits
    assert (ready(channel, "q"), ready(channel, "dlq")) == (2, 0)
    channel.basic_publish("", "q", b"third")  # over the limit: "first" is dropped
    assert (ready(channel, "q"), ready(channel, "dlq")) == (1, 2)
    assert _reasons(channel, "dlq") == [(b"first", "maxlen"), (b"stale", "expired")]


def test_a_consumer_never_gets_an_expired_message(
    broker: ThreadedBroker, connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("dlq")
    channel.queue_declare("q", arguments=_dead_letters_to("dlq"))
    channel.basic_publish("", "q", b"long", _expiring("60000"))
    channel.basic_publish("", "q", b"expired", _expiring("1000"))
    channel.basic_publish("", "q", b"plain")
    channel.basic_publish("", "q", b"soon", _expiring("10000"))
    broker.advance(5)  # "expired" is past its time, behind an unexpired head
    received: list[tuple[bytes, int]] = []
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume("q", lambda _c, m, _p, b: received.append((b, m.delivery_tag)))

    def deliveries() -> list[bytes]:
        ready(channel, "q")  # a round trip: what the broker sent is here when it returns
        connection.process_data_events(time_limit=0)
        return [body for body, _tag in received]

    assert deliveries() == [b"long"]
    channel.basic_ack(received[-1][1])
    assert deliveries() == [b"long", b"plain"]
    # While "plain" is unacked, "soon" is the head: it expires on time all the same.
    broker.advance(5)
    assert (ready(channel, "q"), ready(channel, "dlq")) == (0, 2)
    channel.basic_ack(received[-1][1])
    assert deliveries() == [b"long", b"plain"]
    assert _reasons(channel, "dlq") == [(b"expired", "expired"), (b"soon", "expired")]


# -- TTL 0 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["queue", "message"])
def test_ttl_0_reaches_a_waiting_consumer_and_nobody_else(
    connection: pika.BlockingConnection, channel: BlockingChannel, where: str
) -> None:
    arguments = {"x-message-ttl": 0} if where == "queue" else {}
    properties = _expiring("0") if where == "message" else None
    channel.queue_declare("dlq")
    channel.queue_declare("q", arguments=_dead_letters_to("dlq", **arguments))
    channel.basic_publish("", "q", b"nobody waiting", properties)
    assert (ready(channel, "q"), ready(channel, "dlq")) == (0, 1)

    received: list[tuple[bytes, int]] = []
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume("q", lambda _c, m, _p, b: received.append((b, m.delivery_tag)))
    channel.basic_publish("", "q", b"waited for", properties)
    channel.basic_publish("", "q", b"consumer busy", properties)  # its one credit is taken
    ready(channel, "q")
    connection.process_data_events(time_limit=0)
    assert [body for body, _tag in received] == [b"waited for"]
    assert _reasons(channel, "dlq") == [
        (b"nobody waiting", "expired"),
        (b"consumer busy", "expired"),
    ]


# -- requeued messages -----------------------------------------------------------------------------


def test_a_requeued_message_keeps_its_original_expiry(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("q", arguments={"x-message-ttl": 10_000})
    channel.basic_publish("", "q", b"m")
    method, _properties, _body = channel.basic_get("q")
    broker.advance(5)
    channel.basic_nack(method.delivery_tag, requeue=True)
    assert ready(channel, "q") == 1
    broker.advance(5)  # 10 s after it was published, not after it came back
    assert ready(channel, "q") == 0


def test_an_unacked_message_does_not_expire_but_goes_at_once_when_requeued_late(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("dlq")
    channel.queue_declare("q", arguments=_dead_letters_to("dlq", **{"x-message-ttl": 10_000}))
    channel.basic_publish("", "q", b"m")
    method, _properties, _body = channel.basic_get("q")
    broker.advance(60)
    assert ready(channel, "dlq") == 0  # TTL applies to ready messages only
    channel.basic_nack(method.delivery_tag, requeue=True)
    assert (ready(channel, "q"), ready(channel, "dlq")) == (0, 1)
    assert _reasons(channel, "dlq") == [(b"m", "expired")]


# -- invalid expirations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expiration", "complaint"),
    [
        ("abc", "no_integer"),
        ("-1", "{value_negative,-1}"),
        ("1.5", '{leftover_string,".5"}'),
        ("315360000001", "{value_too_large,315360000001}"),  # ten years and a millisecond
        ("9" * 19, "{value_too_large,\n" + " " * 43 + "9" * 19 + "}"),  # ~p wraps at 79
    ],
)
def test_an_invalid_expiration_closes_the_channel_with_406(
    channel: BlockingChannel, expiration: str, complaint: str
) -> None:
    channel.queue_declare("q")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.basic_publish("", "q", b"m", _expiring(expiration))
    assert (closed.value.reply_code, closed.value.reply_text) == (
        406,
        f"PRECONDITION_FAILED - invalid expiration '{expiration}': {complaint}",
    )


def test_ten_years_is_the_longest_expiration(channel: BlockingChannel) -> None:
    channel.queue_declare("q")
    channel.basic_publish("", "q", b"m", _expiring("315360000000"))
    assert ready(channel, "q") == 1


# -- x-expires -------------------------------------------------------------------------------------


def test_an_unused_queue_is_deleted_after_x_expires(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("dlq")
    channel.queue_declare("q", arguments=_dead_letters_to("dlq", **{"x-expires": 60_000}))
    channel.basic_publish("", "q", b"m")  # a publish is no use of the queue
    broker.advance(59)
    assert _exists(broker, "q")
    broker.advance(1)
    assert not _exists(broker, "q")
    assert ready(channel, "dlq") == 0  # its messages go with it, not dead-lettered


USES: dict[str, Callable[[BlockingChannel], object]] = {
    "basic.get": lambda channel: channel.basic_get("q"),
    "redeclare": lambda channel: channel.queue_declare("q", arguments={"x-expires": 60_000}),
    "passive declare": lambda channel: channel.queue_declare("q", passive=True),
}


@pytest.mark.parametrize("use", USES)
def test_a_use_starts_the_x_expires_time_over(
    broker: ThreadedBroker, channel: BlockingChannel, use: str
) -> None:
    channel.queue_declare("q", arguments={"x-expires": 60_000})
    broker.advance(50)
    USES[use](channel)
    broker.advance(50)  # 100 s since the declare, 50 since the use
    assert _exists(broker, "q")
    broker.advance(10)
    assert not _exists(broker, "q")


def test_a_consumer_keeps_its_queue_from_expiring(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("q", arguments={"x-expires": 60_000})
    broker.advance(50)
    tag = channel.basic_consume("q", lambda *_: None)
    broker.advance(3600)
    assert _exists(broker, "q")
    channel.basic_cancel(tag)  # the time starts when the last consumer goes
    broker.advance(59)
    assert _exists(broker, "q")
    broker.advance(1)
    assert not _exists(broker, "q")


# -- across a restart ------------------------------------------------------------------------------


def test_a_stored_message_keeps_its_expiry_across_a_restart(tmp_path: Path) -> None:
    with run_in_thread(data_dir=tmp_path, clock=Clock(frozen_at=T0)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("q", durable=True)
        persistent = pika.BasicProperties(delivery_mode=2, expiration="60000")
        channel.basic_publish("", "q", b"m", persistent)
        connection.close()

    with run_in_thread(data_dir=tmp_path, clock=Clock(frozen_at=T0 + 30)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        assert ready(channel, "q") == 1
        broker.advance(29)  # 59 s after the publish: the restart did not start it over
        assert ready(channel, "q") == 1
        broker.advance(1)
        assert ready(channel, "q") == 0
        assert _bodies(channel, "q") == []
        connection.close()
