"""Topic routing (trie + cache) and explanations agree with an independent reference
matcher, a regular expression built from the binding key, across random binding sets and
bind/unbind histories."""

from __future__ import annotations

import re
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges import ROUTERS
from exchanges.topic import explain_match
from tests.conftest import examples

ROUTING_WORDS = ["a", "b", "", "ab"]
BINDING_WORDS = [*ROUTING_WORDS, "*", "#"]


@cache
def reference_regex(binding_key: str) -> re.Pattern[str]:
    # Every word becomes "." + word, so "" (no words) is the empty string and the
    # separators never need special cases.
    parts = {"*": r"\.[^.]*", "#": r"(?:\.[^.]*)*"}
    words = binding_key.split(".") if binding_key else []
    return re.compile("".join(parts.get(w, r"\." + re.escape(w)) for w in words))


def reference_matches(binding_key: str, routing_key: str) -> bool:
    dotted = "".join("." + w for w in (routing_key.split(".") if routing_key else []))
    return reference_regex(binding_key).fullmatch(dotted) is not None


def keys(words: list[str], max_words: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(words), max_size=max_words).map(".".join)


routing_keys = keys(ROUTING_WORDS, 5)
binding_keys = keys(BINDING_WORDS, 5)
destinations = st.sampled_from(["q1", "q2", "q3", "q4"])


def test_reference_sanity() -> None:
    assert reference_matches("#", "")
    assert not reference_matches("*", "")
    assert reference_matches("*.*", ".")
    assert reference_matches("a.#.#.b", "a.b")
    assert not reference_matches("", "a")


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(st.tuples(destinations, binding_keys), max_size=12),
    st.lists(routing_keys, min_size=1, max_size=8),
)
def test_route_equals_reference(bindings: list[tuple[str, str]], routing_keys_: list[str]) -> None:
    router = ROUTERS["topic"]()
    for destination, key in bindings:
        router.bind(destination, key)
    for routing_key in routing_keys_ * 2:  # twice: the second pass is served by the cache
        routed = router.route(routing_key, None)
        assert len(routed) == len(set(routed))
        expected = {d for d, k in bindings if reference_matches(k, routing_key)}
        assert set(routed) == expected


operations = st.lists(
    st.tuples(st.sampled_from(["bind", "unbind", "remove", "route"]), destinations, binding_keys),
    max_size=30,
)


@settings(max_examples=examples(300), deadline=None)
@given(operations, st.lists(routing_keys, min_size=1, max_size=5))
def test_bind_unbind_sequences_keep_route_equal_to_reference(
    ops: list[tuple[str, str, str]], probes: list[str]
) -> None:
    router = ROUTERS["topic"]()
    current: set[tuple[str, str]] = set()
    for op, destination, key in ops:
        if op == "bind":
            assert router.bind(destination, key) is ((destination, key) not in current)
            current.add((destination, key))
        elif op == "unbind":
            assert router.unbind(destination, key) is ((destination, key) in current)
            current.discard((destination, key))
        elif op == "remove":
            gone = {b for b in current if b[0] == destination}
            assert router.remove_destination(destination) == len(gone)
            current -= gone
        else:
            probes = [key.replace("*", "a").replace("#", "b"), *probes]
        assert len(router) == len(current)
        for routing_key in probes:
            expected = {d for d, k in current if reference_matches(k, routing_key)}
            assert set(router.route(routing_key, None)) == expected
    assert sorted((d, k) for d, k, _ in router.bindings()) == sorted(current)


@settings(max_examples=examples(300), deadline=None)
@given(binding_keys, routing_keys)
def test_explanation_agrees_and_captures_rebuild_the_key(
    binding_key: str, routing_key: str
) -> None:
    captures, reason = explain_match(binding_key, routing_key)
    assert (captures is not None) is reference_matches(binding_key, routing_key)
    assert reason
    if captures is None:
        return
    # Substituting what each wildcard took back into the pattern gives the routing key.
    # ('#', '') is either no words or one empty word; the reason text says which, so
    # here both readings are tried.
    readings: list[list[str]] = [[]]
    taken = iter(captures)
    for word in binding_key.split(".") if binding_key else []:
        if word not in ("*", "#"):
            readings = [[*r, word] for r in readings]
            continue
        wild, text = next(taken)
        assert wild == word
        if word == "#" and not text:
            readings = [*readings, *([*r, ""] for r in readings)]
        else:
            readings = [[*r, *text.split(".")] for r in readings]
    assert next(taken, None) is None
    assert (routing_key.split(".") if routing_key else []) in readings
