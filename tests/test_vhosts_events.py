"""Node-wide events, in memory: many listeners, emitted by the domain where things happen."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from vhosts import Node, Permission
from vhosts.clock import Clock
from vhosts.events import Event, NodeEvents
from vhosts.policies import Policy


def test_every_listener_hears_an_event_in_the_order_they_subscribed() -> None:
    event: Event[[str]] = Event("thing_happened")
    heard: list[tuple[str, str]] = []
    event.subscribe(lambda what: heard.append(("first", what)))
    event.subscribe(lambda what: heard.append(("second", what)))
    event.emit("boom")
    assert heard == [("first", "boom"), ("second", "boom")]


def test_an_event_without_listeners_is_false_and_emits_nothing() -> None:
    event: Event[[]] = Event("quiet")
    assert not event
    event.emit()
    unsubscribe = event.subscribe(lambda: None)
    assert event
    unsubscribe()
    assert not event


def test_unsubscribing_during_an_emit_counts_from_the_next_one() -> None:
    event: Event[[]] = Event("e")
    heard: list[str] = []

    def once() -> None:
        heard.append("once")
        event.unsubscribe(once)

    event.subscribe(once)
    event.subscribe(lambda: heard.append("always"))
    event.emit()
    event.emit()
    assert heard == ["once", "always", "always"]


def test_a_failing_listener_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    event: Event[[]] = Event("fragile")
    heard: list[str] = []

    def broken() -> None:
        raise RuntimeError("listener bug")

    event.subscribe(broken)
    event.subscribe(lambda: heard.append("after"))
    with caplog.at_level(logging.ERROR, logger="vhosts.events"):
        event.emit()
    assert heard == ["after"]
    assert "fragile" in caplog.text and "listener bug" in caplog.text


def _record(events: NodeEvents) -> list[tuple[str, tuple[Any, ...]]]:
    heard: list[tuple[str, tuple[Any, ...]]] = []
    for event in events:
        event.subscribe(lambda *args, name=event.name: heard.append((name, args)))
    return heard


def _names(heard: list[tuple[str, tuple[Any, ...]]]) -> list[str]:
    return [name for name, _ in heard]


def test_topology_changes_emit_their_events() -> None:
    node = Node()
    heard = _record(node.events)
    vhost = node.add_vhost("shop")
    exchange = vhost.declare_exchange("orders", "direct")
    queue = vhost.declare_queue("q", owner=None)
    vhost.declare_queue("q", owner=None)  # declared again: nothing new
    vhost.bind(exchange, queue, "k", {})
    vhost.bind(exchange, queue, "k", {})  # the same binding: nothing new
    vhost.unbind(exchange, queue, "k", {})
    assert _names(heard) == [
        "vhost_created",
        "permission_created",  # guest may use every vhost
        "exchange_created",
        "queue_created",
        "binding_created",
        "binding_deleted",
    ]
    assert heard[2][1] == (exchange,)
    assert heard[4][1] == (exchange, queue, "k", {})


def test_deleting_a_queue_or_exchange_reports_the_bindings_that_went_with_it() -> None:
    node = Node()
    vhost = node.vhost("/")
    source = vhost.declare_exchange("src", "fanout")
    middle = vhost.declare_exchange("mid", "fanout")
    queue = vhost.declare_queue("q", owner=None)
    vhost.bind(source, middle, "", {})
    vhost.bind(middle, queue, "", {})
    heard = _record(node.events)
    vhost.delete_queue("q", owner=None)
    vhost.delete_exchange("src")
    assert heard == [
        ("binding_deleted", (middle, queue, "", {})),
        ("queue_deleted", (queue,)),
        ("binding_deleted", (source, middle, "", {})),
        ("exchange_deleted", (source,)),
    ]


def test_deleting_a_vhost_reports_its_queues_permissions_and_itself() -> None:
    node = Node(("/", "doomed"))
    queue = node.vhost("doomed").declare_queue("q", owner=None)
    heard = _record(node.events)
    node.delete_vhost("doomed")
    assert _names(heard) == ["queue_deleted", "permission_deleted", "vhost_deleted"]
    assert heard[0][1] == (queue,)


def test_users_permissions_policies_and_alarms_emit_their_events() -> None:
    node = Node()
    heard = _record(node.events)
    user = node.add_user("ann", "secret")
    node.set_permission(user, "/", Permission(".*", "", ".*"))
    node.change_password("ann", "other")
    node.set_user_tags("ann", ["monitoring"])
    node.clear_permission(user, "/")
    node.delete_user("ann")
    policy = Policy("/", "ttl", "^q", "queues", 0, {"message-ttl": 5})
    node.set_policy(policy)
    node.clear_policy("/", "ttl")
    node.set_alarm("memory")
    node.set_alarm("memory")  # already on: nothing new
    node.clear_alarm("memory")
    assert _names(heard) == [
        "user_created",
        "permission_created",
        "user_password_changed",
        "user_tags_set",
        "permission_deleted",
        "user_deleted",
        "policy_set",
        "policy_cleared",
        "alarm_set",
        "alarm_cleared",
    ]
    assert heard[1][1] == (user, "/", Permission(".*", "", ".*"))
    assert heard[6][1] == (policy,)
    assert heard[8][1] == ("memory",)


def test_a_refused_policy_changes_nothing_and_emits_nothing() -> None:
    node = Node()
    heard = _record(node.events)
    with pytest.raises(ValueError, match="is not a valid maximum length"):
        node.set_policy(Policy("/", "bad", "^q", "all", 0, {"max-length": -1}))
    assert heard == []
    assert node.vhost("/").policies is None


def test_every_listener_of_a_shared_clock_hears_it_advance() -> None:
    clock = Clock(frozen_at=0)
    heard: list[str] = []
    clock.advanced.subscribe(lambda: heard.append("a"))
    clock.advanced.subscribe(lambda: heard.append("b"))
    clock.advance(1)
    assert heard == ["a", "b"]
