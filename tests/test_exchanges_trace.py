"""The routing walk and its rendering, over topologies of real routers.  The walk's rules are
rabbit_exchange:route's in RabbitMQ 3.10; the CC/BCC facts were also checked on a 3.10.8 node
(a non-array CC is refused with the text below, non-string elements are skipped, a headers
exchange does not see BCC, and x-consistent-hash delivers one copy whatever the CC keys)."""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping
from typing import Any

import attrs
import pytest

from exchanges import ROUTERS, Router
from exchanges.trace import RouteTrace, render, trace_route
from exchanges.walk import InvalidRoutingHeader, walk


@attrs.define(eq=False)
class View:
    """An exchange as the walk sees it; `delayed` ones hold a message for its x-delay."""

    name: str
    type_name: str
    router: Any
    alternate_exchange: str | None = None
    delayed: bool = False

    def hold_ms(self, headers: Mapping[str, Any] | None) -> int:
        delay: int = (headers or {}).get("x-delay", 0)
        return max(delay, 0)


def released(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**(headers or {}), "x-delay": -(headers or {})["x-delay"]}


class Topology:
    """Exchanges by name; routers hold queues by name and exchanges as themselves."""

    def __init__(self) -> None:
        self.views: dict[str, View] = {}

    def exchange(
        self,
        name: str,
        type_name: str,
        alternate: str | None = None,
        delayed: bool = False,
        **arguments: Any,
    ) -> Router:
        router = ROUTERS[type_name](arguments) if arguments else ROUTERS[type_name]()
        self.views[name] = View(name, type_name, router, alternate, delayed)
        return router

    def bind(self, source: str, kind: str, name: str, key: str = "", **arguments: Any) -> None:
        destination = self.views[name] if kind == "exchange" else name
        self.views[source].router.bind(destination, key, arguments)

    def trace(self, start: str, key: str, headers: dict[str, Any] | None = None) -> RouteTrace:
        return trace_route(
            self.views[start],
            key,
            headers,
            walk=functools.partial(walk, exchange_named=self.views.get, exchange_type=View),
            destination_name=self.named,
            released_headers=released,
        )

    @staticmethod
    def named(destination: Hashable) -> tuple[str, str]:
        if isinstance(destination, View):
            return "exchange", destination.name
        return "queue", str(destination)


@pytest.fixture
def topo() -> Topology:
    return Topology()


def test_topic_verdicts_and_captures(topo: Topology) -> None:
    topo.exchange("market", "topic")
    topo.bind("market", "queue", "usd", "stock.*.nyse")
    topo.bind("market", "queue", "all", "stock.#")
    topo.bind("market", "queue", "eur", "stock.eur.*")
    trace = topo.trace("market", "stock.usd.nyse")
    assert trace.routed
    assert trace.queues == ("all", "usd")  # sorted by name, as RabbitMQ returns them
    (hop,) = trace.hops
    assert (hop.exchange, hop.type_name, hop.reached.how) == ("market", "topic", "published")
    (trial,) = hop.trials
    assert [(c.target.name, c.verdict.matched) for c in trial.verdicts] == [
        ("usd", True),
        ("all", True),
        ("eur", False),
    ]
    assert trial.verdicts[0].verdict.captures == (("*", "usd"),)
    text = render(trace)
    assert text.splitlines() == [
        "message: routing key 'stock.usd.nyse'; no headers",
        "exchange 'market' (topic): published to",
        "  ✓ queue 'usd': topic 'stock.*.nyse' matched 'stock.usd.nyse': '*' took 'usd'",
        "  ✓ queue 'all': topic 'stock.#' matched 'stock.usd.nyse': '#' took 'usd.nyse'",
        "  ✗ queue 'eur': topic 'stock.eur.*' did not match 'stock.usd.nyse': "
        "word 2 is 'usd', not 'eur'",
        "final: queues 'all', 'usd'",
    ]


def test_headers_all_and_any(topo: Topology) -> None:
    topo.exchange("h", "headers")
    topo.bind("h", "queue", "any", **{"x-match": "any", "a": 1, "b": 2})
    topo.bind("h", "queue", "all", **{"x-match": "all", "a": 1, "b": 2})
    trace = topo.trace("h", "ignored", {"a": 1})
    assert trace.queues == ("any",)
    text = render(trace)
    assert "  ✓ queue 'any': x-match any: 'a' = 1" in text
    assert "  ✗ queue 'all': x-match all: 'b' is missing" in text
    assert "; headers {'a': 1}" in text.splitlines()[0]


