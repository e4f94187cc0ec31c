"""Argument validation and argument/policy precedence (vhosts.queue_settings).

Every reply text and every precedence rule here was checked against RabbitMQ 3.10.8, except the
x-delayed-message texts (that plugin was not on the node; they are the plugin's own).
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vhosts.classic_queue import ClassicQueue
from vhosts.errors import BrokerError, CommandInvalid, PreconditionFailed
from vhosts.queue_settings import (
    QueueSettings,
    resolve_alternate_exchange,
    resolve_queue_settings,
    validate_exchange_arguments,
)
from vhosts.queue_types import check_new_queue

Q = "queue 'q' in vhost '/'"
X = "exchange 'x' in vhost '/'"
TYPES = ("direct", "fanout", "topic", "headers")


def validate_queue_arguments(arguments: dict[str, Any], *, queue_description: str) -> None:
    """The checks of a new durable queue's arguments (its type's, classic by default)."""
    check_new_queue(
        arguments,
        durable=True,
        exclusive=False,
        auto_delete=False,
        queue_description=queue_description,
    )


def validate_consume_arguments(arguments: dict[str, Any], *, queue_description: str) -> int:
    """A classic queue's checks of basic.consume arguments; returns the consumer priority."""
    assert queue_description == Q
    return ClassicQueue("/", "q").validate_consume_arguments(arguments)


def queue_error(arguments: dict[str, Any]) -> str:
    with pytest.raises(PreconditionFailed) as caught:
        validate_queue_arguments(arguments, queue_description=Q)
    assert caught.value.reply_code == 406
    return caught.value.text


# -- queue.declare ---------------------------------------------------------------------------------

# (value, reason) for a refused x-message-ttl: the wire types RabbitMQ names.
WRONG_TYPES = [
    ("10", '"expected integer, got longstr"'),
    (b"10", '"expected integer, got binary"'),
    (1.5, '"expected integer, got double"'),
    (10.0, '"expected integer, got double"'),
    (True, '"expected integer, got bool"'),
    (False, '"expected integer, got bool"'),
    (Decimal("1.5"), '"expected integer, got decimal"'),
    (None, '"expected integer, got void"'),
    ([1], '"expected integer, got array"'),
    ({"a": 1}, '"expected integer, got table"'),
    (datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC), '"expected integer, got timestamp"'),
]


@pytest.mark.parametrize(("value", "reason"), WRONG_TYPES)
def test_message_ttl_of_a_wrong_type(value: Any, reason: str) -> None:
    assert queue_error({"x-message-ttl": value}) == f"invalid arg 'x-message-ttl' for {Q}: {reason}"


