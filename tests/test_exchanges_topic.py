"""Topic routing and explanations.  Expected results were cross-checked against
RabbitMQ 3.10 (random binding/routing-key sets incl. empty words: no differences)."""

from __future__ import annotations

import pytest

from exchanges import ROUTERS
from exchanges.topic import CACHE_SIZE, TopicRouter, explain_match


def routed(binding_key: str, routing_key: str) -> bool:
    router = ROUTERS["topic"]()
    router.bind("q", binding_key)
    return list(router.route(routing_key, None)) == ["q"]


@pytest.mark.parametrize(
    ("binding_key", "routing_key", "expected"),
    [
        ("stock.*.nyse", "stock.usd.nyse", True),
        ("stock.*.nyse", "stock.nyse", False),
        ("stock.*.nyse", "stock.usd.eur.nyse", False),
        ("stock.#", "stock", True),
        ("stock.#", "stock.a.b", True),
        ("stock.#", "stocks.a", False),
        ("#", "", True),
        ("#", "a.b.c", True),
        ("#", ".", True),
        ("*", "", False),  # the empty routing key has no words
        ("*", "a", True),
        ("*", ".", False),  # "." is two empty words
        ("*.*", ".", True),
        ("", "", True),
        ("", "a", False),
        ("", ".", False),
        ("a..b", "a..b", True),
        ("a.*.b", "a..b", True),  # an empty word is still a word
        ("a.#.b", "a.b", True),
        ("a.#.#.b", "a.b", True),
        ("a.#.#.b", "a.x.y.z.b", True),
        ("a.#.#.b", "a.x.y.z", False),
        ("#.*", "", False),
        ("#.*", "a", True),
        ("#.*", "a.b.c", True),
        ("*.#", "a", True),
        ("*.#", "", False),
        ("#.*.#", "a", True),
        ("#.a.#", "b.a.b", True),
        ("#.a.#", "b.b", False),
        ("a.", "a.", True),
        ("a.", "a", False),
        ("a.*", "a.", True),
        ("a*", "ab", False),  # wildcards are whole words only
        ("a*", "a*", True),
        ("a.#", "a.#", True),
        ("x.y", "X.Y", False),
    ],
)
def test_topic_matching(binding_key: str, routing_key: str, expected: bool) -> None:
    assert routed(binding_key, routing_key) is expected


def test_literal_star_and_hash_in_routing_key_are_just_words() -> None:
    router = ROUTERS["topic"]()
    router.bind("q", "a.b")
    assert list(router.route("a.*", None)) == []
    assert list(router.route("#", None)) == []


def test_each_destination_once_even_through_many_patterns() -> None:
    router = ROUTERS["topic"]()
    for key in ("#", "#.#", "a.#", "*.b", "a.b", "#.b.#"):
        router.bind("q", key)
    router.bind("other", "a.*")
    assert sorted(router.route("a.b", None)) == ["other", "q"]


def test_unbind_prunes_and_keeps_siblings() -> None:
    router = TopicRouter()
    router.bind("q1", "a.b.c")
    router.bind("q2", "a.b")
    router.bind("q3", "a.#")
    router.unbind("q1", "a.b.c")
    assert sorted(router.route("a.b.c", None)) == ["q3"]
    assert sorted(router.route("a.b", None)) == ["q2", "q3"]
    router.unbind("q3", "a.#")
    router.unbind("q2", "a.b")
    assert router._root.is_empty()


def test_cache_is_invalidated_and_bounded() -> None:
    router = TopicRouter()
    router.bind("q1", "a.*")
    assert list(router.route("a.b", None)) == ["q1"]
    router.bind("q2", "#")
    assert sorted(router.route("a.b", None)) == ["q1", "q2"]
    router.remove_destination("q1")
    assert list(router.route("a.b", None)) == ["q2"]
    for i in range(CACHE_SIZE + 10):
        router.route(f"k{i}", None)
    assert len(router._cache) <= CACHE_SIZE
    assert list(router.route("k5", None)) == ["q2"]


def test_explain_reports_captures() -> None:
    router = ROUTERS["topic"]()
    router.bind("q", "stock.*.nyse")
    (verdict,) = router.explain("stock.usd.nyse", None)
    assert verdict.matched
    assert verdict.captures == (("*", "usd"),)
    assert verdict.reason == "topic 'stock.*.nyse' matched 'stock.usd.nyse': '*' took 'usd'"


@pytest.mark.parametrize(
    ("binding_key", "routing_key", "captures", "reason"),
    [
        ("#", "", (("#", ""),), "topic '#' matched '': '#' took no words"),
        ("a.b", "a.b", (), "topic 'a.b' matched 'a.b' word for word"),
        (
            "#.*",
            "a.b.c",
            (("#", "a.b"), ("*", "c")),
            "topic '#.*' matched 'a.b.c': '#' took 'a.b', '*' took 'c'",
        ),
        (
            "a.#.#.b",
            "a.x.b",
            (("#", ""), ("#", "x")),
            "topic 'a.#.#.b' matched 'a.x.b': '#' took no words, '#' took 'x'",
        ),
        ("a.*", "a.", (("*", ""),), "topic 'a.*' matched 'a.': '*' took ''"),
        ("", "", (), "an empty binding key matches the empty routing key"),
    ],
)
def test_explain_match_success(
    binding_key: str, routing_key: str, captures: tuple[tuple[str, str], ...], reason: str
) -> None:
    assert explain_match(binding_key, routing_key) == (captures, reason)


@pytest.mark.parametrize(
    ("binding_key", "routing_key", "reason"),
    [
        (
            "stock.*.nyse",
            "stock.usd.nasdaq",
            "topic 'stock.*.nyse' did not match 'stock.usd.nasdaq': word 3 is 'nasdaq', not 'nyse'",
        ),
        (
            "a.*",
            "a",
            "topic 'a.*' did not match 'a': the routing key ran out of words before '*'",
        ),
        (
            "a",
            "a.b.c",
            "topic 'a' did not match 'a.b.c': 'b.c' is left over after the last binding word",
        ),
        ("", "a", "an empty binding key matches only the empty routing key"),
    ],
)
def test_explain_match_failure(binding_key: str, routing_key: str, reason: str) -> None:
    assert explain_match(binding_key, routing_key) == (None, reason)


def test_explain_on_a_router_lists_every_binding() -> None:
    router = ROUTERS["topic"]()
    router.bind("q1", "*.orange.*")
    router.bind("q2", "*.*.rabbit")
    router.bind("q2", "lazy.#")
    verdicts = router.explain("quick.orange.rabbit", None)
    assert [v.matched for v in verdicts] == [True, True, False]
    assert verdicts[0].captures == (("*", "quick"), ("*", "rabbit"))
    assert verdicts[2].captures == ()
    assert "word 1 is 'quick', not 'lazy'" in verdicts[2].reason
