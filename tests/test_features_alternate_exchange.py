"""Alternate exchanges over the wire with pika: where unroutable messages go, and what a
mandatory publisher hears. Every outcome and reply text was first observed on RabbitMQ 3.10.8.

The publishing channels are in confirm mode, so each publish is settled before the test looks:
pika raises UnroutableError for a basic.return and NackError for a nack.
"""

from __future__ import annotations

from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker, UnroutableError

from amqp_lite import ThreadedBroker


@pytest.fixture
def confirming(channel: BlockingChannel) -> BlockingChannel:
    channel.confirm_delivery()
    return channel


def _bodies(channel: BlockingChannel, queue: str) -> list[bytes]:
    taken = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append(body)


def _queue_on(channel: BlockingChannel, exchange: str, queue: str, key: str = "") -> None:
    channel.queue_declare(queue)
    channel.queue_bind(queue, exchange, key)


def _returned(channel: BlockingChannel, exchange: str, key: str, body: bytes) -> tuple[Any, ...]:
    """Publish mandatory; the basic.return it must cause, as (code, text, exchange, key, body)."""
    with pytest.raises(UnroutableError) as caught:
        channel.basic_publish(exchange, key, body, mandatory=True)
    (returned,) = caught.value.messages
    method = returned.method
    return method.reply_code, method.reply_text, method.exchange, method.routing_key, returned.body


def _refusal(channel: BlockingChannel, arguments: dict[str, Any], name: str = "x") -> str:
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.exchange_declare(name, "direct", arguments=arguments)
    assert caught.value.reply_code == 406
    return caught.value.reply_text


# -- where unroutable messages go ----------------------------------------------------------------


def test_unroutable_messages_go_to_the_alternate_exchange_routed_ones_do_not(
    confirming: BlockingChannel,
) -> None:
    confirming.exchange_declare("ae", "fanout")
    confirming.exchange_declare("x", "direct", arguments={"alternate-exchange": "ae"})
    _queue_on(confirming, "x", "bound", "k")
    _queue_on(confirming, "ae", "caught")
    confirming.basic_publish("x", "k", b"routed")
    confirming.basic_publish("x", "other", b"unroutable")
    assert _bodies(confirming, "bound") == [b"routed"]
    method, _properties, body = confirming.basic_get("caught", auto_ack=True)
    # The copy keeps the exchange and routing key it was published with.
    assert (method.exchange, method.routing_key, body) == ("x", "other", b"unroutable")
    assert _bodies(confirming, "caught") == []


def test_a_message_the_alternate_exchange_routes_counts_as_routed_for_mandatory(
    confirming: BlockingChannel,
) -> None:
    confirming.exchange_declare("ae", "fanout")
    confirming.exchange_declare("x", "direct", arguments={"alternate-exchange": "ae"})
    _queue_on(confirming, "ae", "caught")
    confirming.basic_publish("x", "nobody", b"saved", mandatory=True)  # acked, not returned
    assert _bodies(confirming, "caught") == [b"saved"]


def test_a_message_no_alternate_exchange_routes_is_returned_if_mandatory(
    confirming: BlockingChannel,
) -> None:
    confirming.exchange_declare("ae", "direct")
    confirming.exchange_declare("x", "direct", arguments={"alternate-exchange": "ae"})
    _queue_on(confirming, "ae", "caught", "only-this")
    assert _returned(confirming, "x", "k", b"lost") == (312, "NO_ROUTE", "x", "k", b"lost")
    confirming.basic_publish("x", "k", b"dropped")  # without mandatory: acked and gone
    confirming.basic_publish("x", "only-this", b"matched by the alternate's own rules")
    assert _bodies(confirming, "caught") == [b"matched by the alternate's own rules"]


