"""The admin surface (`broker.admin`) against a live broker, with pika as the client.

The texts clients see (closing a deleted user's connections, forced closes) are RabbitMQ
3.10.8's.
"""

from __future__ import annotations

import threading

import pika
import pytest
from pika.exceptions import (
    ChannelClosedByBroker,
    ConnectionClosedByBroker,
    ProbableAccessDeniedError,
    ProbableAuthenticationError,
)

from amqp_lite import ThreadedBroker, run_in_thread
from vhosts.errors import NotFound


def _connect(
    broker: ThreadedBroker, user: str = "guest", password: str = "guest", vhost: str = "/"
):
    url = broker.vhost_url(vhost).replace("guest:guest", f"{user}:{password}")
    return pika.BlockingConnection(pika.URLParameters(url))


def test_queues_are_listed_with_their_counts(broker: ThreadedBroker) -> None:
    connection = _connect(broker)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("work", durable=True)
    channel.queue_declare("idle", arguments={"x-max-length": 10})
    for n in range(5):
        channel.basic_publish("", "work", b"x" * (n + 1))
    channel.basic_qos(prefetch_count=2)
    channel.basic_consume("work", lambda *args: None)
    connection.process_data_events(0.2)  # two deliveries, unacked
    getter = connection.channel()
    method, _, _ = getter.basic_get("work")  # one more, unacked too
    assert method is not None

    queues = {q.name: q for q in broker.admin.queues("/")}
    assert list(queues) == ["idle", "work"]
    work = queues["work"]
    assert (work.messages_ready, work.messages_unacknowledged, work.consumers) == (2, 3, 1)
    assert work.messages == 5 and work.durable and not work.exclusive
    assert work.message_bytes_ready == 4 + 5
    assert queues["idle"].arguments == {"x-max-length": 10}

    getter.basic_ack(method.delivery_tag)
    getter.close()
    assert broker.admin.queue("/", "work").messages_unacknowledged == 2
    connection.close()  # the consumer's two come back
    work = broker.admin.queue("/", "work")
    assert (work.messages_ready, work.messages_unacknowledged, work.consumers) == (4, 0, 0)
    [vhost] = [v for v in broker.admin.vhosts() if v.name == "/"]
    assert (vhost.queues, vhost.messages_ready, vhost.messages_unacknowledged) == (2, 4, 0)


def test_exchanges_and_bindings_are_listed_as_rabbitmq_lists_them(broker: ThreadedBroker) -> None:
    connection = _connect(broker, vhost="other")
    channel = connection.channel()
    channel.exchange_declare("orders", "topic", durable=True)
    channel.exchange_declare("audit", "fanout")
    channel.queue_declare("q")
    channel.queue_bind("q", "orders", "order.#")
    channel.exchange_bind("audit", "orders", "#")
    connection.close()

    names = [e.name for e in broker.admin.exchanges("other")]
    standard = [
        "",
        "amq.direct",
        "amq.fanout",
        "amq.headers",
        "amq.match",
        "amq.rabbitmq.trace",  # the firehose tracer's, in every vhost as in RabbitMQ
        "amq.topic",
    ]
    assert names == sorted([*standard, "audit", "orders"])
    orders = next(e for e in broker.admin.exchanges("other") if e.name == "orders")
    assert (orders.type, orders.durable, orders.auto_delete, orders.internal) == (
        "topic",
        True,
        False,
        False,
    )
    bindings = [
        (b.source, b.destination, b.destination_type, b.routing_key)
        for b in broker.admin.bindings("other")
    ]
    assert bindings == [
        ("", "q", "queue", "q"),  # the default exchange's implicit binding comes first
        ("orders", "audit", "exchange", "#"),
        ("orders", "q", "queue", "order.#"),
    ]


def test_purge_and_delete_a_queue_whoever_declared_it(broker: ThreadedBroker) -> None:
    connection = _connect(broker)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("mine", exclusive=True)
    channel.basic_publish("", "mine", b"1")
    channel.basic_publish("", "mine", b"2")
    cancelled = threading.Event()
    channel.add_on_cancel_callback(lambda frame: cancelled.set())
    channel.basic_consume("mine", lambda *args: None, auto_ack=True)
    channel.queue_declare("full")
    channel.basic_publish("", "full", b"3")

    assert broker.admin.purge_queue("/", "full") == 1
    channel.basic_consume("full", lambda *args: None)
    with pytest.raises(ValueError, match="queue 'full' in vhost '/' in use"):
        broker.admin.delete_queue("/", "full", if_unused=True)
    broker.admin.delete_queue("/", "mine")
    for _ in range(50):  # the two deliveries come first
        if cancelled.is_set():
            break
        connection.process_data_events(0.1)
    assert cancelled.is_set()  # the consumer heard basic.cancel
    assert [q.name for q in broker.admin.queues("/")] == ["full"]
    with pytest.raises(NotFound):
        broker.admin.purge_queue("/", "mine")
    connection.close()


