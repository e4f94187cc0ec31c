"""The two plugin exchange types over the wire with pika.

x-consistent-hash: outcomes and texts observed on RabbitMQ 3.10.8 with the plugin enabled
(which queue a key lands on differs from RabbitMQ's, by design of exchanges.consistent_hash).
x-delayed-message: the plugin was not on the oracle node; its behaviour here is the plugin's
own for RabbitMQ 3.10 as its source and README give it: a held message routes to nothing at
publish time (so mandatory returns it and an alternate exchange takes it at once), and the
message released later carries x-delay negated. Time is the broker's frozen clock, moved by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker, UnroutableError

from amqp_lite import ThreadedBroker, run_in_thread
from vhosts.clock import Clock

# -- consistent hash -----------------------------------------------------------------------------


@pytest.fixture
def confirming(channel: BlockingChannel) -> BlockingChannel:
    channel.confirm_delivery()
    return channel


def _placement(channel: BlockingChannel, queues: list[str]) -> dict[bytes, str]:
    """Which queue each body went to; each must be in exactly one."""
    where: dict[bytes, str] = {}
    for queue in queues:
        while True:
            method, _properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            assert body not in where, f"{body!r} reached two queues"
            where[body] = queue
    return where


def _hash_exchange(
    channel: BlockingChannel, weights: dict[str, str], **arguments: Any
) -> list[str]:
    channel.exchange_declare("hash", "x-consistent-hash", arguments=arguments)
    for queue, weight in weights.items():
        channel.queue_declare(queue)
        channel.queue_bind(queue, "hash", weight)
    return list(weights)


def test_each_message_goes_to_one_queue_the_same_key_always_to_the_same(
    confirming: BlockingChannel,
) -> None:
    queues = _hash_exchange(confirming, {"q1": "1", "q2": "1", "q3": "1"})
    for round_ in range(3):
        for key in range(50):
            confirming.basic_publish("hash", f"key-{key}", f"{key}/{round_}".encode())
    placement = _placement(confirming, queues)
    assert len(placement) == 150
    for key in range(50):
        assert len({placement[f"{key}/{round_}".encode()] for round_ in range(3)}) == 1
    assert set(placement.values()) == set(queues)  # 50 keys spread over all three


def test_weights_share_the_keys(confirming: BlockingChannel) -> None:
    queues = _hash_exchange(confirming, {"light": "1", "heavy": "3"})
    for key in range(2000):
        confirming.basic_publish("hash", f"order-{key}", b"%d" % key)
    counts = Counter(_placement(confirming, queues).values())
    assert counts["light"] + counts["heavy"] == 2000
    assert 350 < counts["light"] < 650  # a quarter, give or take


def test_a_new_binding_takes_keys_only_for_itself(confirming: BlockingChannel) -> None:
    queues = _hash_exchange(confirming, {"q1": "1", "q2": "1"})
    for key in range(300):
        confirming.basic_publish("hash", f"k{key}", b"%d" % key)
    before = _placement(confirming, queues)
    confirming.queue_declare("q3")
    confirming.queue_bind("q3", "hash", "1")
    for key in range(300):
        confirming.basic_publish("hash", f"k{key}", b"%d" % key)
    after = _placement(confirming, [*queues, "q3"])
    moved = {body for body in after if after[body] != before[body]}
    assert moved and all(after[body] == "q3" for body in moved)


def test_hash_header_routes_on_the_header_and_without_it_all_go_together(
    confirming: BlockingChannel,
) -> None:
    queues = _hash_exchange(
        confirming, {"q1": "1", "q2": "1", "q3": "1"}, **{"hash-header": "user"}
    )
    for n in range(60):
        user = pika.BasicProperties(headers={"user": f"u{n % 6}"})
        confirming.basic_publish("hash", f"rk-{n}", f"{n % 6}/{n}".encode(), user)
    for n in range(10):
        confirming.basic_publish("hash", f"rk-{n}", f"none/{n}".encode())
    placement = _placement(confirming, queues)
    by_user: dict[str, set[str]] = {}
    for body, queue in placement.items():
        by_user.setdefault(body.decode().split("/")[0], set()).add(queue)
    assert len(by_user) == 7 and all(len(places) == 1 for places in by_user.values())


def test_with_no_bindings_a_mandatory_message_is_returned(confirming: BlockingChannel) -> None:
    confirming.exchange_declare("hash", "x-consistent-hash")
    with pytest.raises(UnroutableError):
        confirming.basic_publish("hash", "k", b"m", mandatory=True)


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("abc", 'The binding key must be an integer: <<"abc">>'),
        (" 2", 'The binding key must be an integer: <<" 2">>'),
        ("1.5", 'The binding key must be an integer: <<"1.5">>'),
        ("0", "The binding key must be greater than 0"),
        ("-1", "The binding key must be greater than 0"),
    ],
)
def test_a_binding_key_that_is_no_weight_is_refused(
    channel: BlockingChannel, key: str, text: str
) -> None:
    channel.exchange_declare("hash", "x-consistent-hash")
    channel.queue_declare("q")
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.queue_bind("q", "hash", key)
    assert (caught.value.reply_code, caught.value.reply_text) == (
        406,
        f"PRECONDITION_FAILED - {text}",
    )


# -- delayed message -----------------------------------------------------------------------------

DELAYED = "x-delayed-message"


@pytest.fixture
def frozen() -> Iterator[ThreadedBroker]:
    with run_in_thread(clock=Clock(frozen_at=1_000_000.0)) as running:
        yield running


@pytest.fixture
def delayed_channel(frozen: ThreadedBroker) -> Iterator[BlockingChannel]:
    """A confirming channel with exchange "later" (x-delayed-type direct) and queue "q" bound
    to it with key "k"."""
    connection = pika.BlockingConnection(pika.URLParameters(frozen.url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.exchange_declare("later", DELAYED, arguments={"x-delayed-type": "direct"})
    channel.queue_declare("q")
    channel.queue_bind("q", "later", "k")
    yield channel
    connection.close()


def _delayed(delay: Any) -> pika.BasicProperties:
    return pika.BasicProperties(headers={"x-delay": delay})


def _taken(channel: BlockingChannel, queue: str = "q") -> list[tuple[bytes, Any]]:
    """(body, x-delay header) of each ready message."""
    taken = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append((body, (properties.headers or {}).get("x-delay")))


def test_a_delayed_message_arrives_once_its_delay_is_over(
    frozen: ThreadedBroker, delayed_channel: BlockingChannel
) -> None:
    delayed_channel.basic_publish("later", "k", b"m", _delayed(5000))  # acked at once
    assert _taken(delayed_channel) == []
    frozen.advance(4.999)
    assert _taken(delayed_channel) == []
    frozen.advance(0.001)
    assert _taken(delayed_channel) == [(b"m", -5000)]  # marked as released by the plugin


@pytest.mark.parametrize(
    "delay",
    [None, 0, -5000, 2**32, Decimal("1.5"), True, "soon", b"5000"],
    ids=["none", "zero", "negative", "beyond-timers", "decimal", "bool", "text", "binary"],
)
def test_without_a_delay_to_keep_a_message_goes_at_once(
    delayed_channel: BlockingChannel, delay: Any
) -> None:
    properties = None if delay is None else _delayed(delay)
    delayed_channel.basic_publish("later", "k", b"m", properties, mandatory=True)
    assert _taken(delayed_channel) == [(b"m", delay)]


def test_a_delay_given_as_text_counts(
    frozen: ThreadedBroker, delayed_channel: BlockingChannel
) -> None:
    delayed_channel.basic_publish("later", "k", b"m", _delayed("2000"))
    frozen.advance(1.999)
    assert _taken(delayed_channel) == []
    frozen.advance(0.001)
    assert _taken(delayed_channel) == [(b"m", -2000)]


def test_messages_are_released_in_the_order_their_delays_end(
    frozen: ThreadedBroker, delayed_channel: BlockingChannel
) -> None:
    for delay in (3000, 1000, 2000):
        delayed_channel.basic_publish("later", "k", b"%d" % delay, _delayed(delay))
    delayed_channel.basic_publish("later", "k", b"now")
    frozen.advance(10)
    assert [body for body, _delay in _taken(delayed_channel)] == [b"now", b"1000", b"2000", b"3000"]


@pytest.mark.parametrize(
    ("delayed_type", "binding", "routed", "unrouted"),
    [
        ("topic", "orders.*", "orders.new", "invoices.new"),
        ("fanout", "", "anything", None),
        ("direct", "exact", "exact", "exact.not"),
    ],
)
def test_released_messages_route_by_the_delayed_types_rules(
    frozen: ThreadedBroker,
    delayed_channel: BlockingChannel,
    delayed_type: str,
    binding: str,
    routed: str,
    unrouted: str | None,
) -> None:
    delayed_channel.exchange_declare("typed", DELAYED, arguments={"x-delayed-type": delayed_type})
    delayed_channel.queue_declare("typed-q")
    delayed_channel.queue_bind("typed-q", "typed", binding)
    delayed_channel.basic_publish("typed", routed, b"routed", _delayed(100))
    if unrouted is not None:
        delayed_channel.basic_publish("typed", unrouted, b"unrouted", _delayed(100))
    frozen.advance(0.1)
    assert [body for body, _delay in _taken(delayed_channel, "typed-q")] == [b"routed"]


def test_headers_rules_see_the_released_x_delay(
    frozen: ThreadedBroker, delayed_channel: BlockingChannel
) -> None:
    delayed_channel.exchange_declare("typed", DELAYED, arguments={"x-delayed-type": "headers"})
    delayed_channel.queue_declare("typed-q")
    delayed_channel.queue_bind("typed-q", "typed", "", {"x-match": "all", "kind": "order"})
    properties = pika.BasicProperties(headers={"x-delay": 100, "kind": "order"})
    delayed_channel.basic_publish("typed", "", b"m", properties)
    frozen.advance(0.1)
    assert _taken(delayed_channel, "typed-q") == [(b"m", -100)]


def test_a_mandatory_delayed_message_is_returned_yet_still_delivered(
    frozen: ThreadedBroker, delayed_channel: BlockingChannel
) -> None:
    """The plugin routes a message it holds to nothing: mandatory cannot work with it."""
    with pytest.raises(UnroutableError) as caught:
        delayed_channel.basic_publish("later", "k", b"m", _delayed(1000), mandatory=True)
    (returned,) = caught.value.messages
    assert (returned.method.reply_code, returned.method.reply_text) == (312, "NO_ROUTE")
    frozen.advance(1)
    assert _taken(delayed_channel) == [(b"m", -1000)]


def test_an_alternate_exchange_gets_a_delayed_message_at_once(
    frozen: ThreadedBroker, delayed_channel: BlockingChannel
) -> None:
    delayed_channel.exchange_declare("ae", "fanout")
    delayed_channel.queue_declare("caught")
    delayed_channel.queue_bind("caught", "ae")
    arguments = {"x-delayed-type": "direct", "alternate-exchange": "ae"}
    delayed_channel.exchange_declare("later-ae", DELAYED, arguments=arguments)
    delayed_channel.queue_bind("q", "later-ae", "k")
    delayed_channel.basic_publish("later-ae", "k", b"m", _delayed(1000), mandatory=True)
    assert _taken(delayed_channel, "caught") == [(b"m", 1000)]
    frozen.advance(1)
    assert _taken(delayed_channel) == [(b"m", -1000)]
    assert _taken(delayed_channel, "caught") == []


def test_a_delayed_exchange_holds_what_reaches_it_through_another_exchange(
    frozen: ThreadedBroker, delayed_channel: BlockingChannel
) -> None:
    """The plugin's hold is part of routing, so an exchange-to-exchange binding meets it too."""
    delayed_channel.exchange_declare("front", "direct")
    delayed_channel.exchange_bind("later", "front", "k")
    delayed_channel.queue_declare("now")
    delayed_channel.queue_bind("now", "front", "k")
    delayed_channel.basic_publish("front", "k", b"m", _delayed(1000))
    assert _taken(delayed_channel, "now") == [(b"m", 1000)]
    assert _taken(delayed_channel) == []
    frozen.advance(1)
    assert _taken(delayed_channel) == [(b"m", -1000)]


