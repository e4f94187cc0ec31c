"""Exchanges over the wire with pika: the standard ones, each type's routing, declare/delete
rules, internal and auto-delete exchanges, and exchange-to-exchange bindings.

Reply codes and texts are the ones RabbitMQ 3.10 sends for the same operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

DEFAULT_EXCHANGE_REFUSED = "ACCESS_REFUSED - operation not permitted on the default exchange"
STANDARD_EXCHANGES = {
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}


def channel_error(call: Callable[[], Any]) -> ChannelClosedByBroker:
    with pytest.raises(ChannelClosedByBroker) as caught:
        call()
    return caught.value


def private_queue(channel: BlockingChannel) -> str:
    return channel.queue_declare("", exclusive=True).method.queue


def drain(channel: BlockingChannel, queue: str) -> list[bytes]:
    """Every ready body in `queue`, taken with basic.get (synchronous: nothing is in flight)."""
    bodies = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)


def exchange_exists(connection: pika.BlockingConnection, name: str) -> bool:
    probe = connection.channel()  # a failed passive declare closes the channel it ran on
    try:
        probe.exchange_declare(name, passive=True)
    except ChannelClosedByBroker as error:
        assert error.reply_code == 404
        return False
    probe.close()
    return True


# -- the default exchange ------------------------------------------------------------------------


def test_default_exchange_routes_by_queue_name(channel) -> None:
    channel.queue_declare("inbox")
    channel.basic_publish("", "inbox", b"by name")
    channel.basic_publish("", "nobody-home", b"dropped")
    assert drain(channel, "inbox") == [b"by name"]


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda ch: ch.exchange_declare("", "direct"), id="declare"),
        pytest.param(lambda ch: ch.exchange_declare("", passive=True), id="declare-passive"),
        pytest.param(lambda ch: ch.exchange_delete(""), id="delete"),
        pytest.param(lambda ch: ch.queue_bind(private_queue(ch), "", "key"), id="queue-bind"),
        pytest.param(lambda ch: ch.queue_unbind(private_queue(ch), "", "key"), id="queue-unbind"),
        pytest.param(lambda ch: ch.exchange_bind("amq.fanout", "", "key"), id="as-e2e-source"),
        pytest.param(lambda ch: ch.exchange_bind("", "amq.fanout", "key"), id="as-e2e-destination"),
        pytest.param(lambda ch: ch.exchange_unbind("", "amq.fanout", "k"), id="e2e-unbind-dest"),
    ],
)
def test_default_exchange_cannot_be_declared_deleted_or_bound(
    channel, operation: Callable[[BlockingChannel], Any]
) -> None:
    error = channel_error(lambda: operation(channel))
    assert (error.reply_code, error.reply_text) == (403, DEFAULT_EXCHANGE_REFUSED)


def test_default_exchange_refusal_comes_before_looking_up_the_other_exchange(channel) -> None:
    error = channel_error(lambda: channel.exchange_bind("", "no-such-source"))
    assert (error.reply_code, error.reply_text) == (403, DEFAULT_EXCHANGE_REFUSED)


# -- the amq.* exchanges -------------------------------------------------------------------------


@pytest.mark.parametrize("vhost", ["/", "other"])
def test_standard_exchanges_exist_in_every_vhost(broker, vhost: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.vhost_url(vhost)))
    try:
        channel = connection.channel()
        for name in STANDARD_EXCHANGES:
            channel.exchange_declare(name, passive=True)
    finally:
        connection.close()


@pytest.mark.parametrize("name", sorted(STANDARD_EXCHANGES))
def test_standard_exchange_redeclared_with_its_own_properties_is_fine(channel, name: str) -> None:
    channel.exchange_declare(name, STANDARD_EXCHANGES[name], durable=True)


def test_standard_exchange_redeclared_differently_is_406(channel) -> None:
    error = channel_error(lambda: channel.exchange_declare("amq.direct", "direct", durable=False))
    assert error.reply_code == 406
    assert error.reply_text == (
        "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'amq.direct' "
        "in vhost '/': received 'false' but current is 'true'"
    )


def test_new_exchange_with_amq_prefix_is_403(channel) -> None:
    error = channel_error(lambda: channel.exchange_declare("amq.mine", "direct"))
    assert error.reply_code == 403
    assert error.reply_text == (
        "ACCESS_REFUSED - exchange name 'amq.mine' contains reserved prefix 'amq.*'"
    )


@pytest.mark.parametrize("name", ["amq.fanout", "amq.never-declared"])
def test_deleting_any_amq_exchange_is_403(channel, name: str) -> None:
    error = channel_error(lambda: channel.exchange_delete(name))
    assert error.reply_code == 403
    assert error.reply_text == (
        f"ACCESS_REFUSED - deletion of system exchange '{name}' in vhost '/' not allowed"
    )


# -- routing by type, end to end -----------------------------------------------------------------


def test_direct_exchange_routes_on_exact_key(channel) -> None:
    channel.exchange_declare("orders", "direct")
    paid, shipped = private_queue(channel), private_queue(channel)
    channel.queue_bind(paid, "orders", "paid")
    channel.queue_bind(shipped, "orders", "shipped")
    channel.basic_publish("orders", "paid", b"p")
    channel.basic_publish("orders", "shipped", b"s")
    channel.basic_publish("orders", "paid.late", b"neither")
    assert drain(channel, paid) == [b"p"]
    assert drain(channel, shipped) == [b"s"]


def test_fanout_exchange_ignores_the_key_and_copies_to_every_queue(channel) -> None:
    channel.exchange_declare("news", "fanout")
    queues = [private_queue(channel) for _ in range(3)]
    for queue in queues:
        channel.queue_bind(queue, "news", "whatever")
    channel.basic_publish("news", "any.key", b"extra")
    assert [drain(channel, queue) for queue in queues] == [[b"extra"]] * 3


@pytest.mark.parametrize(
    ("routing_key", "matching"),
    [
        ("a.b.c", ["a.*.c", "a.#", "#", "a.#.c"]),
        ("a", ["a.#", "#"]),
        ("a.c", ["a.#", "#", "a.#.c"]),
        ("x.b", ["#", "*.b"]),
        ("a.x.y.c", ["a.#", "#", "a.#.c"]),
        ("", ["#"]),
    ],
)
def test_topic_exchange_star_is_one_word_and_hash_is_zero_or_more(
    channel, routing_key: str, matching: list[str]
) -> None:
    patterns = ["a.*.c", "a.#", "#", "*.b", "a.#.c"]
    queues = {}
    for pattern in patterns:
        queues[pattern] = private_queue(channel)
        channel.queue_bind(queues[pattern], "amq.topic", pattern)
    channel.basic_publish("amq.topic", routing_key, b"m")
    assert [pattern for pattern in patterns if drain(channel, queues[pattern])] == matching


@pytest.mark.parametrize(
    ("headers", "reaches_all", "reaches_any"),
    [
        ({"a": 1, "b": "2"}, True, True),
        ({"a": 1}, False, True),
        ({"c": 1}, False, False),
        ({"a": 1, "b": "2", "x-tag": "different"}, True, True),
    ],
)
def test_headers_exchange_matches_all_or_any_and_ignores_x_keys(
    channel, headers: dict[str, Any], reaches_all: bool, reaches_any: bool
) -> None:
    match_all, match_any = private_queue(channel), private_queue(channel)
    # The x-tag binding argument must not take part in matching.
    channel.queue_bind(
        match_all, "amq.headers", arguments={"x-match": "all", "a": 1, "b": "2", "x-tag": "t"}
    )
    channel.queue_bind(match_any, "amq.headers", arguments={"x-match": "any", "a": 1, "b": "2"})
    channel.basic_publish("amq.headers", "", b"m", pika.BasicProperties(headers=headers))
    assert bool(drain(channel, match_all)) is reaches_all
    assert bool(drain(channel, match_any)) is reaches_any


# -- declare and delete --------------------------------------------------------------------------


def test_passive_declare_of_missing_exchange_is_404(channel) -> None:
    error = channel_error(lambda: channel.exchange_declare("absent", passive=True))
    assert error.reply_code == 404
    assert error.reply_text == "NOT_FOUND - no exchange 'absent' in vhost '/'"


def test_passive_declare_ignores_type_and_flags(channel) -> None:
    channel.exchange_declare("amq.direct", "no-such-type", passive=True, durable=False)


@pytest.mark.parametrize(
    ("changed", "received", "current"),
    [
        ({"exchange_type": "fanout"}, "fanout", "direct"),
        ({"durable": True}, "true", "false"),
        ({"auto_delete": True}, "true", "false"),
        ({"internal": True}, "true", "false"),
    ],
)
def test_redeclare_with_other_type_or_flag_is_406(
    channel, changed: dict[str, Any], received: str, current: str
) -> None:
    channel.exchange_declare("ex", "direct")
    declare = {"exchange_type": "direct", **changed}
    error = channel_error(lambda: channel.exchange_declare("ex", **declare))
    argument = "type" if "exchange_type" in changed else next(iter(changed))
    assert error.reply_code == 406
    assert error.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg '{argument}' for exchange 'ex' in vhost '/': "
        f"received '{received}' but current is '{current}'"
    )


def test_redeclare_with_other_arguments_is_fine_except_alternate_exchange(channel) -> None:
    channel.exchange_declare("ex", "direct", arguments={"alternate-exchange": "ae", "x-a": 1})
    channel.exchange_declare("ex", "direct", arguments={"alternate-exchange": "ae", "x-a": 2})
    error = channel_error(
        lambda: channel.exchange_declare("ex", "direct", arguments={"alternate-exchange": "b"})
    )
    assert error.reply_code == 406
    assert error.reply_text == (
        "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'ex' "
        "in vhost '/': received 'b' but current is 'ae'"
    )


def test_unknown_exchange_type_closes_the_connection_with_503(connection, channel) -> None:
    with pytest.raises(ConnectionClosedByBroker) as caught:
        channel.exchange_declare("ex", "no-such-type")
    assert caught.value.reply_code == 503
    assert caught.value.reply_text == "COMMAND_INVALID - unknown exchange type 'no-such-type'"
    assert connection.is_closed


def test_delete_if_unused_refuses_an_exchange_with_bindings(connection, channel) -> None:
    channel.exchange_declare("ex", "direct")
    channel.queue_bind(private_queue(channel), "ex", "key")
    error = channel_error(lambda: channel.exchange_delete("ex", if_unused=True))
    assert error.reply_code == 406
    assert error.reply_text == "PRECONDITION_FAILED - exchange 'ex' in vhost '/' in use"
    assert exchange_exists(connection, "ex")


def test_delete_if_unused_counts_only_bindings_from_the_exchange(connection, channel) -> None:
    channel.exchange_declare("downstream", "fanout")
    channel.exchange_bind("downstream", "amq.fanout")  # downstream is only a destination
    channel.exchange_delete("downstream", if_unused=True)
    assert not exchange_exists(connection, "downstream")


def test_delete_without_if_unused_drops_the_exchange_and_its_bindings(connection, channel) -> None:
    channel.exchange_declare("ex", "fanout")
    queue = private_queue(channel)
    channel.queue_bind(queue, "ex")
    channel.exchange_delete("ex")
    assert not exchange_exists(connection, "ex")
    channel.exchange_declare("ex", "fanout")  # a new exchange of that name: no old bindings
    channel.basic_publish("ex", "", b"m")
    assert drain(channel, queue) == []


def test_deleting_a_missing_exchange_is_ok(channel) -> None:
    channel.exchange_delete("never-declared")
    assert channel.is_open


# -- internal exchanges --------------------------------------------------------------------------


def test_publishing_to_an_internal_exchange_is_403(channel) -> None:
    channel.exchange_declare("inside", "fanout", internal=True)
    channel.basic_publish("inside", "", b"m")
    # basic.publish has no reply: the next synchronous method meets the channel.close.
    error = channel_error(lambda: channel.queue_declare("", exclusive=True))
    assert error.reply_code == 403
    assert error.reply_text == (
        "ACCESS_REFUSED - cannot publish to internal exchange 'inside' in vhost '/'"
    )


def test_internal_exchange_works_as_destination_of_an_exchange_binding(channel) -> None:
    channel.exchange_declare("inside", "fanout", internal=True)
    channel.exchange_bind("inside", "amq.fanout")
    queue = private_queue(channel)
    channel.queue_bind(queue, "inside")
    channel.basic_publish("amq.fanout", "rk", b"via inside")
    method, _properties, body = channel.basic_get(queue, auto_ack=True)
    assert body == b"via inside"
    assert (method.exchange, method.routing_key) == ("amq.fanout", "rk")


# -- exchange-to-exchange bindings ---------------------------------------------------------------


def test_exchange_binding_forwards_with_the_original_routing_key(channel) -> None:
    channel.exchange_declare("front", "direct")
    channel.exchange_declare("back", "topic")
    channel.exchange_bind("back", "front", "k.x")
    queue = private_queue(channel)
    channel.queue_bind(queue, "back", "k.*")
    channel.basic_publish("front", "k.x", b"forwarded")
    channel.basic_publish("front", "k.y", b"front has no binding for k.y")
    method, _properties, body = channel.basic_get(queue, auto_ack=True)
    assert (body, method.exchange, method.routing_key) == (b"forwarded", "front", "k.x")
    assert drain(channel, queue) == []


def test_exchange_unbind_stops_forwarding(channel) -> None:
    channel.exchange_declare("front", "fanout")
    channel.exchange_declare("back", "fanout")
    channel.exchange_bind("back", "front")
    queue = private_queue(channel)
    channel.queue_bind(queue, "back")
    channel.exchange_unbind("back", "front")
    channel.basic_publish("front", "", b"m")
    assert drain(channel, queue) == []


def test_queue_reached_by_two_paths_gets_one_copy(channel) -> None:
    channel.exchange_declare("front", "fanout")
    channel.exchange_declare("back", "fanout")
    channel.exchange_bind("back", "front")
    queue = private_queue(channel)
    channel.queue_bind(queue, "front")
    channel.queue_bind(queue, "back")
    channel.basic_publish("front", "", b"once")
    assert drain(channel, queue) == [b"once"]


def test_cycle_of_exchange_bindings_does_not_loop(channel) -> None:
    channel.exchange_declare("ping", "fanout")
    channel.exchange_declare("pong", "fanout")
    channel.exchange_bind("pong", "ping")
    channel.exchange_bind("ping", "pong")
    queue = private_queue(channel)
    channel.queue_bind(queue, "pong")
    channel.basic_publish("ping", "", b"once")
    assert drain(channel, queue) == [b"once"]


def test_exchange_bind_reports_the_missing_source_first(channel) -> None:
    error = channel_error(lambda: channel.exchange_bind("no-destination", "no-source"))
    assert error.reply_code == 404
    assert error.reply_text == "NOT_FOUND - no exchange 'no-source' in vhost '/'"


def test_exchange_bind_to_missing_destination_is_404(channel) -> None:
    error = channel_error(lambda: channel.exchange_bind("no-destination", "amq.fanout"))
    assert error.reply_code == 404
    assert error.reply_text == "NOT_FOUND - no exchange 'no-destination' in vhost '/'"


@pytest.mark.parametrize(
    ("destination", "source"),
    [("amq.direct", "amq.fanout"), ("no-destination", "amq.fanout"), ("amq.direct", "no-source")],
)
def test_exchange_unbind_of_absent_binding_is_ok(channel, destination: str, source: str) -> None:
    channel.exchange_unbind(destination, source, "never-bound")
    assert channel.is_open


# -- auto-delete exchanges -----------------------------------------------------------------------


def test_auto_delete_exchange_lives_until_it_had_a_binding(connection, channel) -> None:
    channel.exchange_declare("temp", "fanout", auto_delete=True)
    assert exchange_exists(connection, "temp")


def test_auto_delete_exchange_goes_with_its_last_binding(connection, channel) -> None:
    channel.exchange_declare("temp", "direct", auto_delete=True)
    queue = private_queue(channel)
    channel.queue_bind(queue, "temp", "one")
    channel.queue_bind(queue, "temp", "two")
    channel.queue_unbind(queue, "temp", "one")
    assert exchange_exists(connection, "temp")
    channel.queue_unbind(queue, "temp", "two")
    assert not exchange_exists(connection, "temp")


def test_auto_delete_exchange_goes_when_its_bound_queue_is_deleted(connection, channel) -> None:
    channel.exchange_declare("temp", "fanout", auto_delete=True)
    queue = private_queue(channel)
    channel.queue_bind(queue, "temp")
    channel.queue_delete(queue)
    assert not exchange_exists(connection, "temp")


def test_auto_delete_exchange_goes_when_its_last_exchange_binding_goes(connection, channel) -> None:
    channel.exchange_declare("temp", "fanout", auto_delete=True)
    channel.exchange_bind("amq.fanout", "temp")
    channel.exchange_unbind("amq.fanout", "temp")
    assert not exchange_exists(connection, "temp")


def test_auto_delete_exchange_stays_when_unbound_as_a_destination(connection, channel) -> None:
    channel.exchange_declare("temp", "fanout", auto_delete=True)
    channel.exchange_bind("temp", "amq.fanout")
    channel.exchange_unbind("temp", "amq.fanout")
    assert exchange_exists(connection, "temp")