def test_exchange_to_exchange_chain(topo: Topology) -> None:
    topo.exchange("a", "direct")
    topo.exchange("b", "topic")
    topo.exchange("c", "fanout")
    topo.bind("a", "exchange", "b", "k.x")
    topo.bind("b", "exchange", "c", "k.*")
    topo.bind("c", "queue", "end")
    trace = topo.trace("a", "k.x")
    assert [hop.exchange for hop in trace.hops] == ["a", "b", "c"]
    b, c = trace.hops[1].reached, trace.hops[2].reached
    assert (b.how, b.via, b.binding_keys) == ("bound", "a", ("k.x",))
    assert (c.how, c.via, c.binding_keys) == ("bound", "b", ("k.*",))
    assert trace.queues == ("end",)
    text = render(trace)
    assert "  → exchange 'b' (topic): bound from 'a' with key 'k.x'" in text
    assert "    → exchange 'c' (fanout): bound from 'b' with key 'k.*'" in text
    assert "      ✓ queue 'end': fanout ignores the routing key" in text


def test_a_loop_visits_each_exchange_once(topo: Topology) -> None:
    topo.exchange("a", "fanout")
    topo.exchange("b", "fanout")
    topo.bind("a", "exchange", "b")
    topo.bind("b", "exchange", "a")
    topo.bind("b", "queue", "q")
    topo.bind("a", "queue", "q")
    trace = topo.trace("a", "k")
    assert [hop.exchange for hop in trace.hops] == ["a", "b"]
    assert trace.queues == ("q",)
    outcomes = [(h.target.name, h.outcome) for h in trace.hops[1].handoffs]
    assert outcomes == [("a", "already visited"), ("q", "already queued")]
    text = render(trace)
    assert "↺ exchange 'a' was already visited: not routed through again" in text
    assert "= queue 'q' already has a copy: each queue gets one" in text


def test_pending_exchanges_are_visited_newest_first(topo: Topology) -> None:
    # RabbitMQ prepends each exchange reached to its work list, then takes the head.
    topo.exchange("x", "fanout")
    for name in ("e1", "e2", "e3"):
        topo.exchange(name, "fanout")
        topo.bind("x", "exchange", name)
        topo.bind(name, "queue", f"q-{name}")
    trace = topo.trace("x", "")
    assert [hop.exchange for hop in trace.hops] == ["x", "e3", "e2", "e1"]
    # The picture follows the bindings, not the visiting order.
    text = render(trace)
    arrows = [line.strip()[:15] for line in text.splitlines() if "→" in line]
    assert arrows == ["→ exchange 'e1'", "→ exchange 'e2'", "→ exchange 'e3'"]


def test_alternate_exchange_chain(topo: Topology) -> None:
    topo.exchange("x", "direct", alternate="ae1")
    topo.exchange("ae1", "direct", alternate="ae2")
    topo.exchange("ae2", "fanout")
    topo.bind("x", "queue", "wanted", "other")
    topo.bind("ae1", "queue", "nope", "nope")
    topo.bind("ae2", "queue", "caught")
    trace = topo.trace("x", "k")
    assert [(h.exchange, h.used_alternate) for h in trace.hops] == [
        ("x", True),
        ("ae1", True),
        ("ae2", False),
    ]
    assert trace.hops[1].reached.how == "alternate"
    assert trace.hops[1].reached.via == "x"
    assert trace.queues == ("caught",)
    lines = render(trace).splitlines()
    assert "  no binding matched: falling back to alternate exchange 'ae1'" in lines
    assert "  → exchange 'ae1' (direct): alternate exchange of 'x'" in lines
    assert "    no binding matched: falling back to alternate exchange 'ae2'" in lines
    assert lines[-1] == "final: queue 'caught'"


def test_alternate_exchange_loop_stops(topo: Topology) -> None:
    topo.exchange("x", "direct", alternate="y")
    topo.exchange("y", "direct", alternate="x")
    topo.exchange("self", "direct", alternate="self")
    trace = topo.trace("x", "k")
    assert [hop.exchange for hop in trace.hops] == ["x", "y"]
    assert not trace.routed
    assert trace.hops[1].handoffs[0].outcome == "already visited"
    text = render(trace)
    assert "alternate exchange 'x' was already visited, so the message goes no further" in text
    assert text.endswith(
        "unroutable: the message is dropped (returned to the publisher if mandatory)"
    )
    assert [hop.exchange for hop in topo.trace("self", "k").hops] == ["self"]


def test_missing_alternate_exchange_is_skipped(topo: Topology) -> None:
    topo.exchange("x", "direct", alternate="gone")
    trace = topo.trace("x", "k")
    assert [hop.exchange for hop in trace.hops] == ["x"]
    assert trace.hops[0].handoffs[0].outcome == "missing"
    assert not trace.routed
    assert "no binding matched: alternate exchange 'gone' does not exist" in render(trace)