REFUSED = [
    ("x-message-ttl", -1, "{value_negative,-1}"),
    ("x-message-ttl", 315360000001, "{value_too_large,315360000001}"),
    ("x-message-ttl", 2**63 - 1, "{value_too_large,9223372036854775807}"),
    ("x-expires", 0, "{value_zero,0}"),
    ("x-expires", -1, "{value_negative,-1}"),
    ("x-expires", 315360000001, "{value_too_large,315360000001}"),
    ("x-expires", "1", '"expected integer, got longstr"'),
    ("x-expires", True, '"expected integer, got bool"'),
    ("x-max-length", -1, "{value_negative,-1}"),
    ("x-max-length", 1.0, '"expected integer, got double"'),
    ("x-max-length", None, '"expected integer, got void"'),
    ("x-max-length-bytes", -2, "{value_negative,-2}"),
    ("x-max-length-bytes", "1", '"expected integer, got longstr"'),
    ("x-max-priority", 256, "{max_value_exceeded,256}"),
    ("x-max-priority", 2**40, "{max_value_exceeded,1099511627776}"),
    ("x-max-priority", -1, "{value_negative,-1}"),
    ("x-max-priority", "5", '"expected integer, got longstr"'),
    ("x-max-priority", True, '"expected integer, got bool"'),
    ("x-overflow", "foo", "invalid_overflow"),
    ("x-overflow", "", "invalid_overflow"),
    ("x-overflow", b"drop-head", "{unacceptable_type,binary}"),
    ("x-overflow", 1, "{unacceptable_type,signedint}"),
    ("x-overflow", True, "{unacceptable_type,bool}"),
    ("x-single-active-consumer", 1, "{unacceptable_type,signedint}"),
    ("x-single-active-consumer", "true", "{unacceptable_type,longstr}"),
    ("x-single-active-consumer", None, "{unacceptable_type,void}"),
    ("x-queue-mode", "foo", "\"unsupported queue mode 'foo'\""),
    ("x-queue-mode", "", "\"unsupported queue mode ''\""),
    ("x-queue-mode", "fé", "\"unsupported queue mode 'fé'\""),
    ("x-queue-mode", b"lazy", "{unacceptable_type,binary}"),
    ("x-queue-mode", None, "{unacceptable_type,void}"),
    ("x-queue-version", 0, "\"unsupported queue version '0'\""),
    ("x-queue-version", 3, "\"unsupported queue version '3'\""),
    ("x-queue-version", -1, "{value_negative,-1}"),
    ("x-queue-version", "bad", '"expected integer, got longstr"'),
    ("x-queue-type", "foo", "\"unsupported queue type 'foo'\""),
    ("x-queue-type", "Classic", "\"unsupported queue type 'Classic'\""),
    ("x-queue-type", "", "\"unsupported queue type ''\""),
    ("x-queue-type", b"classic", "{unacceptable_type,binary}"),
    ("x-queue-type", 1, "{unacceptable_type,signedint}"),
    ("x-queue-type", None, "{unacceptable_type,void}"),
]


@pytest.mark.parametrize(("key", "value", "reason"), REFUSED)
def test_refused_values(key: str, value: Any, reason: str) -> None:
    assert queue_error({key: value}) == f"invalid arg '{key}' for {Q}: {reason}"


ACCEPTED = [
    {"x-message-ttl": 0},
    {"x-message-ttl": 2**32},
    {"x-message-ttl": 315360000000},
    {"x-expires": 1},
    {"x-expires": 315360000000},
    {"x-max-length": 0},
    {"x-max-length": 2**63 - 1},
    {"x-max-length-bytes": 0},
    {"x-max-priority": 0},
    {"x-max-priority": 255},
    {"x-overflow": "drop-head"},
    {"x-overflow": "reject-publish"},
    {"x-overflow": "reject-publish-dlx"},
    {"x-single-active-consumer": True},
    {"x-single-active-consumer": False},
    {"x-queue-mode": "default"},
    {"x-queue-mode": "lazy"},
    {"x-queue-version": 1},
    {"x-queue-version": 2},
    {"x-queue-type": "classic"},
    {"x-dead-letter-exchange": ""},
    {"x-dead-letter-exchange": "nonexistent"},
    {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "k"},
    {"x-dead-letter-exchange": "x", "x-dead-letter-routing-key": ""},
    # Unknown arguments pass, whatever their values.
    {"x-ha-policy": 1, "x-foo": -1, "foo": "bad", "x-queue-master-locator": "random"},
]


@pytest.mark.parametrize("arguments", ACCEPTED)
def test_accepted(arguments: dict[str, Any]) -> None:
    validate_queue_arguments(arguments, queue_description=Q)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(b"dlx", "binary"), (1, "signedint"), (True, "bool"), (None, "void")],
)
def test_dead_letter_exchange_of_a_wrong_type_has_a_text_of_its_own(
    value: Any, type_name: str
) -> None:
    assert queue_error({"x-dead-letter-exchange": value}) == (
        f"invalid type '{type_name}' for arg 'x-dead-letter-exchange' in {Q}"
    )


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"x-dead-letter-routing-key": "k"}, "routing_key_but_no_dlx_defined"),
        ({"x-dead-letter-routing-key": 1}, "{unacceptable_type,signedint}"),
        (
            {"x-dead-letter-routing-key": b"k", "x-dead-letter-exchange": "x"},
            "{unacceptable_type,binary}",
        ),
        (
            {"x-dead-letter-routing-key": None, "x-dead-letter-exchange": ""},
            "{unacceptable_type,void}",
        ),
    ],
)
def test_dead_letter_routing_key(arguments: dict[str, Any], reason: str) -> None:
    assert queue_error(arguments) == f"invalid arg 'x-dead-letter-routing-key' for {Q}: {reason}"


