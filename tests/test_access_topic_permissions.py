"""Topic permissions, as RabbitMQ 3.10.8's `set_topic_permissions`: on a topic exchange, the
routing keys a user may publish with (write) and bind with (read).

Observed on RabbitMQ 3.10.8: `{username}` and `{vhost}` are expanded, `{client_id}` is not for
AMQP 0-9-1 (it stays in the pattern as text); an empty pattern allows only the empty routing key;
an exchange without a topic permission allows any key; only topic exchanges are checked; bind
and unbind check the source exchange, exchange-to-exchange bindings included, never the
destination.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from vhosts import Node
from vhosts.definitions import parse
from vhosts.definitions_export import export_definitions
from vhosts.users import TopicPermission

USER = "writer"


def _refused(key: str, exchange: str) -> tuple[int, str]:
    return (
        403,
        f"ACCESS_REFUSED - access to topic '{key}' in exchange '{exchange}' in vhost '/' "
        f"refused for user '{USER}'",
    )


@pytest.fixture
def channel_for(broker) -> Iterator[Callable[[], Any]]:
    """A new channel of a user with topic permissions on amq.topic ({username}/{vhost}),
    'literal' ({client_id}, no read) and 'direct-x' (a direct exchange)."""
    admin = broker.admin
    admin.add_user(USER, "secret")
    admin.set_permissions(USER, "/")
    admin.set_topic_permissions(USER, "/", "amq.topic", r"^{username}\.", r"^{vhost}\.")
    admin.set_topic_permissions(USER, "/", "literal", "^{client_id}$", "")
    admin.set_topic_permissions(USER, "/", "direct-x", "^nothing$", "^nothing$")
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as setup_connection:
        setup = setup_connection.channel()
        setup.exchange_declare("literal", "topic")
        setup.exchange_declare("direct-x", "direct")
        setup.exchange_declare("fan", "fanout")
        setup.queue_declare("q")
    url = broker.url.replace("guest:guest", f"{USER}:secret")
    connection = pika.BlockingConnection(pika.URLParameters(url))

    def new_channel() -> Any:
        return connection.channel()

    yield new_channel
    if connection.is_open:
        connection.close()


def _outcome(action: Callable[[], Any]) -> tuple[int, str] | str:
    try:
        action()
    except ChannelClosedByBroker as closed:
        return closed.reply_code, closed.reply_text
    return "ok"


def _publish(channel: Any, exchange: str, key: str) -> None:
    channel.confirm_delivery()
    channel.basic_publish(exchange, key, b"x")


@pytest.mark.parametrize(
    ("exchange", "key", "expected"),
    [
        ("amq.topic", "writer.news", "ok"),  # {username}
        ("amq.topic", "other.news", _refused("other.news", "amq.topic")),
        ("direct-x", "anything", "ok"),  # not a topic exchange: not checked
        ("literal", "{client_id}", "ok"),  # not expanded for AMQP 0-9-1
        ("literal", "x", _refused("x", "literal")),
        ("amq.direct", "anything", "ok"),  # no topic permission there
    ],
)
def test_publishing_to_a_topic_exchange_checks_the_write_pattern(
    channel_for, exchange: str, key: str, expected: object
) -> None:
    channel = channel_for()
    assert _outcome(lambda: _publish(channel, exchange, key)) == expected


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (lambda ch: ch.queue_bind("q", "amq.topic", "/.news"), "ok"),  # {vhost}
        (lambda ch: ch.queue_bind("q", "amq.topic", "zzz"), _refused("zzz", "amq.topic")),
        (lambda ch: ch.queue_unbind("q", "amq.topic", "zzz"), _refused("zzz", "amq.topic")),
        (lambda ch: ch.queue_unbind("q", "amq.topic", "/.news"), "ok"),
        (lambda ch: ch.exchange_bind("fan", "amq.topic", "zzz"), _refused("zzz", "amq.topic")),
        (lambda ch: ch.exchange_bind("amq.topic", "fan", "zzz"), "ok"),  # destination: no check
        (lambda ch: ch.queue_bind("q", "literal", "x"), _refused("x", "literal")),
        (lambda ch: ch.queue_bind("q", "literal", ""), "ok"),  # an empty pattern: only ""
    ],
    ids=[
        "bind-vhost",
        "bind-refused",
        "unbind-refused",
        "unbind",
        "exchange-bind-source",
        "exchange-bind-destination",
        "empty-read-pattern",
        "empty-read-pattern-empty-key",
    ],
)
def test_binding_from_a_topic_exchange_checks_the_read_pattern(
    channel_for, action, expected: object
) -> None:
    channel = channel_for()
    assert _outcome(lambda: action(channel)) == expected


def test_topic_permissions_change_at_runtime(broker, channel_for) -> None:
    channel = channel_for()
    _publish(channel, "amq.topic", "writer.a")
    broker.admin.clear_topic_permissions(USER, "/", "amq.topic")
    _publish(channel, "amq.topic", "anyone.a")  # nothing left on amq.topic: anything goes
    assert [p.exchange for p in broker.admin.topic_permissions(user=USER)] == [
        "direct-x",
        "literal",
    ]
    broker.admin.clear_topic_permissions(USER, "/")
    assert broker.admin.topic_permissions(user=USER) == []


def test_a_topic_permission_pattern_must_be_a_regular_expression(broker) -> None:
    with pytest.raises(ValueError, match="write is not a regular expression"):
        broker.admin.set_topic_permissions("guest", "/", "amq.topic", "(", ".*")


# -- kept, loaded and exported --------------------------------------------------------------------


def test_topic_permissions_are_kept_across_restarts(tmp_path: Path) -> None:
    from amqp_lite.storage import open_store

    store = open_store(tmp_path)
    node = Node(store=store)
    node.add_vhost("v")
    node.set_topic_permission(
        node.users.get("guest"),  # type: ignore[arg-type]
        "v",
        TopicPermission("amq.topic", "^a", "^b"),
    )
    store.flush()
    store.close()
    store = open_store(tmp_path)
    guest = Node(store=store).users.get("guest")
    assert guest is not None
    assert guest.topic_permissions == {"v": {"amq.topic": TopicPermission("amq.topic", "^a", "^b")}}
    store.close()


def test_deleting_a_vhost_or_user_takes_its_topic_permissions(tmp_path: Path) -> None:
    from amqp_lite.storage import open_store

    store = open_store(tmp_path)
    node = Node(store=store)
    alice = node.add_user("alice", "x")
    for vhost in ("v", "w"):
        node.add_vhost(vhost)
        node.set_topic_permission(alice, vhost, TopicPermission("amq.topic"))
    node.delete_vhost("v")
    assert list(alice.topic_permissions) == ["w"]
    node.delete_user("alice")
    store.flush()
    store.close()
    store = open_store(tmp_path)
    assert store.topic_permissions() == []
    store.close()


DEFINITIONS = {
    "vhosts": [{"name": "v"}],
    "users": [{"name": "app", "password_hash": "", "tags": []}],
    "permissions": [{"user": "app", "vhost": "v", "configure": ".*", "write": ".*", "read": ".*"}],
    "topic_permissions": [
        {"user": "app", "vhost": "v", "exchange": "amq.topic", "write": "^{username}", "read": ""}
    ],
}


def test_the_definitions_loader_applies_topic_permissions_and_export_writes_them() -> None:
    node = Node(vhost_names=(), guest=False)
    parse(json.dumps(DEFINITIONS), "defs.json").apply_to(node)
    app = node.users.get("app")
    assert app is not None
    assert app.topic_permissions["v"]["amq.topic"] == TopicPermission(
        "amq.topic", "^{username}", ""
    )
    assert export_definitions(node)["topic_permissions"] == DEFINITIONS["topic_permissions"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"user": "nobody"}, "topic_permissions[0]: no user 'nobody' (not in the file)"),
        ({"vhost": "elsewhere"}, "topic_permissions[0]: vhost elsewhere not found"),
        ({"write": "("}, "topic_permissions[0]: write is not a regular expression"),
        ({"exchange": None}, 'topic_permissions[0]: "exchange" must be a string, not null'),
    ],
)
def test_the_definitions_loader_checks_topic_permissions(entry: dict, message: str) -> None:
    document = json.loads(json.dumps(DEFINITIONS))
    document["topic_permissions"][0].update(entry)
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(json.dumps(document), "defs.json")
