"""Consistent-hash exchange.  Binding and argument answers marked "observed" come from a
RabbitMQ 3.10.8 node with rabbitmq_consistent_hash_exchange enabled (pika client), as do the
bucket-row rules: one share per destination, and unbinding any of a destination's bindings
drops all of its buckets (seen with rabbitmq-diagnostics consistent_hash_exchange_ring_state)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchanges import ROUTERS, ConsistentHashRouter, InvalidArguments, InvalidBinding
from exchanges.consistent_hash import jump_hash

KEYS = [f"order-{i}" for i in range(20_000)]


def router(*bindings: tuple[Hashable, str], **arguments: object) -> ConsistentHashRouter:
    made = ConsistentHashRouter(arguments)
    for destination, weight in bindings:
        made.bind(destination, weight)
    return made


def placement(r: ConsistentHashRouter, keys: list[str] = KEYS) -> dict[str, Hashable]:
    return {key: only(r.route(key)) for key in keys}


def only(routed: tuple[Hashable, ...]) -> Hashable:
    assert len(routed) == 1
    return routed[0]


def test_registered_under_the_plugin_type_name() -> None:
    assert ROUTERS["x-consistent-hash"] is ConsistentHashRouter
    assert ConsistentHashRouter().hash_header is None


# -- binding keys are weights ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "refusal"),
    [  # observed
        ("1", None),
        ("+2", None),
        ("02", None),
        ("1000000000000", None),  # no per-bucket storage, so any weight is cheap
        ("abc", 'The binding key must be an integer: <<"abc">>'),
        ("", "The binding key must be an integer: <<>>"),
        (" 2", 'The binding key must be an integer: <<" 2">>'),
        ("2 ", 'The binding key must be an integer: <<"2 ">>'),
        ("1.5", 'The binding key must be an integer: <<"1.5">>'),
        ("1_0", 'The binding key must be an integer: <<"1_0">>'),  # Python's int() takes it
        ("٣", 'The binding key must be an integer: <<"٣">>'),  # so does a non-ASCII digit
        ("0", "The binding key must be greater than 0"),
        ("-1", "The binding key must be greater than 0"),
    ],
)
def test_binding_key_must_be_a_positive_integer(key: str, refusal: str | None) -> None:
    if refusal is None:
        ConsistentHashRouter.validate_binding(key, {})
        assert router(("q", key)).route("k") == ("q",)
        return
    with pytest.raises(InvalidBinding) as caught:
        ConsistentHashRouter.validate_binding(key, {})
    assert caught.value.text == refusal
    with pytest.raises(InvalidBinding):
        ConsistentHashRouter().bind("q", key)


@pytest.mark.parametrize(
    ("arguments", "refusal"),
    [
        ({"hash-header": "h", "hash-property": "message_id"}, "mutually exclusive"),  # observed
        ({"hash-property": "app_id"}, "Unsupported property: app_id"),  # observed
        ({"hash-property": "message_id"}, "not supported by amqp-lite"),
        ({"hash-header": 5}, "hash-header must be a longstr, not signedint"),  # RabbitMQ: 541
        ({"hash-header": b"h"}, "hash-header must be a longstr, not binary"),  # RabbitMQ: 541
    ],
)
def test_exchange_arguments_refused(arguments: dict[str, object], refusal: str) -> None:
    with pytest.raises(InvalidArguments) as caught:
        ConsistentHashRouter(arguments)
    assert refusal in caught.value.text


def test_other_arguments_are_ignored() -> None:
    assert ConsistentHashRouter({"alternate-exchange": "ae"}).hash_header is None
    assert ConsistentHashRouter({"hash-header": ""}).hash_header == ""  # observed: accepted


# -- routing --------------------------------------------------------------------------------


def test_no_buckets_routes_nowhere() -> None:
    assert router().route("k") == ()
    assert router().explain("k") == []


def test_every_key_goes_to_exactly_one_destination_including_the_empty_key() -> None:
    r = router(("a", "1"), ("b", "1"), ("c", "1"))
    for key in ["", ".", "a", "#", "日本", *KEYS[:200]]:
        assert only(r.route(key)) in {"a", "b", "c"}
    assert r.route("") == r.route("")


def test_distribution_follows_weights() -> None:
    counts = Counter(placement(router(("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"))).values())
    for destination, weight in {"a": 1, "b": 2, "c": 3, "d": 4}.items():
        expected = len(KEYS) * weight / 10
        assert abs(counts[destination] - expected) < 0.06 * expected, counts


def test_equal_weights_share_evenly() -> None:
    counts = Counter(placement(router(*((f"q{i}", "1") for i in range(8)))).values())
    assert len(counts) == 8
    assert max(counts.values()) < 1.1 * min(counts.values()), counts


def test_placement_is_stable_and_the_same_for_the_same_bindings() -> None:
    bindings = [("a", "2"), ("b", "1"), ("c", "3")]
    first = placement(router(*bindings))
    again = router(*bindings)
    assert placement(again) == first
    again.bind("d", "1")
    again.unbind("d", "1")  # the row is back as it was
    assert placement(again) == first


def test_a_new_binding_takes_only_its_share_of_keys() -> None:
    r = router(("a", "1"), ("b", "2"), ("c", "1"))
    before = placement(r)
    r.bind("d", "2")
    after = placement(r)
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(after[key] == "d" for key in moved)  # nothing moves between old queues
    assert {key for key in KEYS if after[key] == "d"} == set(moved)
    assert abs(len(moved) / len(KEYS) - 2 / 6) < 0.02


def test_unbinding_the_newest_binding_puts_every_key_back() -> None:
    r = router(("a", "1"), ("b", "1"))
    before = placement(r)
    r.bind("c", "1")
    assert r.unbind("c", "1")
    assert placement(r) == before


def test_unbinding_an_older_binding_shifts_later_buckets_down() -> None:
    # As in RabbitMQ: b's buckets leave the row and c's move down into their place.
    r = router(("a", "1"), ("b", "2"), ("c", "1"))
    assert r.unbind("b", "2")
    after = placement(r)
    assert set(after.values()) == {"a", "c"}
    assert placement(r) == placement(router(("a", "1"), ("c", "1")))


def test_one_share_per_destination() -> None:
    r = router(("a", "1"), ("b", "1"))
    before = placement(r)
    r.bind("a", "5")  # observed: the binding exists but adds no buckets
    assert len(r) == 3
    assert placement(r) == before


def test_unbinding_any_binding_of_a_destination_drops_all_its_buckets() -> None:
    r = router(("a", "2"), ("a", "5"), ("b", "1"))
    assert r.unbind("a", "5")  # the binding that holds no buckets...
    assert set(placement(r).values()) == {"b"}  # ...still takes a's buckets (observed)
    assert [key for _, key, _ in r.bindings()] == ["2", "1"]
    r.bind("a", "3")  # observed: a destination without buckets gets them again, at the end
    assert placement(r) == placement(router(("b", "1"), ("a", "3")))


def test_remove_destination() -> None:
    r = router(("a", "1"), ("a", "2"), ("b", "1"))
    assert r.remove_destination("a") == 2
    assert set(placement(r).values()) == {"b"}
    assert r.remove_destination("b") == 1
    assert r.route("k") == ()


def test_bind_is_idempotent_and_arguments_are_part_of_identity() -> None:
    r = ConsistentHashRouter()
    assert r.bind("q", "1")
    assert not r.bind("q", "1")
    assert r.bind("q", "1", {"x": 1})
    assert len(r) == 2
    assert r.unbind("q", "1", {"x": 1})
    assert r.route("k") == ()  # the other binding of q lost its buckets with it


# -- hash-header ----------------------------------------------------------------------------


def test_hash_header_routes_on_the_header_value_not_the_key() -> None:
    r = router(*((f"q{i}", "1") for i in range(6)), **{"hash-header": "user"})
    by_value = {v: r.route("ignored", {"user": v}) for v in [f"u{i}" for i in range(300)]}
    assert len(set(by_value.values())) == 6  # values spread over the queues
    for value, routed in by_value.items():
        assert r.route(f"other-{value}", {"user": value, "x": 1}) == routed


def test_hash_header_values_hash_with_their_type() -> None:
    r = router(*((f"q{i}", "1") for i in range(16)), **{"hash-header": "h"})
    # RabbitMQ hashes {Type, Value}: over many values, "n" and n must not always agree.
    same = sum(r.route("", {"h": str(n)}) == r.route("", {"h": n}) for n in range(200))
    assert same < 50


def test_messages_without_the_hash_header_all_go_to_one_queue() -> None:
    r = router(*((f"q{i}", "1") for i in range(6)), **{"hash-header": "user"})
    routed = {r.route(key, headers) for key in KEYS[:100] for headers in (None, {}, {"x": 1})}
    assert len(routed) == 1
    assert only(routed.pop()) in {f"q{i}" for i in range(6)}


# -- explain --------------------------------------------------------------------------------


def test_explain_names_the_bucket_and_agrees_with_route() -> None:
    r = router(("a", "1"), ("b", "2"), ("c", "3"))
    for key in KEYS[:300]:
        verdicts = r.explain(key)
        assert [v.destination for v in verdicts if v.matched] == list(r.route(key))
    verdicts = {v.destination: v.reason for v in r.explain("order-7")}
    bucket = r.locate("order-7").bucket
    winner = only(r.route("order-7"))
    assert f"routing key 'order-7' hashed to bucket {bucket} of 0-5" in verdicts[winner]
    assert verdicts[winner].endswith("so it wins")
    assert "weight 1 gives this binding bucket 0" in verdicts["a"]
    assert "weight 2 gives this binding buckets 1-2" in verdicts["b"]
    assert "weight 3 gives this binding buckets 3-5" in verdicts["c"]


def test_explain_says_why_a_binding_holds_no_buckets() -> None:
    r = router(("a", "2"), ("a", "4"), ("b", "1"))
    second = r.explain("k")[1]
    assert not second.matched
    assert "already has buckets 0-1 through binding key '2'" in second.reason
    r.unbind("a", "2")
    (left, _) = r.explain("k")
    assert (left.binding_key, left.matched) == ("4", False)
    assert "removing another binding to this destination took them all" in left.reason


def test_explain_with_a_missing_hash_header() -> None:
    r = router(("a", "1"), ("b", "1"), **{"hash-header": "user"})
    reasons = [v.reason for v in r.explain("k", None)]
    assert all(reason.startswith("a message without header 'user'") for reason in reasons)
    reasons = [v.reason for v in r.explain("k", {"user": "ann"})]
    assert all(reason.startswith("header 'user' = 'ann' hashed to") for reason in reasons)


def test_verdict_of_a_single_binding_matches_explain() -> None:
    r = router(("a", "1"), ("b", "1"))
    for verdict in r.explain("order-3"):
        single = r._verdict(verdict.destination, verdict.binding_key, {}, "order-3", None)
        assert single == verdict


# -- jump hash ------------------------------------------------------------------------------


@given(st.integers(0, 2**64 - 1), st.integers(1, 10**6))
def test_jump_hash_moves_keys_only_into_new_buckets(key: int, buckets: int) -> None:
    bucket = jump_hash(key, buckets)
    assert 0 <= bucket < buckets
    grown = jump_hash(key, buckets + 1)
    assert grown in (bucket, buckets)