@pytest.mark.parametrize(
    "key",
    [
        "x-max-in-memory-length",
        "x-max-in-memory-bytes",
        "x-delivery-limit",
        "x-quorum-initial-group-size",
        "x-initial-cluster-size",
        "x-max-age",
        "x-stream-max-segment-size-bytes",
        "x-queue-leader-locator",
        "x-dead-letter-strategy",
    ],
)
@pytest.mark.parametrize("value", [1, -1, "bad", True])
def test_quorum_and_stream_arguments_are_refused_whatever_their_value(key: str, value: Any) -> None:
    assert queue_error({key: value}) == (
        f"invalid arg '{key}' for {Q} of queue type rabbit_classic_queue"
    )


# One bad value per argument; RabbitMQ reports them in this order, whatever the table's order.
BAD_IN_ORDER = [
    ("x-dead-letter-exchange", 1),
    ("x-queue-type", "foo"),
    ("x-expires", 0),
    ("x-message-ttl", -1),
    ("x-dead-letter-routing-key", 1),
    ("x-max-length", -1),
    ("x-max-length-bytes", -1),
    ("x-max-priority", 256),
    ("x-overflow", "foo"),
    ("x-queue-mode", "foo"),
    ("x-queue-version", 0),
    ("x-single-active-consumer", 1),
    ("x-max-age", 1),
]


@given(st.permutations(BAD_IN_ORDER), st.data())
def test_the_first_bad_argument_reported_is_rabbitmqs_first(
    shuffled: list[tuple[str, Any]], data: st.DataObject
) -> None:
    chosen = data.draw(st.lists(st.sampled_from(shuffled), min_size=1, unique=True))
    first = min(chosen, key=BAD_IN_ORDER.index)[0]
    reported = re.search(r"arg '([^']*)'", queue_error(dict(chosen)))
    assert reported is not None
    assert reported.group(1) == first


def test_quorum_only_arguments_are_reported_in_table_order() -> None:
    refused = " for queue 'q' in vhost '/' of queue type rabbit_classic_queue"
    assert (
        queue_error({"x-max-age": 1, "x-delivery-limit": 1}) == "invalid arg 'x-max-age'" + refused
    )
    assert queue_error({"x-delivery-limit": 1, "x-max-age": 1}) == (
        "invalid arg 'x-delivery-limit'" + refused
    )


def test_an_unknown_queue_type_is_reported_before_other_bad_values() -> None:
    assert queue_error({"x-message-ttl": -1, "x-queue-type": "bogus"}) == (
        f"invalid arg 'x-queue-type' for {Q}: \"unsupported queue type 'bogus'\""
    )


# -- exchange.declare ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(b"ae", "binary"), (1, "signedint"), (True, "bool"), (None, "void"), ([1], "array")],
)
def test_alternate_exchange_must_be_a_longstr(value: Any, type_name: str) -> None:
    with pytest.raises(PreconditionFailed) as caught:
        validate_exchange_arguments(
            "direct", {"alternate-exchange": value}, exchange_description=X, known_types=TYPES
        )
    assert caught.value.text == f"invalid type '{type_name}' for arg 'alternate-exchange' in {X}"


@pytest.mark.parametrize(
    "arguments", [{}, {"alternate-exchange": "ae"}, {"alternate-exchange": ""}, {"x-foo": 1}]
)
def test_exchange_arguments_accepted(arguments: dict[str, Any]) -> None:
    validate_exchange_arguments("topic", arguments, exchange_description=X, known_types=TYPES)


