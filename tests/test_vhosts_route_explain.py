"""explain_route over a real VirtualHost: the broker's exchanges and queues fed to the walker."""

from __future__ import annotations

import pytest

from amqp_lite.wire import Properties
from exchanges.trace import render
from vhosts import Message
from vhosts.errors import NotFound, PreconditionFailed
from vhosts.route_explain import explain_route
from vhosts.vhost import VirtualHost


@pytest.fixture
def vhost() -> VirtualHost:
    return VirtualHost("/")


def test_default_exchange_routes_by_queue_name(vhost: VirtualHost) -> None:
    vhost.declare_queue("jobs", owner=None)
    vhost.declare_queue("audit", owner=None)
    trace = explain_route(vhost, "", "jobs", {"CC": ["audit", "nobody"]})
    assert trace.queues == ("audit", "jobs")
    text = render(trace)
    assert "the default exchange (direct): published to" in text
    assert "✓ queue 'jobs': the default exchange binds every queue by its own name" in text
    assert "✗ queue 'nobody': no queue has this name" in text


def test_unroutable_on_the_default_exchange(vhost: VirtualHost) -> None:
    trace = explain_route(vhost, "", "nobody", None)
    assert not trace.routed
    assert render(trace).endswith(
        "unroutable: the message is dropped (returned to the publisher if mandatory)"
    )


def test_topic_into_exchange_to_exchange_binding(vhost: VirtualHost) -> None:
    market = vhost.declare_exchange("market", "topic")
    audit = vhost.declare_exchange("audit", "fanout")
    usd = vhost.declare_queue("usd", owner=None)
    log = vhost.declare_queue("log", owner=None)
    vhost.bind(market, usd, "stock.*.nyse", {})
    vhost.bind(market, audit, "#", {})
    vhost.bind(audit, log, "", {})
    trace = explain_route(vhost, "market", "stock.usd.nyse", None)
    assert trace.queues == ("log", "usd")
    assert [hop.exchange for hop in trace.hops] == ["market", "audit"]
    text = render(trace)
    assert "✓ queue 'usd': topic 'stock.*.nyse' matched 'stock.usd.nyse': '*' took 'usd'" in text
    assert "  → exchange 'audit' (fanout): bound from 'market' with key '#'" in text
    assert {q.name for q in vhost.route(market, "stock.usd.nyse", None)} == set(trace.queues)


def test_alternate_exchange_from_the_declare_argument(vhost: VirtualHost) -> None:
    orders = vhost.declare_exchange("orders", "direct", arguments={"alternate-exchange": "ae"})
    ae = vhost.declare_exchange("ae", "fanout")
    vhost.bind(orders, vhost.declare_queue("paid", owner=None), "paid", {})
    vhost.bind(ae, vhost.declare_queue("unrouted", owner=None), "", {})
    trace = explain_route(vhost, "orders", "refunded", None)
    assert trace.queues == ("unrouted",)
    assert "no binding matched: falling back to alternate exchange 'ae'" in render(trace)
    assert explain_route(vhost, "orders", "paid", None).queues == ("paid",)


def test_missing_alternate_exchange(vhost: VirtualHost) -> None:
    vhost.declare_exchange("orders", "direct", arguments={"alternate-exchange": "gone"})
    trace = explain_route(vhost, "orders", "k", None)
    assert not trace.routed
    assert "alternate exchange 'gone' does not exist" in render(trace)


def test_consistent_hash_exchange(vhost: VirtualHost) -> None:
    chx = vhost.declare_exchange("chx", "x-consistent-hash")
    for name in ("s1", "s2", "s3"):
        vhost.bind(chx, vhost.declare_queue(name, owner=None), "1", {})
    trace = explain_route(vhost, "chx", "customer-42", None)
    assert len(trace.queues) == 1
    assert [q.name for q in vhost.route(chx, "customer-42", None)] == list(trace.queues)
    assert "hashed to bucket" in render(trace)


