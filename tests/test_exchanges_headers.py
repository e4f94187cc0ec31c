"""Headers exchange.  Every case in OBSERVED was run against RabbitMQ 3.10.8 (pika client,
one binding per queue, then checking whether the message arrived) and is recorded here
with the broker's answer.  Integers sent as signedint/long/short/byte all behaved alike."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from exchanges import ROUTERS, InvalidBinding
from exchanges.headers import HeadersRouter

Table = dict[str, Any]

OBSERVED: list[tuple[Table, Table | None, bool]] = [
    # x-match and empty conditions
    ({"x-match": "all"}, None, True),
    ({"x-match": "all"}, {}, True),
    ({"x-match": "all"}, {"a": 1}, True),
    ({"x-match": "any"}, None, False),
    ({"x-match": "any"}, {"a": 1}, False),
    ({}, None, True),
    ({}, {"a": 1}, True),
    # void binding value: presence of the key is enough
    ({"a": None}, {"a": "x"}, True),
    ({"a": None}, {"a": None}, True),
    ({"a": None}, {}, False),
    ({"a": None}, None, False),
    ({"a": None}, {"b": 1}, False),
    ({"a": "x"}, {"a": None}, False),
    ({"x-match": "any", "a": None}, {"a": 5}, True),
    ({"x-match": "any", "a": None}, {"b": 5}, False),
    ({"x-match": "any", "a": None, "b": "z"}, {"b": "z"}, True),
    # top-level values compare by value, Erlang ==
    ({"a": 1}, {"a": 1}, True),
    ({"a": 1}, {"a": True}, False),
    ({"a": True}, {"a": 1}, False),
    ({"a": 1}, {"a": "1"}, False),
    ({"a": 1}, {"a": 1.0}, True),
    ({"a": 1.0}, {"a": 1.0}, True),
    ({"a": 1.5}, {"a": 1.5}, True),
    ({"a": 1}, {"a": Decimal("1")}, False),
    ({"a": Decimal("1")}, {"a": 1.0}, False),
    ({"a": Decimal("1.5")}, {"a": Decimal("1.50")}, False),  # scale 1 vs scale 2
    ({"a": Decimal("1.5")}, {"a": Decimal("1.5")}, True),
    ({"a": "x"}, {"a": b"x"}, True),  # longstr and binary are both binaries
    ({"a": b"x"}, {"a": b"x"}, True),
    ({"a": "x"}, {"a": "x"}, True),
    ({"a": "x"}, {"a": "X"}, False),
    ({"a": True}, {"a": True}, True),
    ({"a": False}, {"a": True}, False),
    ({"a": False}, {"a": 0}, False),
    ({"a": datetime.datetime(2020, 1, 1)}, {"a": datetime.datetime(2020, 1, 1)}, True),
    ({"a": datetime.datetime(2020, 1, 1)}, {"a": 1577836800}, True),  # a timestamp is an int
    # nested tables and arrays compare with their types and in order
    ({"a": {"k": 1}}, {"a": {"k": 1}}, True),
    ({"a": [1, "b"]}, {"a": [1, "b"]}, True),
    ({"a": [1, "b"]}, {"a": ["b", 1]}, False),
    ({"a": {"k": 1, "j": 2}}, {"a": {"j": 2, "k": 1}}, False),
    ({"a": [1]}, {"a": [1.0]}, False),
    ({"a": ["x"]}, {"a": [b"x"]}, False),
    ({"a": {"k": "x"}}, {"a": {"k": b"x"}}, False),
    ({"a": [None]}, {"a": [None]}, True),
    ({"a": [True]}, {"a": [True]}, True),
    ({"a": []}, {"a": []}, True),
    ({"a": {}}, {"a": {}}, True),
    ({"a": []}, {"a": {}}, True),  # both are the empty Erlang list
    # all / any
    ({"a": "x", "b": "y"}, {"a": "x"}, False),
    ({"a": "x", "b": "y"}, {"a": "x", "b": "y", "c": 1}, True),
    ({"x-match": "any", "a": "x", "b": "y"}, {"a": "x"}, True),
    ({"x-match": "any", "a": "x", "b": "y"}, {"a": "q"}, False),
    ({"a": 1}, {"a": 1, "A": 2}, True),
    ({"a": 1}, {"A": 1}, False),  # keys are case-sensitive
    # x- arguments
    ({"x-foo": "bar"}, {}, True),
    ({"x-foo": "bar"}, None, True),
    ({"x-match": "any", "x-foo": "bar"}, {"x-foo": "bar"}, False),
    ({"x-match": "any", "x-foo": "bar"}, {"x-foo": "bar", "a": 1}, False),
    ({"x-match": "all", "x-foo": "bar", "a": 1}, {"a": 1}, True),
    ({"x-match": "all", "a": "x", "x-match2": "q"}, {"a": "x"}, True),
    ({"x-match": "any", "xa": "q"}, {"xa": "q"}, True),
    ({"x-match": "any", "X-a": "q"}, {"X-a": "q"}, True),  # only lower-case "x-" is special
    ({"x-match": "all-with-x", "x-foo": "bar"}, {"x-foo": "bar"}, True),
    ({"x-match": "all-with-x", "x-foo": "bar"}, {}, False),
    ({"x-match": "all-with-x"}, {}, True),
    ({"x-match": "all-with-x"}, None, True),
    ({"x-match": "all-with-x", "a": 1}, {"a": 1}, True),  # x-match itself is never required
    ({"x-match": "all-with-x", "a": 1}, {"a": 1, "x-match": "all-with-x"}, True),
    ({"x-match": "all-with-x", "x-foo": None}, {"x-foo": 1}, True),
    ({"x-match": "any-with-x"}, {"a": 1}, False),
    ({"x-match": "any-with-x", "x-foo": "bar"}, {"x-foo": "bar"}, True),
    ({"x-match": "any-with-x", "x-foo": "bar", "a": 1}, {"a": 1}, True),
    ({"x-match": "any-with-x", "x-foo": "bar"}, {"x-foo": "baz"}, False),
    ({"x-match": "any-with-x", "a": 2}, {"x-match": "any-with-x"}, False),
]


@pytest.mark.parametrize(("arguments", "headers", "expected"), OBSERVED)
def test_matches_like_rabbitmq(arguments: Table, headers: Table | None, expected: bool) -> None:
    router = ROUTERS["headers"]()
    router.bind("q", "", arguments)
    assert (list(router.route("ignored", headers)) == ["q"]) is expected
    (verdict,) = router.explain("ignored", headers)
    assert verdict.matched is expected


INVALID: list[tuple[Any, str]] = [
    ("foo", 'Invalid x-match field value <<"foo">>; expected all, any, all-with-x, or any-with-x'),
    ("ALL", 'Invalid x-match field value <<"ALL">>; expected all, any, all-with-x, or any-with-x'),
    ("", "Invalid x-match field value <<>>; expected all, any, all-with-x, or any-with-x"),
    (
        'a"b',
        r'Invalid x-match field value <<"a\"b">>; expected all, any, all-with-x, or any-with-x',
    ),
    (
        "a\\b",
        r'Invalid x-match field value <<"a\\b">>; expected all, any, all-with-x, or any-with-x',
    ),
    (
        "tab\there",
        r'Invalid x-match field value <<"tab\there">>; expected all, any, all-with-x, '
        "or any-with-x",
    ),
    (
        "café",
        'Invalid x-match field value <<"café">>; expected all, any, all-with-x, or any-with-x',
    ),
    (1, "Invalid x-match field type signedint (value 1); expected longstr"),
    (2**40, "Invalid x-match field type long (value 1099511627776); expected longstr"),
    (True, "Invalid x-match field type bool (value true); expected longstr"),
    (1.5, "Invalid x-match field type double (value 1.5); expected longstr"),
    (float("inf"), "Invalid x-match field type double (value inf); expected longstr"),
    (float("nan"), "Invalid x-match field type double (value nan); expected longstr"),
    (Decimal("1.5"), "Invalid x-match field type decimal (value {1,15}); expected longstr"),
    (None, "Invalid x-match field type void (value undefined); expected longstr"),
    (b"any", 'Invalid x-match field type binary (value <<"any">>); expected longstr'),
    (b"\x01\x02", "Invalid x-match field type binary (value <<1,2>>); expected longstr"),
    (
        datetime.datetime(2020, 1, 1),
        "Invalid x-match field type timestamp (value 1577836800); expected longstr",
    ),
    (
        {"k": "v"},
        'Invalid x-match field type table (value [{<<"k">>,longstr,<<"v">>}]); expected longstr',
    ),
    (
        ["all", 1],
        'Invalid x-match field type array (value [{longstr,<<"all">>},{signedint,1}]); '
        "expected longstr",
    ),
]


@pytest.mark.parametrize(("x_match", "text"), INVALID)
def test_invalid_x_match_text_is_rabbitmqs(x_match: Any, text: str) -> None:
    # RabbitMQ replies 406 "PRECONDITION_FAILED - " + this text.
    with pytest.raises(InvalidBinding) as raised:
        HeadersRouter.validate_binding("", {"x-match": x_match, "a": 1})
    assert raised.value.text == text
    assert str(raised.value) == text
    router = HeadersRouter()
    with pytest.raises(InvalidBinding):
        router.bind("q", "", {"x-match": x_match})
    assert len(router) == 0


@pytest.mark.parametrize("x_match", ["all", "any", "all-with-x", "any-with-x"])
def test_valid_x_match(x_match: str) -> None:
    HeadersRouter.validate_binding("", {"x-match": x_match})


def test_routing_key_is_ignored_and_destinations_are_distinct() -> None:
    router = HeadersRouter()
    router.bind("q1", "some-key", {"a": 1})
    router.bind("q1", "", {"x-match": "any", "a": 1, "b": 2})
    router.bind("q2", "", {"b": 2})
    assert list(router.route("other", {"a": 1, "b": 2})) == ["q1", "q2"]
    router.unbind("q1", "some-key", {"a": 1})
    assert list(router.route("", {"a": 1})) == ["q1"]


def test_unhashable_or_unknown_header_values_do_not_break_routing() -> None:
    router = HeadersRouter()
    router.bind("q", "", {"x-match": "any", "a": 1, "b": None})
    assert list(router.route("", {"a": object(), "b": object()})) == ["q"]
    assert list(router.route("", {"a": object()})) == []


def explain(arguments: Table, headers: Table | None) -> str:
    router = HeadersRouter()
    router.bind("q", "", arguments)
    (verdict,) = router.explain("", headers)
    assert verdict.captures == ()
    return verdict.reason


def test_explain_reasons() -> None:
    assert explain({}, None) == "x-match all with no header conditions matches every message"
    assert explain({"x-match": "any"}, {"a": 1}) == (
        "x-match any with no header conditions matches no message"
    )
    assert explain({"a": 1, "b": None}, {"a": 1, "b": "z"}) == (
        "x-match all: every condition held ('a' = 1; "
        "'b' is present (a void binding value accepts any value))"
    )
    assert explain({"a": 1, "b": "y", "c": 3}, {"a": True, "c": 3}) == (
        "x-match all: 'a' is True (boolean), binding wants 1 (number); 'b' is missing"
    )
    assert explain({"x-match": "any", "a": 1, "b": "y"}, {"b": "y"}) == ("x-match any: 'b' = 'y'")
    assert explain({"x-match": "any", "a": 1, "b": "y"}, {"a": 2}) == (
        "x-match any: no condition held ('a' is 2, binding wants 1; 'b' is missing)"
    )
    assert explain({"x-match": "any", "x-foo": 1, "a": 1}, {"x-foo": 1}) == (
        "x-match any: no condition held ('a' is missing) "
        "('x-foo' ignored: x- arguments count only with all-with-x or any-with-x)"
    )