@pytest.mark.parametrize(
    ("arguments", "error", "text"),
    [
        (
            {},
            PreconditionFailed,
            "Invalid argument, 'x-delayed-type' must be an existing exchange type",
        ),
        (
            {"x-delayed-type": 1},
            PreconditionFailed,
            "Invalid argument, 'x-delayed-type' must be an existing exchange type",
        ),
        (
            {"x-delayed-type": "x-delayed-message"},
            PreconditionFailed,
            "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'",
        ),
        ({"x-delayed-type": "nonesuch"}, CommandInvalid, "unknown exchange type 'nonesuch'"),
    ],
)
def test_delayed_message_exchanges_need_a_delayed_type(
    arguments: dict[str, Any], error: type[BrokerError], text: str
) -> None:
    with pytest.raises(error) as caught:
        validate_exchange_arguments(
            "x-delayed-message", arguments, exchange_description=X, known_types=TYPES
        )
    assert caught.value.text == text


@pytest.mark.parametrize("delayed_type", ["direct", b"topic"])
def test_delayed_type_naming_a_known_type(delayed_type: Any) -> None:
    validate_exchange_arguments(
        "x-delayed-message",
        {"x-delayed-type": delayed_type},
        exchange_description=X,
        known_types=TYPES,
    )


def test_x_delayed_type_means_nothing_to_other_exchanges() -> None:
    validate_exchange_arguments(
        "direct", {"x-delayed-type": 1}, exchange_description=X, known_types=TYPES
    )


# -- basic.consume ---------------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [0, 5, -5, 2**31, -(2**31) - 1, 2**40])
def test_consumer_priority_is_any_integer(priority: int) -> None:
    assert validate_consume_arguments({"x-priority": priority}, queue_description=Q) == priority


def test_consumer_priority_defaults_to_zero_and_unknown_arguments_are_ignored() -> None:
    arguments = {"x-cancel-on-ha-failover": True, "foo": 1, "x-stream-filter": 1}
    assert validate_consume_arguments(arguments, queue_description=Q) == 0


@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        (
            {"x-priority": "5"},
            f"invalid arg 'x-priority' for {Q}: \"expected integer, got longstr\"",
        ),
        (
            {"x-priority": b"5"},
            f"invalid arg 'x-priority' for {Q}: \"expected integer, got binary\"",
        ),
        (
            {"x-priority": 5.0},
            f"invalid arg 'x-priority' for {Q}: \"expected integer, got double\"",
        ),
        ({"x-priority": True}, f"invalid arg 'x-priority' for {Q}: \"expected integer, got bool\""),
        ({"x-priority": None}, f"invalid arg 'x-priority' for {Q}: \"expected integer, got void\""),
        (
            {"x-priority": Decimal(1)},
            f"invalid arg 'x-priority' for {Q}: \"expected integer, got decimal\"",
        ),
        (
            {"x-cancel-on-ha-failover": 1},
            f"invalid arg 'x-cancel-on-ha-failover' for {Q}: {{unacceptable_type,signedint}}",
        ),
        (
            {"x-cancel-on-ha-failover": "true"},
            f"invalid arg 'x-cancel-on-ha-failover' for {Q}: {{unacceptable_type,longstr}}",
        ),
        (
            {"x-stream-offset": 1},
            f"invalid arg 'x-stream-offset' for {Q} of queue type rabbit_classic_queue",
        ),
        # x-priority is checked first, then x-cancel-on-ha-failover, then x-stream-offset.
        (
            {"x-stream-offset": 1, "x-cancel-on-ha-failover": 1, "x-priority": 1.0},
            f"invalid arg 'x-priority' for {Q}: \"expected integer, got double\"",
        ),
        (
            {"x-stream-offset": 1, "x-cancel-on-ha-failover": 1},
            f"invalid arg 'x-cancel-on-ha-failover' for {Q}: {{unacceptable_type,signedint}}",
        ),
    ],
)
def test_consume_arguments_refused(arguments: dict[str, Any], text: str) -> None:
    with pytest.raises(PreconditionFailed) as caught:
        validate_consume_arguments(arguments, queue_description=Q)
    assert caught.value.text == text


