from __future__ import annotations

from exchanges import ROUTERS


def test_direct_matches_exact_key_only() -> None:
    router = ROUTERS["direct"]()
    router.bind("q1", "orange")
    router.bind("q2", "black")
    router.bind("q2", "green")
    router.bind("q3", "")
    assert list(router.route("orange", None)) == ["q1"]
    assert list(router.route("green", None)) == ["q2"]
    assert list(router.route("Orange", None)) == []
    assert list(router.route("orange.x", None)) == []
    assert list(router.route("", None)) == ["q3"]
    assert list(router.route("*", None)) == []  # no wildcards in direct


def test_direct_several_destinations_per_key() -> None:
    router = ROUTERS["direct"]()
    for q in ("q1", "q2", "q3"):
        router.bind(q, "k")
    assert sorted(router.route("k", None)) == ["q1", "q2", "q3"]
    router.unbind("q2", "k")
    assert sorted(router.route("k", None)) == ["q1", "q3"]


def test_direct_explain() -> None:
    router = ROUTERS["direct"]()
    router.bind("q1", "b")
    router.bind("q2", "a")
    hit, miss = router.explain("a", None)[1], router.explain("a", None)[0]
    assert hit.matched and hit.reason == "routing key 'a' == binding key 'a'"
    assert not miss.matched and miss.reason == "routing key 'a' != binding key 'b'"
    assert hit.captures == ()


def test_fanout_ignores_keys_and_headers() -> None:
    router = ROUTERS["fanout"]()
    assert list(router.route("x", None)) == []
    router.bind("q1", "")
    router.bind("q2", "whatever")
    router.bind("q2", "else")
    assert sorted(router.route("anything", {"a": 1})) == ["q1", "q2"]
    router.unbind("q2", "whatever")
    assert sorted(router.route("", None)) == ["q1", "q2"]
    router.unbind("q2", "else")
    assert list(router.route("", None)) == ["q1"]


def test_fanout_explain() -> None:
    router = ROUTERS["fanout"]()
    router.bind("q", "key")
    (verdict,) = router.explain("other", None)
    assert verdict.matched
    assert "ignores the routing key" in verdict.reason