def test_unknown_exchange(vhost: VirtualHost) -> None:
    with pytest.raises(NotFound) as caught:
        explain_route(vhost, "nowhere", "k", None)
    assert caught.value.text == "no exchange 'nowhere' in vhost '/'"


def test_cc_that_is_not_an_array(vhost: VirtualHost) -> None:
    with pytest.raises(PreconditionFailed) as caught:
        explain_route(vhost, "", "k", {"CC": "q"})
    assert caught.value.text == 'invalid message: {unacceptable_type_in_header,"CC",longstr}'


def test_an_alternate_exchange_named_empty_is_not_the_default_exchange(vhost: VirtualHost) -> None:
    """The explanation agrees with the broker: an alternate named "" routes nothing."""
    orders = vhost.declare_exchange("orders", "direct", arguments={"alternate-exchange": ""})
    vhost.declare_queue("k", owner=None)
    assert list(vhost.route(orders, "k", None)) == []
    trace = explain_route(vhost, "orders", "k", None)
    assert not trace.routed
    assert "falling back" not in render(trace)


def test_delayed_exchange_holds_then_routes_and_its_alternate_gets_a_copy_now(
    vhost: VirtualHost,
) -> None:
    arguments = {"x-delayed-type": "direct", "alternate-exchange": "ae"}
    later = vhost.declare_exchange("later", "x-delayed-message", arguments=arguments)
    onward = vhost.declare_exchange("onward", "x-delayed-message", arguments=arguments)
    ae = vhost.declare_exchange("ae", "fanout")
    vhost.bind(later, onward, "k", {})
    vhost.bind(onward, vhost.declare_queue("q", owner=None), "k", {})
    vhost.bind(ae, vhost.declare_queue("caught", owner=None), "", {})
    trace = explain_route(vhost, "later", "k", {"x-delay": 1500})
    assert trace.queues == ("caught", "q")
    # Only the first delayed exchange holds it: the released message carries x-delay -1500.
    assert [(hop.exchange, hop.held_ms) for hop in trace.hops] == [
        ("later", 1500),
        ("onward", 0),
        ("ae", 0),
    ]
    assert render(trace).splitlines()[:4] == [
        "message: routing key 'k'; headers {'x-delay': 1500}",
        "exchange 'later' (x-delayed-message): published to",
        "  holds the message for 1500 ms (its x-delay) and routes nothing until then; "
        "afterwards its bindings route it, with x-delay -1500:",
        "  ✓ exchange 'onward': routing key 'k' == binding key 'k'",
    ]
    assert "held, so nothing routed yet: falling back to alternate exchange 'ae'" in render(trace)
    assert explain_route(vhost, "later", "k", None).queues == ("q",)


def test_a_held_message_its_bindings_do_not_route_goes_to_the_alternate_twice(
    vhost: VirtualHost,
) -> None:
    """Once while held, and again when released and no binding matches: two copies, as the
    broker routes them."""
    arguments = {"x-delayed-type": "direct", "alternate-exchange": "ae"}
    later = vhost.declare_exchange("later", "x-delayed-message", arguments=arguments)
    ae = vhost.declare_exchange("ae", "fanout")
    vhost.bind(later, vhost.declare_queue("elsewhere", owner=None), "other", {})
    vhost.bind(ae, vhost.declare_queue("caught", owner=None), "", {})
    trace = explain_route(vhost, "later", "k", {"x-delay": 10})
    assert trace.queues == ("caught",)
    assert [(hop.exchange, hop.held_ms) for hop in trace.hops] == [
        ("later", 10),
        ("ae", 0),
        ("ae", 0),
    ]
    text = render(trace)
    assert "  held, so nothing routed yet: falling back to alternate exchange 'ae'" in text
    assert "  when the hold ends, no binding matches: falling back to alternate exchange 'ae'" in (
        text
    )
    assert text.count("→ exchange 'ae' (fanout): alternate exchange of 'later'") == 2
    vhost.publish(later, Message("later", "k", Properties(headers={"x-delay": 10}), b"m"))
    vhost.clock.advance(1)
    vhost.timers.run_due(vhost.clock.now())
    assert vhost.queues["caught"].message_count == 2
