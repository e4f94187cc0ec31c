"""Policy validation and matching (vhosts.policies).

Every text and rule here was checked against RabbitMQ 3.10.8 (`rabbitmqctl set_policy`,
`import_definitions`, and queues and exchanges declared under policies), except where a test
says it is our own choice.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vhosts.policies import Policy, PolicySet, validate_policy


def policy(
    definition: Any = None,
    *,
    name: str = "p",
    pattern: Any = ".*",
    apply_to: Any = "all",
    priority: Any = 0,
) -> Policy:
    if definition is None:
        definition = {"message-ttl": 1}
    return Policy("/", name, pattern, apply_to, priority, definition)


def refusal(p: Policy) -> str:
    with pytest.raises(ValueError) as caught:
        validate_policy(p)
    return str(caught.value)


# -- validation ------------------------------------------------------------------------------------

GOOD_DEFINITIONS = [
    {"message-ttl": 0},
    {"message-ttl": 4294967296},
    {"message-ttl": 315360000001},  # unlike x-message-ttl, a policy has no upper bound
    {"expires": 1},
    {"expires": 315360000001},
    {"max-length": 0},
    {"max-length-bytes": 0},
    {"overflow": "reject-publish-dlx"},
    {"dead-letter-exchange": ""},
    {"dead-letter-routing-key": "k"},  # without a dead-letter-exchange: fine in a policy
    {"alternate-exchange": ""},
    {"queue-mode": "lazy"},
    {"queue-mode": "default"},
    # Known to RabbitMQ, meaningless here: taken and ignored.
    {
        "ha-mode": "exactly",
        "ha-params": 2,
        "ha-sync-mode": "automatic",
        "ha-promote-on-shutdown": "always",
        "ha-promote-on-failure": "always",
        "ha-sync-batch-size": 5,
        "queue-master-locator": "min-masters",
        "max-in-memory-length": 1,
        "max-in-memory-bytes": 1,
        "delivery-limit": 5,
        "queue-version": 2,
        "max-age": "1D",
        "stream-max-segment-size-bytes": 1000,
        "queue-leader-locator": "balanced",
        "initial-cluster-size": 3,
        "dead-letter-strategy": "at-least-once",
    },
    # Our choice: federation's keys load too (RabbitMQ takes them once the plugin is enabled).
    {"federation-upstream": "up", "federation-upstream-set": "all"},
]


@pytest.mark.parametrize("definition", GOOD_DEFINITIONS)
def test_good_definitions(definition: dict[str, Any]) -> None:
    validate_policy(policy(definition))


BAD_DEFINITIONS = [
    ({"message-ttl": -1}, "-1 is not a valid message TTL"),
    ({"message-ttl": "10"}, '<<"10">> is not a valid message TTL'),
    ({"message-ttl": 1.5}, "1.5 is not a valid message TTL"),
    ({"message-ttl": True}, "true is not a valid message TTL"),
    ({"message-ttl": None}, "null is not a valid message TTL"),
    ({"expires": 0}, "0 is not a valid queue expiry"),
    ({"expires": -1}, "-1 is not a valid queue expiry"),
    ({"expires": "1"}, '<<"1">> is not a valid queue expiry'),
    ({"max-length": -1}, "-1 is not a valid maximum length"),
    ({"max-length": "1"}, '<<"1">> is not a valid maximum length'),
    ({"max-length-bytes": -1}, "-1 is not a valid maximum length in bytes"),
    ({"max-length-bytes": 1.0}, "1.0 is not a valid maximum length in bytes"),
    ({"overflow": "foo"}, '<<"foo">> is not a valid overflow value'),
    ({"overflow": 1}, "1 is not a valid overflow value"),
    ({"dead-letter-exchange": 1}, "1 is not a valid dead letter exchange name"),
    ({"dead-letter-routing-key": 1}, "1 is not a valid dead letter routing key"),
    ({"alternate-exchange": 1}, "1 is not a valid alternate exchange name"),
    ({"queue-mode": "foo"}, '<<"foo">> is not a valid queue-mode value'),
    ({"queue-mode": 1}, "1 is not a valid queue-mode value"),
    ({}, "no policy provided"),
    ([], "definition must be a dictionary: []"),
    ([1], "definition must be a dictionary: [1]"),
    # 3.10 has no policy key for these two: a queue gets them from its arguments only.
    ({"max-priority": 5}, '[{<<"max-priority">>,5}] are not recognised policy settings'),
    (
        {"single-active-consumer": True},
        '[{<<"single-active-consumer">>,true}] are not recognised policy settings',
    ),
    ({"foo": 1}, '[{<<"foo">>,1}] are not recognised policy settings'),
    # Unknown keys are listed in byte order, whatever the order given.
    (
        {"zz": 1, "aa": "x", "B": None, "é": 1},
        '[{<<"B">>,null},{<<"aa">>,<<"x">>},{<<"zz">>,1},{<<"Ã©">>,1}]'
        " are not recognised policy settings",
    ),
    # A bad value is reported before unknown keys, and only the first bad value, in key order.
    ({"message-ttl": -1, "foo": 0}, "-1 is not a valid message TTL"),
    ({"message-ttl": -1, "expires": 0}, "0 is not a valid queue expiry"),
    (
        {"queue-mode": 1, "overflow": 1, "message-ttl": -1, "alternate-exchange": 1},
        "1 is not a valid alternate exchange name",
    ),
]


@pytest.mark.parametrize(("definition", "text"), BAD_DEFINITIONS)
def test_bad_definitions(definition: Any, text: str) -> None:
    assert refusal(policy(definition)) == text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("fé", '<<"fÃ©">>'),  # rabbitmqctl shows each UTF-8 byte as a Latin-1 character
        ('a"b\\c\nd', '<<"a\\"b\\\\c\\nd">>'),
        ("", "<<>>"),
        (False, "false"),
        ([1, "a"], '[1,<<"a">>]'),
        ({"b": [True], "a": 1}, '#{<<"a">> => 1,<<"b">> => [true]}'),
        (1e16, "1.0e16"),
        (1e15, "1.0e15"),
        (100000.0, "1.0e5"),
        (1000.0, "1.0e3"),
        (1200.0, "1.2e3"),
        (100.0, "100.0"),
        (10.0, "10.0"),
        (0.1, "0.1"),
        (0.001, "0.001"),
        (0.0001, "0.0001"),
        (0.00012, "1.2e-4"),
        (1e-10, "1.0e-10"),
        (-2.5e-7, "-2.5e-7"),
        (123456.5, "123456.5"),
        (123456789.0, "123456789.0"),
        (1e21, "1.0e21"),
        (-0.0, "-0.0"),
        (1.5e300, "1.5e300"),
        (5e-324, "5.0e-324"),
    ],
)
def test_values_are_shown_as_erlang_prints_them(value: Any, shown: str) -> None:
    assert refusal(policy({"overflow": value})) == f"{shown} is not a valid overflow value"


def test_a_long_list_of_unknown_keys_is_broken_one_per_line() -> None:
    # 78 characters fit on the line, 79 do not.
    fits = {"foo-aaaaaaaaa": 1, "foo-bbbbbbbbbbbbbb": 2, "foo-ccccccccc": 3}
    assert refusal(policy(fits)) == (
        '[{<<"foo-aaaaaaaaa">>,1},{<<"foo-bbbbbbbbbbbbbb">>,2},{<<"foo-ccccccccc">>,3}]'
        " are not recognised policy settings"
    )
    too_long = {"foo-aaaaaaaaa": 1, "foo-bbbbbbbbbbbbbb": 2, "foo-cccccccccc": 3}
    assert refusal(policy(too_long)) == (
        '[{<<"foo-aaaaaaaaa">>,1},\n'
        ' {<<"foo-bbbbbbbbbbbbbb">>,2},\n'
        ' {<<"foo-cccccccccc">>,3}] are not recognised policy settings'
    )


INVALID = "pattern should be regular expression but is invalid: "
UNDER = "\n" + " " * 54  # a broken tuple's second element lines up under its first


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(", '{"missing )",1}'),
        ("ab(", '{"missing )",3}'),
        ("(?=", '{"missing )",3}'),
        (")", '{"unmatched parentheses",' + UNDER + "0}"),
        ("a)", '{"unmatched parentheses",' + UNDER + "1}"),
        ("[", '{"missing terminating ] for character class",' + UNDER + "1}"),
        ("a[b", '{"missing terminating ] for character class",' + UNDER + "3}"),
        ("*", '{"nothing to repeat",0}'),
        ("+a", '{"nothing to repeat",0}'),
        ("a**", '{"nothing to repeat",2}'),
        ("a" * 99 + "**", '{"nothing to repeat",100}'),  # 78 characters: fits
        ("a" * 999 + "**", '{"nothing to repeat",' + UNDER + "1000}"),  # 79: does not
        ("a{2,1}", '{"numbers out of order in {} quantifier",' + UNDER + "5}"),
        ("\\", '{"\\\\ at end of pattern",' + UNDER + "1}"),
        ("a\\", '{"\\\\ at end of pattern",' + UNDER + "2}"),
        ("[z-a]", '{"range out of order in character class",' + UNDER + "3}"),
    ],
)
def test_bad_patterns(pattern: str, reason: str) -> None:
    assert refusal(policy(pattern=pattern)) == INVALID + reason


@pytest.mark.parametrize("pattern", ["", "^$", "(?i)A", "^amq\\.", "a|b"])
def test_good_patterns(pattern: str) -> None:
    validate_policy(policy(pattern=pattern))


def test_apply_to() -> None:
    for apply_to in ("all", "queues", "exchanges"):
        validate_policy(policy(apply_to=apply_to))
    for apply_to in ("foo", "Queues", "queue"):
        assert refusal(policy(apply_to=apply_to)) == (
            f"apply-to '{apply_to}' unrecognised; should be 'queues', 'exchanges' or 'all'"
        )


def test_priority_is_any_number() -> None:
    for priority in (0, -3, 1.5, 99999999999999999999):
        validate_policy(policy(priority=priority))
    assert refusal(policy(priority="x")) == 'priority should be a number, actually was <<"x">>'
    assert refusal(policy(priority=True)) == "priority should be a number, actually was true"


def test_pattern_must_be_a_string() -> None:
    assert refusal(policy(pattern=1)) == "pattern should be a binary but was 1"


def test_every_complaint_is_made_one_per_line_in_rabbitmqs_order() -> None:
    bad = policy({"message-ttl": -1, "foo": 1}, pattern=")", apply_to="foo", priority="x")
    assert refusal(bad) == "\n".join(
        [
            "-1 is not a valid message TTL",
            "apply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'",
            INVALID + '{"unmatched parentheses",' + UNDER + "0}",
            'priority should be a number, actually was <<"x">>',
        ]
    )


# -- the set and matching --------------------------------------------------------------------------


def matched(policies: PolicySet, kind: str, name: str) -> str | None:
    found = policies.match(kind, name)
    return found.name if found is not None else None


def test_set_replaces_by_name_and_delete_says_whether_there_was_one() -> None:
    policies = PolicySet()
    policies.set(policy(name="a", priority=1))
    policies.set(policy(name="b"))
    policies.set(policy(name="a", priority=2))
    assert sorted((p.name, p.priority) for p in policies) == [("a", 2), ("b", 0)]
    assert len(policies) == 2
    assert policies.delete("a") is True
    assert policies.delete("a") is False
    assert policies.get("a") is None
    assert [p.name for p in policies] == ["b"]


def test_set_refuses_a_bad_policy() -> None:
    policies = PolicySet()
    with pytest.raises(ValueError, match="no policy provided"):
        policies.set(policy({}))
    assert len(policies) == 0


def test_patterns_are_searched_for_anywhere_in_the_name() -> None:
    policies = PolicySet()
    policies.set(policy(pattern="ord"))
    assert policies.match("queue", "orders") is not None
    assert policies.match("queue", "big-orders-q") is not None
    assert policies.match("queue", "other") is None
    policies.set(policy(pattern="^ord$"))
    assert policies.match("queue", "orders") is None
    assert policies.match("queue", "ord") is not None


def test_an_empty_pattern_matches_everything_even_the_default_exchange() -> None:
    policies = PolicySet()
    policies.set(policy(pattern=""))
    for kind, name in [("exchange", ""), ("exchange", "amq.direct"), ("queue", "amq.gen-x")]:
        assert policies.match(kind, name) is not None


def test_apply_to_filters_before_priority() -> None:
    policies = PolicySet()
    policies.set(policy(name="queues", apply_to="queues", priority=1))
    policies.set(policy(name="exchanges", apply_to="exchanges", priority=9))
    policies.set(policy(name="all", apply_to="all", priority=5))
    assert matched(policies, "queue", "q") == "all"
    assert matched(policies, "exchange", "x") == "exchanges"
    policies.delete("all")
    assert matched(policies, "queue", "q") == "queues"


def test_the_highest_priority_wins_among_those_that_match() -> None:
    policies = PolicySet()
    policies.set(policy(name="low", pattern="^q", priority=-1))
    policies.set(policy(name="high", pattern="^q", priority=10))
    policies.set(policy(name="higher-but-elsewhere", pattern="^x", priority=20))
    assert matched(policies, "queue", "q1") == "high"


@given(
    st.dictionaries(
        st.text("abcxyz", min_size=1, max_size=3),
        st.integers(-2, 2) | st.sampled_from([0.5, 1.5]),
        min_size=1,
        max_size=6,
    )
)
def test_ties_go_to_the_smallest_name(priorities: dict[str, int | float]) -> None:
    # Our choice: RabbitMQ breaks ties by its table's hash order, which we do not reproduce.
    policies = PolicySet()
    for name, priority in priorities.items():
        policies.set(policy(name=name, priority=priority))
    top = max(priorities.values())
    expected = min(name for name, priority in priorities.items() if priority == top)
    assert matched(policies, "queue", "anything") == expected


def test_a_policy_with_a_key_the_queue_type_cannot_take_does_not_apply() -> None:
    # As RabbitMQ 3.10.8: the next policy that matches applies instead.
    policies = PolicySet()
    policies.set(policy(name="quorum-ish", definition={"max-length": 1, "delivery-limit": 5}))
    policies.set(policy(name="plain", definition={"max-length": 2}, priority=-1))
    assert matched(policies, "queue", "q") == "quorum-ish"
    unsupported = frozenset({"delivery-limit"})
    found = policies.match("queue", "q", unsupported)
    assert found is not None and found.name == "plain"


def test_match_wants_a_known_kind() -> None:
    with pytest.raises(ValueError):
        PolicySet().match("queues", "q")
