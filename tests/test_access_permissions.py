"""Permissions as RabbitMQ 3.10.8 checks them: which name each method is checked against, and in
what order the checks come, so that a refused client hears the same code and text.

RabbitMQ checks the default exchange as `amq.default`, a server-named queue by the name it is
given, an empty queue name (and an empty routing key beside it) as the channel's last declared
queue, the dead-letter and alternate exchanges a declare names, and refuses a permission before
looking the resource up. Every expectation below was observed on RabbitMQ 3.10.8.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from amqp_lite.wire import methods
from tests.rawclient import connected

USER = "limited"


def _refused(resource: str) -> str:
    return f"ACCESS_REFUSED - access to {resource} in vhost '/' refused for user '{USER}'"


DEFAULT_EXCHANGE_REFUSED = _refused("exchange 'amq.default'")
NOT_ON_DEFAULT = "ACCESS_REFUSED - operation not permitted on the default exchange"


@pytest.fixture
def limited(broker) -> Callable[..., pika.adapters.blocking_connection.BlockingChannel]:
    """Connects as a user with the given permissions in '/' (guest set up 'x', 'q' and 't')."""
    admin = broker.admin
    admin.add_user(USER, "secret")
    setup = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = setup.channel()
    channel.exchange_declare("x", "direct")
    channel.exchange_declare("t", "topic")
    channel.queue_declare("q")
    setup.close()
    opened: list[pika.BlockingConnection] = []

    def connect(configure: str = ".*", write: str = ".*", read: str = ".*"):
        admin.set_permissions(USER, "/", configure, write, read)
        url = broker.url.replace("guest:guest", f"{USER}:secret")
        connection = pika.BlockingConnection(pika.URLParameters(url))
        opened.append(connection)
        return connection.channel()

    yield connect
    for connection in opened:
        if connection.is_open:
            connection.close()


def _outcome(action: Callable[[], Any]) -> tuple[int, str] | str:
    try:
        action()
    except ChannelClosedByBroker as closed:
        return closed.reply_code, closed.reply_text
    except ConnectionClosedByBroker as closed:
        return closed.reply_code, closed.reply_text
    return "ok"


def _publish(channel, exchange: str, routing_key: str = "k") -> None:
    channel.confirm_delivery()
    channel.basic_publish(exchange, routing_key, b"x")


# -- the default exchange is amq.default ---------------------------------------------------------


def test_publishing_to_the_default_exchange_needs_write_on_amq_default(limited) -> None:
    channel = limited(write="^$")
    assert _outcome(lambda: _publish(channel, "")) == (403, DEFAULT_EXCHANGE_REFUSED)


def test_write_on_amq_default_is_enough_to_publish_to_the_default_exchange(limited) -> None:
    channel = limited(write=r"^amq\.default$")
    assert _outcome(lambda: _publish(channel, "", "q")) == "ok"


def test_write_is_refused_before_the_exchange_is_looked_up(limited) -> None:
    channel = limited(write="^$")
    assert _outcome(lambda: _publish(channel, "nope")) == (403, _refused("exchange 'nope'"))


def test_a_dead_letter_exchange_named_empty_is_amq_default(limited) -> None:
    channel = limited(write="^$")
    declare = lambda: channel.queue_declare("dq", arguments={"x-dead-letter-exchange": ""})  # noqa: E731
    assert _outcome(declare) == (403, DEFAULT_EXCHANGE_REFUSED)


def test_a_dead_letter_exchange_is_checked_only_for_a_new_queue(limited) -> None:
    channel = limited(write="^$")
    declare = lambda: channel.queue_declare("q", arguments={"x-dead-letter-exchange": ""})  # noqa: E731
    assert _outcome(declare) == (
        406,
        "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue 'q' in "
        "vhost '/': received the value '' of type 'longstr' but current is none",
    )


def test_a_dead_letter_exchange_needs_read_on_the_queue(limited) -> None:
    channel = limited(read="^$")
    declare = lambda: channel.queue_declare("dq", arguments={"x-dead-letter-exchange": "x"})  # noqa: E731
    assert _outcome(declare) == (403, _refused("queue 'dq'"))


def test_an_alternate_exchange_named_empty_is_amq_default(limited) -> None:
    channel = limited(write="^$")
    declare = lambda: channel.exchange_declare(  # noqa: E731
        "ae", "direct", arguments={"alternate-exchange": ""}
    )
    assert _outcome(declare) == (403, DEFAULT_EXCHANGE_REFUSED)


def test_binding_to_the_default_exchange_is_refused_after_write_on_it(limited) -> None:
    channel = limited(write="^$")
    assert _outcome(lambda: channel.exchange_bind("", "x")) == (403, DEFAULT_EXCHANGE_REFUSED)


@pytest.mark.parametrize(
    "bind",
    [
        pytest.param(lambda channel: channel.exchange_bind("x", ""), id="exchange.bind-source"),
        pytest.param(lambda channel: channel.queue_bind("q", ""), id="queue.bind"),
    ],
)
def test_binding_from_the_default_exchange_is_refused_before_read_on_it(limited, bind) -> None:
    channel = limited(read="^$")
    assert _outcome(lambda: bind(channel)) == (403, NOT_ON_DEFAULT)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda channel: channel.exchange_delete(""), id="delete"),
        pytest.param(lambda channel: channel.exchange_declare("", "direct"), id="declare"),
    ],
)
def test_the_default_exchange_is_refused_before_configure(limited, change) -> None:
    channel = limited(configure="^$")
    assert _outcome(lambda: change(channel)) == (403, NOT_ON_DEFAULT)


# -- server-named queues and reserved names ------------------------------------------------


def test_a_server_named_queue_is_checked_by_the_name_it_gets(limited) -> None:
    outcome = _outcome(lambda: limited(configure=r"^amq\.gen$").queue_declare("", exclusive=True))
    assert isinstance(outcome, tuple) and outcome[0] == 403
    assert outcome[1].startswith("ACCESS_REFUSED - access to queue 'amq.gen-")
    declared = limited(configure=r"^amq\.gen-").queue_declare("", exclusive=True)
    assert declared.method.queue.startswith("amq.gen-")


def test_a_reserved_queue_name_is_refused_before_configure(limited) -> None:
    channel = limited(configure="^$")
    assert _outcome(lambda: channel.queue_declare("amq.x")) == (
        403,
        "ACCESS_REFUSED - queue name 'amq.x' contains reserved prefix 'amq.*'",
    )


def test_a_reserved_exchange_name_is_refused_after_configure(limited) -> None:
    channel = limited(configure="^$")
    assert _outcome(lambda: channel.exchange_declare("amq.x", "direct")) == (
        403,
        _refused("exchange 'amq.x'"),
    )


def test_a_system_exchange_deletion_is_refused_before_configure(limited) -> None:
    channel = limited(configure="^$")
    assert _outcome(lambda: channel.exchange_delete("amq.direct")) == (
        403,
        "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed",
    )


def test_an_unknown_exchange_type_is_refused_before_configure(limited) -> None:
    channel = limited(configure="^$")
    assert _outcome(lambda: channel.exchange_declare("z", "nonsense")) == (
        503,
        "COMMAND_INVALID - unknown exchange type 'nonsense'",
    )


# -- refused before looking: a missing queue is 403, not 404 ---------------------------------------


@pytest.mark.parametrize(
    ("permissions", "action", "resource"),
    [
        ({"read": "^$"}, lambda channel: channel.basic_get("missing"), "queue 'missing'"),
        ({"read": "^$"}, lambda channel: channel.queue_purge("missing"), "queue 'missing'"),
        (
            {"read": "^$"},
            lambda channel: channel.basic_consume("missing", lambda *a: None),
            "queue 'missing'",
        ),
        ({"configure": "^$"}, lambda channel: channel.queue_delete("missing"), "queue 'missing'"),
    ],
    ids=["basic.get", "queue.purge", "basic.consume", "queue.delete"],
)
def test_permission_is_refused_before_the_queue_is_looked_up(
    limited, permissions: dict[str, str], action, resource: str
) -> None:
    channel = limited(**permissions)
    assert _outcome(lambda: action(channel)) == (403, _refused(resource))


# -- the empty queue name: the channel's last declared queue ---------------------------------------


def test_an_empty_queue_name_is_the_last_queue_this_channel_declared(broker) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    declaring, other = connection.channel(), connection.channel()
    declaring.queue_declare("mine")
    declaring.exchange_declare("topics", "topic")
    declaring.queue_bind("", "topics")  # pika sends the routing key "" too: it means "mine"
    declaring.confirm_delivery()
    declaring.basic_publish("topics", "mine", b"routed by the queue's name")
    assert declaring.basic_get("", auto_ack=True)[2] == b"routed by the queue's name"
    with pytest.raises(ChannelClosedByBroker) as caught:
        other.queue_purge("")
    assert (caught.value.reply_code, caught.value.reply_text) == (
        404,
        "NOT_FOUND - no previously declared queue",
    )
    connection.close()


def test_an_empty_queue_name_without_a_declared_queue_is_404_before_permissions(limited) -> None:
    channel = limited(read="^$")
    assert _outcome(lambda: channel.basic_get("")) == (
        404,
        "NOT_FOUND - no previously declared queue",
    )


# -- CR and LF are dropped from names where RabbitMQ drops them ------------------------------


async def test_cr_and_lf_are_dropped_from_declared_deleted_and_bound_names(server) -> None:
    async with await connected(server.port) as client:
        assert (await client.declare_queue(1, "a\r\nb")).queue == "ab"
        await client.send_method(1, methods.ExchangeDeclare(exchange="e\n1", type="direct"))
        await client.expect(methods.ExchangeDeclareOk, 1)
        await client.send_method(1, methods.ExchangeDeclare(exchange="e1", passive=True))
        await client.expect(methods.ExchangeDeclareOk, 1)
        bind = methods.QueueBind(queue="a\nb", exchange="e\r1", routing_key="k")
        await client.send_method(1, bind)
        await client.expect(methods.QueueBindOk, 1)
        # purge and get take the name as it comes
        await client.send_method(1, methods.QueuePurge(queue="a\nb"))
        close = await client.expect(methods.ChannelClose, 1)
        assert close.reply_text == "NOT_FOUND - no queue 'a\nb' in vhost '/'"
        await client.send_method(1, methods.ChannelCloseOk())
        await client.open_channel(2)
        await client.send_method(2, methods.QueueDelete(queue="a\nb"))
        await client.expect(methods.QueueDeleteOk, 2)
        await client.send_method(2, methods.ExchangeDelete(exchange="e\n1"))
        await client.expect(methods.ExchangeDeleteOk, 2)
        assert "ab" not in server.node.vhosts["/"].queues
        assert "e1" not in server.node.vhosts["/"].exchanges
        await client.close()