def test_alternate_is_not_used_when_the_router_matched_anything(topo: Topology) -> None:
    # Even if all it matched is an exchange already visited: RabbitMQ looks at the matches.
    topo.exchange("a", "fanout")
    topo.exchange("b", "direct", alternate="ae")
    topo.exchange("ae", "fanout")
    topo.bind("ae", "queue", "caught")
    topo.bind("a", "exchange", "b")
    topo.bind("b", "exchange", "a", "k")
    trace = topo.trace("a", "k")
    assert [(h.exchange, h.used_alternate) for h in trace.hops] == [("a", False), ("b", False)]
    assert not trace.routed
    assert "no binding matched" not in render(trace)
    assert topo.trace("a", "other").queues == ("caught",)


def test_no_alternate_exchange_says_so(topo: Topology) -> None:
    topo.exchange("x", "direct")
    text = render(topo.trace("x", "k"))
    assert "  (no bindings)" in text
    assert "  no binding matched, and there is no alternate exchange" in text


def test_cc_and_bcc_add_routing_keys_at_every_exchange(topo: Topology) -> None:
    topo.exchange("x", "direct")
    topo.exchange("y", "direct")
    topo.bind("x", "queue", "a", "a")
    topo.bind("x", "exchange", "y", "b")
    topo.bind("y", "queue", "c", "c")
    topo.bind("y", "queue", "z", "z")
    headers = {"CC": ["b", 7, b"z", "b"], "BCC": ["c"]}
    trace = topo.trace("x", "a", headers)
    assert [(k.key, k.origin) for k in trace.keys] == [
        ("a", "routing key"),
        ("b", "CC"),
        ("c", "BCC"),
    ]
    assert trace.queues == ("a", "c")  # 7 and b"z" are not longstr: skipped
    assert [t.key.key for t in trace.hops[1].trials] == ["a", "b", "c"]
    text = render(trace)
    assert text.startswith(
        "message: routing key 'a', CC key 'b', BCC key 'c' "
        "(the BCC header is removed before routing); no headers"
    )
    assert "  CC key 'b':\n    ✗ queue 'a'" in text


def test_bcc_is_hidden_from_routers(topo: Topology) -> None:
    topo.exchange("h", "headers")
    topo.bind("h", "queue", "sees-bcc", BCC=None)
    topo.bind("h", "queue", "sees-cc", CC=None)
    assert topo.trace("h", "", {"CC": ["x"], "BCC": ["y"]}).queues == ("sees-cc",)


def test_keys_that_route_alike_are_shown_together(topo: Topology) -> None:
    topo.exchange("f", "fanout")
    topo.bind("f", "queue", "q")
    text = render(topo.trace("f", "a", {"CC": ["b"]}))
    assert "  routing key 'a', CC key 'b' (the same for each):\n    ✓ queue 'q'" in text


def test_consistent_hash_hashes_only_the_routing_key(topo: Topology) -> None:
    topo.exchange("chx", "x-consistent-hash")
    for name in ("q1", "q2", "q3", "q4"):
        topo.bind("chx", "queue", name, "1")
    trace = topo.trace("chx", "k", {"CC": [f"cc{i}" for i in range(20)]})
    assert len(trace.queues) == 1
    (hop,) = trace.hops
    assert [t.key.key for t in hop.trials] == ["k"]
    assert len(hop.untried) == 20
    text = render(trace)
    assert "not tried: CC key 'cc0', " in text
    assert "(x-consistent-hash uses only the routing key)" in text
    assert "so it wins" in text


@pytest.mark.parametrize(
    ("headers", "text"),
    [
        ({"CC": "q"}, 'invalid message: {unacceptable_type_in_header,"CC",longstr}'),
        ({"BCC": 5}, 'invalid message: {unacceptable_type_in_header,"BCC",signedint}'),
        ({"CC": {"a": 1}}, 'invalid message: {unacceptable_type_in_header,"CC",table}'),
    ],
)
def test_cc_that_is_not_an_array_is_refused(
    topo: Topology, headers: dict[str, Any], text: str
) -> None:
    topo.exchange("x", "direct")
    with pytest.raises(InvalidRoutingHeader) as caught:
        topo.trace("x", "k", headers)
    assert caught.value.text == text


def test_a_router_without_explanations_still_shows_what_it_routed(topo: Topology) -> None:
    class Silent:
        only_first_routing_key = False

        def route(self, routing_key: str, headers: Any) -> tuple[Hashable, ...]:
            return (routing_key,)

        def explain(self, routing_key: str, headers: Any) -> list:
            return []

    topo.views[""] = View("", "direct", Silent())
    trace = topo.trace("", "q")
    assert trace.queues == ("q",)
    text = render(trace)
    assert "the default exchange (direct): published to" in text
    assert "✓ queue 'q': routed (no binding explains it)" in text
