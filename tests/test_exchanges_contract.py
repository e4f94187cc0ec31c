"""The binding bookkeeping every router shares: identity, idempotency, removal."""

from __future__ import annotations

import pytest

from exchanges import ROUTERS, BindingVerdict, InvalidBinding, Router

# The contract below binds with the key "k"; a consistent-hash binding key is a weight, so that
# type has the same checks in test_exchanges_consistent_hash.py.
ALL_TYPES = sorted(set(ROUTERS) - {"x-consistent-hash"})


def test_registry_names_every_type() -> None:
    assert set(ROUTERS) == {"direct", "fanout", "topic", "headers", "x-consistent-hash"}
    for name, cls in ROUTERS.items():
        assert issubclass(cls, Router)
        assert cls.type_name == name


@pytest.fixture(params=ALL_TYPES)
def router(request: pytest.FixtureRequest) -> Router:
    return ROUTERS[request.param]()


def test_bind_is_idempotent(router: Router) -> None:
    assert router.bind("q", "k", {"a": 1}) is True
    assert router.bind("q", "k", {"a": 1}) is False
    assert len(router) == 1


def test_arguments_are_part_of_identity(router: Router) -> None:
    assert router.bind("q", "k")
    assert router.bind("q", "k", {"a": 1})
    # RabbitMQ keeps the wire type: 1, True, 1.0 and "1" are different arguments.
    assert router.bind("q", "k", {"a": True})
    assert router.bind("q", "k", {"a": 1.0})
    assert router.bind("q", "k", {"a": "1"})
    assert router.bind("q", "k", {"a": b"1"})
    assert len(router) == 6
    assert router.bind("q", "k", None) is False  # None and {} are the same arguments


def test_top_level_argument_order_does_not_matter_nested_order_does(router: Router) -> None:
    # Observed: RabbitMQ sorts the top-level table but not nested ones.
    assert router.bind("q", "k", {"a": 1, "b": 2})
    assert router.bind("q", "k", {"b": 2, "a": 1}) is False
    assert router.bind("q", "k", {"t": {"k": 1, "j": 2}})
    assert router.bind("q", "k", {"t": {"j": 2, "k": 1}})
    assert router.unbind("q", "k", {"b": 2, "a": 1})
    assert len(router) == 2


def test_unbind(router: Router) -> None:
    assert router.unbind("q", "k") is False
    router.bind("q", "k", {"a": [1, {"n": None}]})
    assert router.unbind("q", "k", {"a": [1, {"n": "x"}]}) is False
    assert router.unbind("q", "k", {"a": [1, {"n": None}]}) is True
    assert router.unbind("q", "k", {"a": [1, {"n": None}]}) is False
    assert len(router) == 0
    assert not router.has_bindings_to("q")
    assert list(router.route("k", {"a": [1, {"n": None}]})) == []


def test_has_binding_matches_what_unbind_would_remove(router: Router) -> None:
    router.bind("q", "k", {"b": 2, "a": 1})
    assert router.has_binding("q", "k", {"a": 1, "b": 2})
    assert not router.has_binding("q", "k")
    assert not router.has_binding("q", "other", {"a": 1, "b": 2})
    assert not router.has_binding("q2", "k", {"a": 1, "b": 2})


def test_remove_destination(router: Router) -> None:
    router.bind("q1", "k")
    router.bind("q1", "other", {"x": 1})
    router.bind("q2", "k")
    assert router.remove_destination("q1") == 2
    assert router.remove_destination("q1") == 0
    assert router.remove_destination("never") == 0
    assert not router.has_bindings_to("q1")
    assert router.has_bindings_to("q2")
    assert [b[0] for b in router.bindings()] == ["q2"]
    assert "q1" not in router.route("k", {})


def test_bindings_lists_in_bind_order_with_arguments(router: Router) -> None:
    router.bind("q2", "b", {"x": [1, 2]})
    router.bind("q1", "a")
    assert list(router.bindings()) == [("q2", "b", {"x": [1, 2]}), ("q1", "a", {})]


def test_arguments_are_copied_at_bind(router: Router) -> None:
    args = {"x": [1]}
    router.bind("q", "k", args)
    args["x"].append(2)
    assert list(router.bindings()) == [("q", "k", {"x": [1]})]
    assert router.unbind("q", "k", {"x": [1]})


def test_destinations_are_opaque_hashables(router: Router) -> None:
    class Queue:  # identity-hashed, like a domain object
        pass

    a, b = Queue(), Queue()
    router.bind(a, "k")
    router.bind(b, "k")
    router.bind(("exchange", "e2"), "k")
    routed = router.route("k", {})
    assert len(routed) == 3
    assert a in routed
    assert b in routed


def test_route_returns_each_destination_once(router: Router) -> None:
    # Several bindings from one destination that all match still deliver one copy.
    router.bind("q", "k")
    router.bind("q", "k", {"y": 1})
    router.bind("q", "k", {"z": 1})
    assert list(router.route("k", {"y": 1, "z": 1})) == ["q"]
    router.unbind("q", "k", {"y": 1})
    router.unbind("q", "k")
    assert list(router.route("k", {"y": 1, "z": 1})) == ["q"]
    router.unbind("q", "k", {"z": 1})
    assert list(router.route("k", {"y": 1, "z": 1})) == []


def test_route_result_is_not_changed_by_later_binds(router: Router) -> None:
    router.bind("q1", "k")
    routed = router.route("k", {})
    snapshot = list(routed)
    router.bind("q2", "k")
    router.remove_destination("q1")
    assert list(routed) == snapshot


def test_explain_gives_one_verdict_per_binding(router: Router) -> None:
    router.bind("q", "k")
    router.bind("q", "k", {"a": 1})
    verdicts = router.explain("k", None)
    assert len(verdicts) == 2
    assert all(isinstance(v, BindingVerdict) for v in verdicts)
    assert [(v.destination, v.binding_key, v.arguments) for v in verdicts] == [
        ("q", "k", {}),
        ("q", "k", {"a": 1}),
    ]
    assert all(v.reason for v in verdicts)


def test_explain_agrees_with_route(router: Router) -> None:
    for i, key in enumerate(["k", "k.x", "", "#", "*.x"]):
        router.bind(f"q{i}", key, {"a": i} if i % 2 else {"x-match": "any", "a": 2})
    for key in ["k", "k.x", "", "z.x"]:
        for headers in (None, {"a": 1}, {"a": 2}):
            matched = {v.destination for v in router.explain(key, headers) if v.matched}
            assert matched == set(router.route(key, headers))


def test_validation_only_refuses_for_headers() -> None:
    for name in ("direct", "fanout", "topic"):
        ROUTERS[name].validate_binding("k", {"x-match": "nonsense"})
        assert ROUTERS[name]().bind("q", "k", {"x-match": "nonsense"})
    with pytest.raises(InvalidBinding):
        ROUTERS["headers"].validate_binding("", {"x-match": "nonsense"})