def test_a_missing_alternate_exchange_routes_nothing(confirming: BlockingChannel) -> None:
    confirming.exchange_declare("x", "direct", arguments={"alternate-exchange": "not-there"})
    assert _returned(confirming, "x", "k", b"m") == (312, "NO_ROUTE", "x", "k", b"m")
    confirming.exchange_declare("not-there", "fanout")  # named before it existed: now it works
    _queue_on(confirming, "not-there", "caught")
    confirming.basic_publish("x", "k", b"m", mandatory=True)
    assert _bodies(confirming, "caught") == [b"m"]


def test_chains_of_alternate_exchanges_are_followed_with_the_original_key(
    confirming: BlockingChannel,
) -> None:
    confirming.exchange_declare("third", "topic")
    confirming.exchange_declare("second", "direct", arguments={"alternate-exchange": "third"})
    confirming.exchange_declare("first", "direct", arguments={"alternate-exchange": "second"})
    _queue_on(confirming, "third", "end", "orders.*")
    confirming.basic_publish("first", "orders.new", b"chained", mandatory=True)
    assert _returned(confirming, "first", "invoices.new", b"x")[:2] == (312, "NO_ROUTE")
    assert _bodies(confirming, "end") == [b"chained"]


@pytest.mark.parametrize(
    "loop",
    [
        {"a": "b", "b": "a"},  # two exchanges naming each other
        {"a": "a"},  # an exchange its own alternate
        {"a": "b", "b": "c", "c": "b"},  # a loop further down the chain
    ],
)
def test_loops_of_alternate_exchanges_stop(
    confirming: BlockingChannel, loop: dict[str, str]
) -> None:
    for name, alternate in loop.items():
        confirming.exchange_declare(name, "direct", arguments={"alternate-exchange": alternate})
    assert _returned(confirming, "a", "k", b"m") == (312, "NO_ROUTE", "a", "k", b"m")
    confirming.basic_publish("a", "k", b"quiet")  # acked: the channel lives on
    _queue_on(confirming, "a", "q", "k")
    confirming.basic_publish("a", "k", b"routed", mandatory=True)
    assert _bodies(confirming, "q") == [b"routed"]


def test_the_alternate_exchange_may_be_internal(confirming: BlockingChannel) -> None:
    confirming.exchange_declare("ae", "fanout", internal=True)
    confirming.exchange_declare("x", "direct", arguments={"alternate-exchange": "ae"})
    _queue_on(confirming, "ae", "caught")
    confirming.basic_publish("x", "k", b"m", mandatory=True)
    assert _bodies(confirming, "caught") == [b"m"]


def test_an_exchange_that_routes_to_another_exchange_is_not_unroutable(
    confirming: BlockingChannel,
) -> None:
    """Each exchange of the walk uses its own alternate when its own bindings match nothing."""
    confirming.exchange_declare("source-ae", "fanout")
    confirming.exchange_declare("dest-ae", "fanout")
    confirming.exchange_declare("source", "fanout", arguments={"alternate-exchange": "source-ae"})
    confirming.exchange_declare("dest", "direct", arguments={"alternate-exchange": "dest-ae"})
    confirming.exchange_bind("dest", "source")
    _queue_on(confirming, "source-ae", "from-source")
    _queue_on(confirming, "dest-ae", "from-dest")
    confirming.basic_publish("source", "k", b"m", mandatory=True)
    assert _bodies(confirming, "from-source") == []
    assert _bodies(confirming, "from-dest") == [b"m"]


def test_a_dead_letter_exchange_uses_its_alternate_exchange(channel: BlockingChannel) -> None:
    channel.exchange_declare("ae", "fanout")
    channel.exchange_declare("dlx", "direct", arguments={"alternate-exchange": "ae"})
    _queue_on(channel, "ae", "caught")
    channel.queue_declare("work", arguments={"x-dead-letter-exchange": "dlx"})
    channel.basic_publish("", "work", b"m")
    method, _properties, _body = channel.basic_get("work")
    channel.basic_reject(method.delivery_tag, requeue=False)
    method, properties, body = channel.basic_get("caught", auto_ack=True)
    assert (method.exchange, method.routing_key, body) == ("dlx", "work", b"m")
    assert properties.headers["x-death"][0]["reason"] == "rejected"