def test_a_delayed_dead_letter_exchange_holds_a_rejected_message(
    frozen: ThreadedBroker, delayed_channel: BlockingChannel
) -> None:
    """Retry with a delay: a consumer rejects, the dead-letter exchange waits x-delay."""
    arguments = {"x-dead-letter-exchange": "later", "x-dead-letter-routing-key": "k"}
    delayed_channel.queue_declare("work", arguments=arguments)
    delayed_channel.basic_publish("", "work", b"m", _delayed(2000))
    method, _properties, _body = delayed_channel.basic_get("work")
    delayed_channel.basic_reject(method.delivery_tag, requeue=False)
    assert _taken(delayed_channel) == []
    frozen.advance(2)
    method, properties, body = delayed_channel.basic_get("q", auto_ack=True)
    assert (body, properties.headers["x-delay"]) == (b"m", -2000)
    assert properties.headers["x-death"][0]["reason"] == "rejected"


def test_a_held_message_keeps_its_bcc_keys_and_still_hides_them(
    frozen: ThreadedBroker, delayed_channel: BlockingChannel
) -> None:
    properties = pika.BasicProperties(headers={"x-delay": 500, "BCC": ["k"]})
    delayed_channel.basic_publish("later", "unbound", b"m", properties)
    frozen.advance(0.5)
    _method, properties, body = delayed_channel.basic_get("q", auto_ack=True)
    assert (body, properties.headers) == (b"m", {"x-delay": -500})