# -- precedence of arguments and policy ------------------------------------------------------------

SMALLEST = [
    ("x-message-ttl", "message-ttl", "message_ttl"),
    ("x-expires", "expires", "expires"),
    ("x-max-length", "max-length", "max_length"),
    ("x-max-length-bytes", "max-length-bytes", "max_length_bytes"),
]
ARGUMENT_FIRST = [
    ("x-dead-letter-exchange", "dead-letter-exchange", "dead_letter_exchange"),
    ("x-dead-letter-routing-key", "dead-letter-routing-key", "dead_letter_routing_key"),
]

maybe_number = st.none() | st.integers(min_value=1, max_value=10**12)
maybe_name = st.none() | st.sampled_from(["", "a", "b"])


@given(st.sampled_from(SMALLEST), maybe_number, maybe_number)
def test_the_smaller_of_argument_and_policy_wins_for_ttls_and_limits(
    keys: tuple[str, str, str], argument: int | None, policy: int | None
) -> None:
    arg_key, policy_key, field = keys
    arguments = {} if argument is None else {arg_key: argument}
    definition = {} if policy is None else {policy_key: policy}
    given_values = [v for v in (argument, policy) if v is not None]
    expected = min(given_values) if given_values else None
    assert getattr(resolve_queue_settings(arguments, definition), field) == expected


@given(st.sampled_from(ARGUMENT_FIRST), maybe_name, maybe_name)
def test_the_argument_wins_for_dead_lettering_even_when_empty(
    keys: tuple[str, str, str], argument: str | None, policy: str | None
) -> None:
    arg_key, policy_key, field = keys
    arguments = {} if argument is None else {arg_key: argument}
    definition = {} if policy is None else {policy_key: policy}
    expected = argument if argument is not None else policy
    assert getattr(resolve_queue_settings(arguments, definition), field) == expected


def test_dead_letter_keys_resolve_each_on_its_own() -> None:
    # RabbitMQ dead-letters to the argument's exchange with the policy's routing key.
    settings = resolve_queue_settings(
        {"x-dead-letter-exchange": "a"},
        {"dead-letter-exchange": "b", "dead-letter-routing-key": "polk"},
    )
    assert (settings.dead_letter_exchange, settings.dead_letter_routing_key) == ("a", "polk")


@given(
    st.none() | st.sampled_from(["drop-head", "reject-publish", "reject-publish-dlx"]),
    st.none() | st.sampled_from(["drop-head", "reject-publish", "reject-publish-dlx"]),
)
def test_the_overflow_argument_wins(argument: str | None, policy: str | None) -> None:
    arguments = {} if argument is None else {"x-overflow": argument}
    definition = {} if policy is None else {"overflow": policy}
    expected = argument or policy or "drop-head"
    assert resolve_queue_settings(arguments, definition).overflow == expected


def test_priority_and_single_active_consumer_come_from_arguments_only() -> None:
    arguments = {"x-max-priority": 5, "x-single-active-consumer": True}
    assert resolve_queue_settings(arguments, None) == QueueSettings(
        max_priority=5, single_active_consumer=True
    )
    assert resolve_queue_settings({}, {"message-ttl": 5}) == QueueSettings(message_ttl=5)


@given(maybe_name, maybe_name)
def test_the_alternate_exchange_argument_wins_even_when_empty(
    argument: str | None, policy: str | None
) -> None:
    arguments = {} if argument is None else {"alternate-exchange": argument}
    definition = {} if policy is None else {"alternate-exchange": policy}
    expected = argument if argument is not None else policy
    assert resolve_alternate_exchange(arguments, definition) == expected
    assert resolve_alternate_exchange(arguments, None) == argument