def test_the_argument_beats_a_policy_which_applies_when_there_is_none(
    broker: ThreadedBroker, confirming: BlockingChannel
) -> None:
    definition = {"alternate-exchange": "policy-ae"}
    broker.set_policy("/", "ae", "^pol", definition, apply_to="exchanges")
    confirming.exchange_declare("policy-ae", "fanout")
    confirming.exchange_declare("argument-ae", "fanout")
    _queue_on(confirming, "policy-ae", "by-policy")
    _queue_on(confirming, "argument-ae", "by-argument")
    confirming.exchange_declare("pol-plain", "direct")
    own = {"alternate-exchange": "argument-ae"}
    confirming.exchange_declare("pol-own", "direct", arguments=own)
    confirming.basic_publish("pol-plain", "k", b"1", mandatory=True)
    confirming.basic_publish("pol-own", "k", b"2", mandatory=True)
    assert _bodies(confirming, "by-policy") == [b"1"]
    assert _bodies(confirming, "by-argument") == [b"2"]


# -- the argument --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name"), [(5, "signedint"), (True, "bool"), (b"ae", "binary")]
)
def test_an_alternate_exchange_that_is_not_a_string_is_refused(
    channel: BlockingChannel, value: object, type_name: str
) -> None:
    assert _refusal(channel, {"alternate-exchange": value}) == (
        f"PRECONDITION_FAILED - invalid type '{type_name}' for arg 'alternate-exchange' "
        "in exchange 'x' in vhost '/'"
    )


def test_the_empty_name_is_accepted_and_routes_nowhere(confirming: BlockingChannel) -> None:
    """Not even through the default exchange to a queue named like a routing key."""
    confirming.queue_declare("named")
    confirming.exchange_declare("x", "direct", arguments={"alternate-exchange": ""})
    assert _returned(confirming, "x", "named", b"m")[:2] == (312, "NO_ROUTE")
    with pytest.raises(UnroutableError):  # CC keys take the full routing walk
        cc = pika.BasicProperties(headers={"CC": ["named"]})
        confirming.basic_publish("x", "other", b"cc", cc, mandatory=True)
    confirming.exchange_declare("source", "fanout")
    confirming.exchange_bind("x", "source")
    assert _returned(confirming, "source", "named", b"e2e")[:2] == (312, "NO_ROUTE")
    assert _bodies(confirming, "named") == []


@pytest.mark.parametrize(
    ("first", "again", "text"),
    [
        ("a", "b", "received 'b' but current is 'a'"),
        ("a", None, "received none but current is the value 'a' of type 'longstr'"),
        (None, "b", "received the value 'b' of type 'longstr' but current is none"),
        ("", None, "received none but current is the value '' of type 'longstr'"),
    ],
)
def test_redeclaring_with_another_alternate_exchange_is_refused(
    connection: pika.BlockingConnection, first: str | None, again: str | None, text: str
) -> None:
    def arguments(value: str | None) -> dict[str, str]:
        return {} if value is None else {"alternate-exchange": value}

    channel = connection.channel()
    channel.exchange_declare("x", "direct", arguments=arguments(first))
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.exchange_declare("x", "direct", arguments=arguments(again))
    assert (caught.value.reply_code, caught.value.reply_text) == (
        406,
        f"PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' "
        f"in vhost '/': {text}",
    )


def test_a_binary_with_the_same_bytes_is_the_same_alternate_exchange(
    channel: BlockingChannel,
) -> None:
    channel.exchange_declare("x", "direct", arguments={"alternate-exchange": "ae"})
    channel.exchange_declare("x", "direct", arguments={"alternate-exchange": b"ae"})