def test_a_message_held_by_a_deleted_exchange_goes_nowhere(
    frozen: ThreadedBroker, delayed_channel: BlockingChannel
) -> None:
    delayed_channel.basic_publish("later", "k", b"m", _delayed(1000))
    delayed_channel.exchange_delete("later")
    delayed_channel.exchange_declare("later", DELAYED, arguments={"x-delayed-type": "direct"})
    delayed_channel.queue_bind("q", "later", "k")
    frozen.advance(1)
    assert _taken(delayed_channel) == []


@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        ({}, "Invalid argument, 'x-delayed-type' must be an existing exchange type"),
        (
            {"x-delayed-type": 5},
            "Invalid argument, 'x-delayed-type' must be an existing exchange type",
        ),
        (
            {"x-delayed-type": DELAYED},
            "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'",
        ),
    ],
)
def test_a_missing_or_invalid_delayed_type_is_refused(
    channel: BlockingChannel, arguments: dict[str, Any], text: str
) -> None:
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.exchange_declare("later", DELAYED, arguments=arguments)
    assert (caught.value.reply_code, caught.value.reply_text) == (
        406,
        f"PRECONDITION_FAILED - {text}",
    )


def test_an_unknown_delayed_type_closes_the_connection(channel: BlockingChannel) -> None:
    """The plugin asks RabbitMQ's own exchange type check, which fails the connection."""
    with pytest.raises(ConnectionClosedByBroker) as caught:
        channel.exchange_declare("later", DELAYED, arguments={"x-delayed-type": "bogus"})
    assert (caught.value.reply_code, caught.value.reply_text) == (
        503,
        "COMMAND_INVALID - unknown exchange type 'bogus'",
    )