def test_connections_channels_and_consumers_are_listed(broker: ThreadedBroker) -> None:
    params = pika.URLParameters(broker.url)
    params.client_properties = {"connection_name": "lister"}
    connection = pika.BlockingConnection(params)
    first = connection.channel()
    second = connection.channel()
    second.confirm_delivery()
    second.basic_qos(prefetch_count=7)
    second.queue_declare("q")
    second.basic_consume("q", lambda *args: None, consumer_tag="ctag", arguments={"x-priority": 3})

    [info] = broker.admin.connections()
    local_port = connection._impl._transport._sock.getsockname()[1]
    assert info.name == f"127.0.0.1:{local_port} -> 127.0.0.1:{broker.port}"
    assert (info.peer_host, info.peer_port, info.port) == ("127.0.0.1", local_port, broker.port)
    assert (info.user, info.vhost, info.state, info.channels) == ("guest", "/", "running", 2)
    assert info.client_properties["connection_name"] == "lister"
    assert info.auth_mechanism == "PLAIN"

    channels = broker.admin.channels()
    assert [c.name for c in channels] == [f"{info.name} (1)", f"{info.name} (2)"]
    assert channels[1].confirm and not channels[0].confirm
    assert (channels[1].consumers, channels[1].prefetch_count) == (1, 7)

    [consumer] = broker.admin.consumers()
    assert (consumer.queue, consumer.consumer_tag, consumer.channel) == (
        "q",
        "ctag",
        channels[1].name,
    )
    assert (consumer.ack_required, consumer.prefetch_count, consumer.arguments) == (
        True,
        7,
        {"x-priority": 3},
    )
    assert broker.admin.consumers("other") == []
    del first
    connection.close()
    assert broker.admin.connections() == []


def test_closing_a_connection_sends_320_with_the_reason(broker: ThreadedBroker) -> None:
    connection = _connect(broker)
    other = _connect(broker)
    [target, _] = broker.admin.connections()
    assert broker.admin.close_connection(target.name, "go away")
    assert not broker.admin.close_connection("127.0.0.1:1 -> 127.0.0.1:2")
    with pytest.raises(ConnectionClosedByBroker) as closed:
        connection.channel()
    assert (closed.value.reply_code, closed.value.reply_text) == (
        320,
        "CONNECTION_FORCED - go away",
    )
    other.channel().queue_declare("still-fine")  # the other connection never noticed
    other.close()


def test_users_and_permissions(broker: ThreadedBroker) -> None:
    admin = broker.admin
    admin.add_user("ann", "secret", tags=["monitoring"])
    with pytest.raises(ProbableAccessDeniedError, match="530"):
        _connect(broker, "ann", "secret")  # no permissions anywhere yet
    admin.set_permissions("ann", "/", configure="^ann\\.", write=".*", read=".*")
    connection = _connect(broker, "ann", "secret")
    channel = connection.channel()
    channel.queue_declare("ann.q")
    with pytest.raises(ChannelClosedByBroker) as denied:
        channel.queue_declare("bob.q")
    assert denied.value.reply_code == 403
    assert [(p.user, p.vhost, p.configure) for p in admin.permissions(user="ann")] == [
        ("ann", "/", "^ann\\.")
    ]
    assert [(u.name, u.tags) for u in admin.users()] == [
        ("ann", ("monitoring",)),
        ("guest", ("administrator",)),
    ]

    admin.change_password("ann", "changed")
    with pytest.raises(ProbableAuthenticationError):
        _connect(broker, "ann", "secret")
    admin.clear_password("ann")
    with pytest.raises(ProbableAuthenticationError):
        _connect(broker, "ann", "changed")

    # As RabbitMQ: deleting a user closes its connections.
    assert admin.delete_user("ann")
    with pytest.raises(ConnectionClosedByBroker) as closed:
        connection.channel()
    assert (closed.value.reply_code, closed.value.reply_text) == (
        320,
        "CONNECTION_FORCED - user 'ann' is deleted",
    )
    assert not admin.delete_user("ann")
    with pytest.raises(NotFound):
        admin.set_permissions("ann", "/")
    with pytest.raises(NotFound):
        admin.set_permissions("guest", "nowhere")


def test_policies_through_the_admin_surface(broker: ThreadedBroker) -> None:
    broker.admin.set_policy("/", "cap", "^capped$", {"max-length": 1}, apply_to="queues")
    connection = _connect(broker)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("capped")
    channel.basic_publish("", "capped", b"old")
    channel.basic_publish("", "capped", b"new")
    [queue] = broker.admin.queues("/")
    assert queue.messages_ready == 1 and queue.policy is not None and queue.policy.name == "cap"
    assert [p.name for p in broker.admin.policies("/")] == ["cap"]
    assert broker.admin.clear_policy("/", "cap")
    assert broker.admin.policies() == []
    connection.close()  # an open one would hold up the broker's shutdown for its close-ok


def test_connection_and_channel_events_reach_every_listener(broker: ThreadedBroker) -> None:
    heard: list[tuple[str, str]] = []
    events = broker.node.events
    for event in (
        events.connection_created,
        events.connection_closed,
        events.channel_created,
        events.channel_closed,
    ):
        for listener in ("metrics", "management"):
            broker.call(
                event.subscribe, lambda thing, e=event.name, who=listener: heard.append((e, who))
            )
    connection = _connect(broker)
    connection.channel().close()
    connection.channel()
    connection.close()
    assert [e for e, who in heard if who == "metrics"] == [
        "connection_created",
        "channel_created",
        "channel_closed",
        "channel_created",
        "channel_closed",
        "connection_closed",
    ]
    assert [e for e, who in heard if who == "management"] == [
        e for e, who in heard if who == "metrics"
    ]


def test_removed_users_and_permissions_stay_removed_after_a_restart(tmp_path) -> None:
    with run_in_thread(data_dir=tmp_path) as broker:
        broker.admin.add_user("ann", "secret")
        broker.admin.add_user("bob", "secret")
        broker.admin.set_permissions("ann", "/")
        broker.admin.set_permissions("bob", "/")
        broker.admin.clear_permissions("ann", "/")
        broker.admin.delete_user("bob")
    with run_in_thread(data_dir=tmp_path) as broker:
        assert [u.name for u in broker.admin.users()] == ["ann", "guest"]
        assert [p.user for p in broker.admin.permissions(vhost="/")] == ["guest"]
