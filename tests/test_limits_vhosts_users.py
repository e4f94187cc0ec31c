"""RabbitMQ's limits on vhosts (connections, queues), on users (connections, channels) and on
the node (connections), with its reply codes and texts.

The tests that take `target` run against RabbitMQ 3.10.8 too (`--rabbitmq-url` with
`--rabbitmqctl`), which is how their texts were checked.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pika
import pytest
import trio
import trio.testing
from pika.exceptions import (
    ChannelClosedByBroker,
    ConnectionClosedByBroker,
    ProbableAccessDeniedError,
)

from amqp_lite import Broker, run_in_thread
from amqp_lite.wire import methods
from amqp_lite.wire.frames import PROTOCOL_HEADER
from tests.conftest import Target
from tests.management_client import Api
from tests.rawclient import RawClient, connected
from vhosts import Node
from vhosts.limits import LimitsInvalid, validate_user_limits, validate_vhost_limits

# -- what may be set ------------------------------------------------------------------------------


def test_vhost_limits_are_checked_with_rabbitmqs_texts() -> None:
    assert validate_vhost_limits({"max-connections": 5, "max-queues": -1}) == {
        "max-connections": 5,
        "max-queues": -1,
    }
    with pytest.raises(LimitsInvalid) as unknown:
        validate_vhost_limits({"max-foo": 1})
    assert str(unknown.value) == (
        'Validation failed\n\nUnrecognised terms [{<<"max-foo">>,1}] in limits\n'
    )
    with pytest.raises(LimitsInvalid) as several:
        validate_vhost_limits({"max-connections": 1.5, "max-queues": "x", "other": True})
    assert str(several.value) == (
        "Validation failed\n\n"
        'Unrecognised terms [{<<"other">>,true}] in limits\n'
        'max-queues should be a number, actually was <<"x">>\n'
        "max-connections should be a number, actually was 1.5\n"
    )


def test_user_limits_are_checked_with_rabbitmqs_texts() -> None:
    assert validate_user_limits({"max-channels": 0}) == {"max-channels": 0}
    with pytest.raises(LimitsInvalid, match=r"^Unrecognised terms \[\{<<\"max-queues\">>,1\}\] "):
        validate_user_limits({"max-queues": 1})
    with pytest.raises(LimitsInvalid) as wrong:
        validate_user_limits({"max-channels": "x"})
    assert str(wrong.value) == 'max-channels should be a number, actually was <<"x">>'


def test_vhost_limits_replace_and_user_limits_merge_as_in_rabbitmqctl() -> None:
    node = Node()
    node.add_user("ann", "pw")
    node.set_vhost_limits("/", {"max-connections": 1, "max-queues": 1})
    node.set_vhost_limits("/", {"max-queues": 3})
    assert node.vhost("/").limits == {"max-queues": 3}
    node.set_user_limits("ann", {"max-connections": 1, "max-channels": 2})
    node.set_user_limits("ann", {"max-connections": 3})
    assert node.user("ann").limits == {"max-connections": 3, "max-channels": 2}
    node.clear_user_limit("ann", "max-channels")
    assert node.user("ann").limits == {"max-connections": 3}
    node.add_user("ann", "new password")  # a user replaced keeps its limits, as its permissions
    assert node.user("ann").limits == {"max-connections": 3}


# -- over the wire --------------------------------------------------------------------------------


def _connect(target: Target, vhost: str, user: str = "guest", password: str = "guest"):
    url = target.vhost_url(vhost).replace("guest:guest", f"{user}:{password}")
    return pika.BlockingConnection(pika.URLParameters(url))


def _refused(target: Target, vhost: str, user: str = "guest", password: str = "guest") -> str:
    """The connection.close a connection attempt met, as pika reports it."""
    with pytest.raises(ProbableAccessDeniedError) as refused:
        _connect(target, vhost, user, password)
    return str(refused.value)


def test_a_vhost_connection_limit_refuses_the_next_connection(target: Target) -> None:
    vhost = target.unique("bounds-limits")
    target.add_vhost(vhost)
    try:
        target.set_vhost_limits(vhost, {"max-connections": 1})
        first = _connect(target, vhost)
        assert (
            f"(530) \"NOT_ALLOWED - access to vhost '{vhost}' refused for user 'guest': "
            'connection limit (1) is reached"'
        ) in _refused(target, vhost)
        first.close()
        _connect(target, vhost).close()  # a place is free again
        target.set_vhost_limits(vhost, {"max-connections": 0})  # 0 allows none
        assert "connection limit (0) is reached" in _refused(target, vhost)
        target.set_vhost_limits(vhost, {"max-connections": -1})  # negative: no limit
        _connect(target, vhost).close()
    finally:
        target.delete_vhost(vhost)


def test_a_vhost_queue_limit_refuses_new_queues_only(target: Target) -> None:
    vhost = target.unique("bounds-limits")
    target.add_vhost(vhost)
    try:
        target.set_vhost_limits(vhost, {"max-queues": 1})
        connection = _connect(target, vhost)
        channel = connection.channel()
        channel.queue_declare("first")
        channel.queue_declare("first")  # an existing queue is declared as ever
        with pytest.raises(ChannelClosedByBroker) as refused:
            channel.queue_declare("second")
        assert refused.value.reply_code == 406
        assert refused.value.reply_text == (
            f"PRECONDITION_FAILED - cannot declare queue 'second': queue limit in vhost "
            f"'{vhost}' (1) is reached"
        )
        channel = connection.channel()
        channel.queue_delete("first")
        channel.queue_declare("second")
        connection.close()
    finally:
        target.delete_vhost(vhost)


def test_user_limits_count_connections_and_channels_across_connections(target: Target) -> None:
    user = target.unique("bounds-user")
    target.add_user(user, "pw")
    try:
        target.set_user_limits(user, {"max-connections": 2, "max-channels": 2})
        first = _connect(target, "/", user, "pw")
        second = _connect(target, "/", user, "pw")
        assert (
            f"(530) \"NOT_ALLOWED - connection refused for user '{user}': user connection "
            'limit (2) is reached"'
        ) in _refused(target, "/", user, "pw")
        first.channel()
        second.channel()
        with pytest.raises(ConnectionClosedByBroker) as too_many:
            second.channel()  # the user's third channel, on either connection
        assert too_many.value.reply_code == 530
        assert too_many.value.reply_text == (
            f"NOT_ALLOWED - number of channels opened for user '{user}' has reached the "
            "maximum allowed user limit of (2)"
        )
        first.close()
        third = _connect(target, "/", user, "pw")  # second's close gave its channel back too
        third.channel()
        third.channel()
        third.close()
    finally:
        target.delete_user(user)


async def test_the_channel_limit_closes_the_connection_naming_no_method() -> None:
    async with Broker() as broker:
        broker.admin.set_user_limits("guest", {"max-channels": 1})
        client = await connected(broker.port)  # channel 1 is open
        await client.send_method(2, methods.ChannelOpen())
        close = await client.expect_connection_close(530)
        assert (close.class_id, close.method_id) == (0, 0)  # as RabbitMQ's 'none'
        await client.aclose()
        assert broker.node is not None and not broker.node.tracking.user_channels


def test_limits_are_kept_across_a_restart(tmp_path: Path) -> None:
    for _ in range(2):
        with run_in_thread(data_dir=tmp_path, vhosts=("/", "shop")) as broker:
            if broker.admin.vhost_limits() == {}:
                broker.admin.add_user("ann", "pw")
                broker.admin.set_vhost_limits("shop", {"max-queues": 10})
                broker.admin.set_user_limits("ann", {"max-channels": 3})
                continue
            assert broker.admin.vhost_limits() == {"shop": {"max-queues": 10}}
            assert broker.admin.user_limits() == {"ann": {"max-channels": 3}}
            broker.admin.clear_vhost_limits("shop")
            broker.admin.delete_user("ann")
    with run_in_thread(data_dir=tmp_path, vhosts=("/", "shop")) as broker:
        assert broker.admin.vhost_limits() == {} and broker.admin.user_limits() == {}


# -- the node's own connection limit --------------------------------------------------------------


def _answered(client: RawClient) -> bool:
    """Has the server sent anything yet? (A peek at a duplicate of the socket: it reads nothing.)"""
    fd = client.stream.socket.fileno()
    with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as peek:
        try:
            return bool(peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except BlockingIOError:
            return False


async def test_at_the_node_connection_limit_the_next_client_waits_to_be_accepted() -> None:
    async with Broker(connection_max=2) as broker:
        first = await connected(broker.port)
        second = await RawClient.connect(broker.port)  # counts, though it has said nothing
        waiting = await RawClient.connect(broker.port)  # the kernel's backlog holds it
        await waiting.send(PROTOCOL_HEADER)
        await trio.testing.wait_all_tasks_blocked()
        assert not _answered(waiting)
        await first.close()
        await first.aclose()
        await waiting.expect(methods.ConnectionStart, 0)  # accepted once a place was free
        for client in (second, waiting):
            await client.aclose()


# -- the management API ---------------------------------------------------------------------------


def test_the_management_api_lists_sets_and_clears_limits() -> None:
    with run_in_thread(vhosts=("/", "shop"), management=True) as broker:
        assert broker.management_url is not None
        api = Api(broker.management_url)
        broker.admin.add_user("ann", "ann-secret", tags=("management",))
        broker.admin.set_permissions("ann", "shop")
        assert api.get("/api/vhost-limits") == [] and api.get("/api/user-limits") == []
        assert api.put("/api/vhost-limits/shop/max-connections", {"value": 3}).status == 204
        assert api.put("/api/vhost-limits/shop/max-queues", {"value": 7}).status == 204
        assert api.get("/api/vhost-limits/shop") == [
            {"vhost": "shop", "value": {"max-connections": 3, "max-queues": 7}}
        ]
        assert api.get("/api/vhost-limits/%2F") == []
        assert api.call("GET", "/api/vhost-limits/nope").status == 404
        bad = api.put("/api/vhost-limits/shop/max-foo", {"value": 7})
        assert (bad.status, bad.body["reason"]) == (
            400,
            'Validation failed\n\nUnrecognised terms [{<<"max-foo">>,7}] in limits\n',
        )
        assert api.put("/api/vhost-limits/shop/max-queues", {}).body == {
            "error": "bad_request",
            "reason": "[{key_missing,value}]",
        }
        assert api.put("/api/vhost-limits/nope/max-queues", {"value": 1}).body == {
            "error": "not_found",
            "reason": "vhost_not_found",
        }
        assert api.call("DELETE", "/api/vhost-limits/shop/max-queues").status == 204
        assert api.get("/api/vhost-limits") == [{"vhost": "shop", "value": {"max-connections": 3}}]

        assert api.put("/api/user-limits/ann/max-channels", {"value": 4}).status == 204
        assert api.put("/api/user-limits/ann/max-connections", {"value": 5}).status == 204
        assert api.get("/api/user-limits/ann") == [
            {"user": "ann", "value": {"max-channels": 4, "max-connections": 5}}
        ]
        assert api.get("/api/user-limits/guest") == []
        assert api.call("GET", "/api/user-limits/nope").status == 404
        assert api.put("/api/user-limits/nope/max-channels", {"value": 1}).body == {
            "error": "bad_request",
            "reason": ["no_such_user", "nope"],
        }
        wrong = api.put("/api/user-limits/ann/max-queues", {"value": 5})
        assert wrong.body["reason"] == 'Unrecognised terms [{<<"max-queues">>,5}] in user-limits'
        assert api.call("DELETE", "/api/user-limits/ann/max-connections").status == 204
        assert api.get("/api/user-limits") == [{"user": "ann", "value": {"max-channels": 4}}]

        # Any management user reads them (of its own vhosts); only an administrator sets them.
        ann = api.as_user("ann", "ann-secret")
        assert ann.get("/api/vhost-limits") == [{"vhost": "shop", "value": {"max-connections": 3}}]
        assert ann.put("/api/vhost-limits/shop/max-queues", {"value": 1}).status == 401
        assert ann.call("DELETE", "/api/user-limits/ann/max-channels").status == 401


def test_definitions_carry_the_limits_both_ways() -> None:
    with run_in_thread(vhosts=("/", "shop"), management=True) as broker:
        assert broker.management_url is not None
        api = Api(broker.management_url)
        broker.admin.add_user("ann", "pw")
        broker.admin.set_vhost_limits("shop", {"max-queues": 2})
        broker.admin.set_user_limits("ann", {"max-channels": 9})
        exported = api.get("/api/definitions")
        assert [v["limits"] for v in exported["vhosts"]] == [[], [["max-queues", 2]]]
        assert exported["parameters"] == [
            {
                "value": {"max-queues": 2},
                "vhost": "shop",
                "component": "vhost-limits",
                "name": "limits",
            }
        ]
        assert [u["limits"] for u in exported["users"] if u["name"] == "ann"] == [
            {"max-channels": 9}
        ]
        # More new queues than a vhost's limit lets in: refused whole, with RabbitMQ's reasons.
        queues = [
            {"name": f"q{n}", "vhost": "shop", "durable": True, "auto_delete": False}
            for n in range(3)
        ]
        refused = api.post("/api/definitions", {"vhosts": [{"name": "shop"}], "queues": queues})
        assert refused.status == 400
        assert refused.body["reason"].endswith(
            'Adding 3 queue(s) to virtual host "shop" would exceed the limit of 2 queue(s). '
            "This virtual host currently has 0 queue(s) defined. Import aborted!"
        )
        assert broker.admin.queues("shop") == []
        # A file's own limits are set after its queues, as RabbitMQ's import sets them.
        exported["queues"] = queues
        exported["parameters"][0]["value"] = {"max-queues": 1}
        broker.admin.clear_vhost_limits("shop")
        assert api.post("/api/definitions", exported).status == 204
        assert len(broker.admin.queues("shop")) == 3
        assert broker.admin.vhost_limits() == {"shop": {"max-queues": 1}}
