"""Queues over the wire with pika: naming, redeclare equivalence, exclusive and auto-delete
queues, bindings, purge and delete.

Reply codes and texts are the ones RabbitMQ 3.10 sends for the same operations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker

LOCKED = (
    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{}' in vhost '/'. "
    "It could be originally declared on another connection or the exclusive property value "
    "does not match that of the original declaration."
)


def channel_error(call: Callable[[], Any]) -> ChannelClosedByBroker:
    with pytest.raises(ChannelClosedByBroker) as caught:
        call()
    return caught.value


def queue_exists(connection: pika.BlockingConnection, name: str) -> bool:
    probe = connection.channel()  # a failed passive declare closes the channel it ran on
    try:
        probe.queue_declare(name, passive=True)
    except ChannelClosedByBroker as error:
        assert error.reply_code == 404
        return False
    probe.close()
    return True


def ready_count(connection: pika.BlockingConnection, name: str) -> int:
    return connection.channel().queue_declare(name, passive=True).method.message_count


def ignore(*_delivery: Any) -> None:
    pass


@pytest.fixture
def other_connection(broker) -> Iterator[pika.BlockingConnection]:
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    yield conn
    if conn.is_open:
        conn.close()


# -- names and counts ----------------------------------------------------------------------------


def test_server_names_a_queue_declared_without_a_name(channel) -> None:
    first = channel.queue_declare("").method.queue
    second = channel.queue_declare("").method.queue
    assert first.startswith("amq.gen-") and second.startswith("amq.gen-")
    assert first != second


def test_queue_name_with_amq_prefix_is_403(channel) -> None:
    error = channel_error(lambda: channel.queue_declare("amq.mine"))
    assert error.reply_code == 403
    assert error.reply_text == (
        "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'"
    )


def test_server_named_queue_can_be_redeclared_only_passively(connection, channel) -> None:
    name = channel.queue_declare("", exclusive=True).method.queue
    assert channel.queue_declare(name, passive=True).method.queue == name
    # RabbitMQ checks the reserved prefix before it looks for the queue.
    error = channel_error(lambda: channel.queue_declare(name, exclusive=True))
    assert error.reply_code == 403
    assert error.reply_text == (
        f"ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'"
    )


def test_passive_declare_returns_ready_and_consumer_counts(connection, channel) -> None:
    channel.queue_declare("jobs")
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", "jobs", body)
    consuming = connection.channel()
    consuming.basic_qos(prefetch_count=1)
    consuming.basic_consume("jobs", ignore)  # takes one message, leaving two ready
    declared = channel.queue_declare("jobs", passive=True).method
    assert (declared.message_count, declared.consumer_count) == (2, 1)


# -- redeclare equivalence -----------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["durable", "auto_delete"])
def test_redeclare_with_other_flag_is_406(channel, flag: str) -> None:
    channel.queue_declare("q")
    error = channel_error(lambda: channel.queue_declare("q", **{flag: True}))
    assert error.reply_code == 406
    assert error.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg '{flag}' for queue 'q' in vhost '/': "
        "received 'true' but current is 'false'"
    )


def test_redeclare_with_same_flags_is_fine(channel) -> None:
    channel.queue_declare("q", durable=True, auto_delete=True)
    assert channel.queue_declare("q", durable=True, auto_delete=True).method.queue == "q"


@pytest.mark.parametrize(
    ("argument", "current", "received"),
    [
        ("x-message-ttl", 1000, 2000),
        ("x-message-ttl", 1000, "1000"),  # same digits, other type: still inequivalent
        ("x-dead-letter-exchange", "dlx", "other-dlx"),
    ],
)
def test_redeclare_with_other_x_argument_value_is_406(
    channel, argument: str, current: Any, received: Any
) -> None:
    channel.queue_declare("q", arguments={argument: current})
    error = channel_error(lambda: channel.queue_declare("q", arguments={argument: received}))
    assert error.reply_code == 406
    # With both values present RabbitMQ shows them bare, without their types.
    assert error.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg '{argument}' for queue 'q' in vhost '/': "
        f"received '{received}' but current is '{current}'"
    )


def test_redeclare_without_an_x_argument_is_406_naming_its_type(channel) -> None:
    channel.queue_declare("q", arguments={"x-message-ttl": 1000})
    error = channel_error(lambda: channel.queue_declare("q"))
    assert error.reply_code == 406
    assert error.reply_text == (
        "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': "
        "received none but current is the value '1000' of type 'signedint'"
    )


@pytest.mark.parametrize(
    ("first", "second", "text"),
    [
        # A classic queue compares these too, though it makes nothing of their values.
        (
            {"x-queue-version": 1},
            {"x-queue-version": 2},
            "inequivalent arg 'x-queue-version' for queue 'q' in vhost '/': "
            "received '2' but current is '1'",
        ),
        (
            {"x-queue-master-locator": "min-masters"},
            {},
            "inequivalent arg 'x-queue-master-locator' for queue 'q' in vhost '/': "
            "received none but current is the value 'min-masters' of type 'longstr'",
        ),
        # In RabbitMQ's order: x-single-active-consumer before x-queue-type.
        (
            {"x-single-active-consumer": True},
            {"x-queue-type": "classic"},
            "inequivalent arg 'x-single-active-consumer' for queue 'q' in vhost '/': "
            "received none but current is the value 'true' of type 'bool'",
        ),
    ],
)
def test_redeclare_compares_what_the_classic_type_takes_in_its_order(
    channel, first: dict[str, Any], second: dict[str, Any], text: str
) -> None:
    channel.queue_declare("q", arguments=first)
    error = channel_error(lambda: channel.queue_declare("q", arguments=second))
    assert (error.reply_code, error.reply_text) == (406, "PRECONDITION_FAILED - " + text)


def test_redeclare_with_other_non_x_arguments_is_fine(channel) -> None:
    channel.queue_declare("q", arguments={"x-message-ttl": 1000, "colour": "red"})
    channel.queue_declare("q", arguments={"x-message-ttl": 1000, "colour": "blue", "size": 3})
    assert channel.is_open


@pytest.mark.parametrize("first_exclusive", [True, False])
def test_redeclare_with_other_exclusive_flag_is_405(channel, first_exclusive: bool) -> None:
    channel.queue_declare("q", exclusive=first_exclusive)
    error = channel_error(lambda: channel.queue_declare("q", exclusive=not first_exclusive))
    assert (error.reply_code, error.reply_text) == (405, LOCKED.format("q"))


# -- exclusive queues ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda ch: ch.queue_declare("mine"), id="declare"),
        pytest.param(lambda ch: ch.queue_declare("mine", exclusive=True), id="declare-exclusive"),
        pytest.param(lambda ch: ch.queue_declare("mine", passive=True), id="declare-passive"),
        pytest.param(lambda ch: ch.queue_bind("mine", "amq.direct", "k"), id="bind"),
        pytest.param(lambda ch: ch.basic_consume("mine", ignore), id="consume"),
        pytest.param(lambda ch: ch.basic_get("mine"), id="get"),
        pytest.param(lambda ch: ch.queue_purge("mine"), id="purge"),
        pytest.param(lambda ch: ch.queue_delete("mine"), id="delete"),
    ],
)
def test_exclusive_queue_is_locked_to_other_connections(
    channel, other_connection, operation: Callable[[BlockingChannel], Any]
) -> None:
    channel.queue_declare("mine", exclusive=True)
    error = channel_error(lambda: operation(other_connection.channel()))
    assert (error.reply_code, error.reply_text) == (405, LOCKED.format("mine"))


def test_exclusive_queue_bindings_cannot_be_removed_by_other_connections(
    channel, other_connection
) -> None:
    channel.queue_declare("mine", exclusive=True)
    channel.queue_bind("mine", "amq.direct", "k")
    other = other_connection.channel()
    error = channel_error(lambda: other.queue_unbind("mine", "amq.direct", "k"))
    assert (error.reply_code, error.reply_text) == (405, LOCKED.format("mine"))


def test_unbinding_an_absent_binding_of_a_locked_queue_is_ok(channel, other_connection) -> None:
    channel.queue_declare("mine", exclusive=True)
    other = other_connection.channel()
    other.queue_unbind("mine", "amq.direct", "never-bound")
    assert other.is_open


def test_binding_a_locked_queue_to_a_missing_exchange_reports_the_exchange(
    channel, other_connection
) -> None:
    channel.queue_declare("mine", exclusive=True)
    error = channel_error(lambda: other_connection.channel().queue_bind("mine", "absent", "k"))
    assert error.reply_code == 404
    assert error.reply_text == "NOT_FOUND - no exchange 'absent' in vhost '/'"


def test_exclusive_queue_goes_when_its_connection_closes(connection, other_connection) -> None:
    channel = connection.channel()
    channel.queue_declare("mine", exclusive=True)
    channel.basic_publish("", "mine", b"left behind")
    connection.close()
    assert not queue_exists(other_connection, "mine")


# -- auto-delete queues --------------------------------------------------------------------------


def test_auto_delete_queue_goes_when_its_last_consumer_is_cancelled(connection, channel) -> None:
    channel.queue_declare("temp", auto_delete=True)
    first = channel.basic_consume("temp", ignore)
    second = channel.basic_consume("temp", ignore)
    channel.basic_cancel(first)
    assert queue_exists(connection, "temp")
    channel.basic_cancel(second)
    assert not queue_exists(connection, "temp")


def test_auto_delete_queue_without_any_consumer_yet_stays(connection, channel) -> None:
    channel.queue_declare("temp", auto_delete=True)
    channel.basic_publish("", "temp", b"m")
    assert queue_exists(connection, "temp")


def test_auto_delete_queue_goes_when_its_consumers_connection_closes(
    connection, other_connection
) -> None:
    channel = connection.channel()
    channel.queue_declare("temp", auto_delete=True)
    channel.basic_consume("temp", ignore)
    connection.close()
    assert not queue_exists(other_connection, "temp")


# -- bindings ------------------------------------------------------------------------------------


def test_bind_then_unbind_controls_routing(channel) -> None:
    channel.queue_declare("q")
    channel.queue_bind("q", "amq.direct", "key")
    channel.basic_publish("amq.direct", "key", b"bound")
    channel.queue_unbind("q", "amq.direct", "key")
    channel.basic_publish("amq.direct", "key", b"unbound")
    assert channel.basic_get("q", auto_ack=True)[2] == b"bound"
    assert channel.basic_get("q", auto_ack=True)[0] is None


def test_bind_is_idempotent(channel) -> None:
    channel.queue_declare("q")
    channel.queue_bind("q", "amq.direct", "key")
    channel.queue_bind("q", "amq.direct", "key")
    channel.basic_publish("amq.direct", "key", b"once")
    assert channel.basic_get("q", auto_ack=True)[2] == b"once"
    assert channel.basic_get("q", auto_ack=True)[0] is None


@pytest.mark.parametrize(
    ("queue", "exchange"),
    [("q", "amq.direct"), ("q", "absent-exchange"), ("absent-queue", "amq.direct")],
)
def test_unbind_of_absent_binding_is_ok(channel, queue: str, exchange: str) -> None:
    channel.queue_declare("q")
    channel.queue_unbind(queue, exchange, "never-bound")
    assert channel.is_open


@pytest.mark.parametrize(
    ("queue", "exchange", "missing"),
    [
        ("q", "absent-exchange", "exchange 'absent-exchange'"),
        ("absent-queue", "amq.direct", "queue 'absent-queue'"),
        ("absent-queue", "absent-exchange", "exchange 'absent-exchange'"),
    ],
)
def test_bind_with_missing_exchange_or_queue_is_404(
    channel, queue: str, exchange: str, missing: str
) -> None:
    channel.queue_declare("q")
    error = channel_error(lambda: channel.queue_bind(queue, exchange, "k"))
    assert error.reply_code == 404
    assert error.reply_text == f"NOT_FOUND - no {missing} in vhost '/'"


# -- purge ---------------------------------------------------------------------------------------


def test_purge_returns_ready_count_and_leaves_unacked_messages(connection, channel) -> None:
    channel.queue_declare("q")
    for body in (b"0", b"1", b"2", b"3"):
        channel.basic_publish("", "q", body)
    holder = connection.channel()
    holder.basic_get("q")
    holder.basic_get("q")  # "0" and "1" are now unacked on `holder`
    assert channel.queue_purge("q").method.message_count == 2
    assert ready_count(connection, "q") == 0
    holder.close()  # the unacked messages come back, marked redelivered
    assert ready_count(connection, "q") == 2
    method, _properties, body = channel.basic_get("q", auto_ack=True)
    assert (body, method.redelivered) == (b"0", True)


# -- delete --------------------------------------------------------------------------------------


def test_delete_returns_the_ready_count(connection, channel) -> None:
    channel.queue_declare("q")
    channel.basic_publish("", "q", b"a")
    channel.basic_publish("", "q", b"b")
    assert channel.queue_delete("q").method.message_count == 2
    assert not queue_exists(connection, "q")


def test_deleting_a_missing_queue_is_ok_with_count_zero(channel) -> None:
    assert channel.queue_delete("never-declared").method.message_count == 0


def test_delete_if_empty_refuses_a_queue_with_ready_messages(connection, channel) -> None:
    channel.queue_declare("q")
    channel.basic_publish("", "q", b"a")
    error = channel_error(lambda: channel.queue_delete("q", if_empty=True))
    assert error.reply_code == 406
    assert error.reply_text == "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty"
    assert queue_exists(connection, "q")


def test_delete_if_empty_counts_only_ready_messages(connection, channel) -> None:
    channel.queue_declare("q")
    channel.basic_publish("", "q", b"a")
    connection.channel().basic_get("q")  # unacked is not "ready"
    assert channel.queue_delete("q", if_empty=True).method.message_count == 0


def test_delete_if_unused_refuses_a_queue_with_consumers(connection, channel) -> None:
    channel.queue_declare("q")
    connection.channel().basic_consume("q", ignore)
    error = channel_error(lambda: channel.queue_delete("q", if_unused=True))
    assert error.reply_code == 406
    assert error.reply_text == "PRECONDITION_FAILED - queue 'q' in vhost '/' in use"
    assert queue_exists(connection, "q")


def test_deleting_a_consumed_queue_sends_basic_cancel(connection, channel) -> None:
    channel.queue_declare("q")
    cancelled: list[str] = []
    channel.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = channel.basic_consume("q", ignore)
    connection.channel().queue_delete("q")
    deadline = time.monotonic() + 5
    while not cancelled and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    assert cancelled == [tag]
    assert channel.consumer_tags == []
    assert channel.is_open
    # The consumer is gone on the broker's side too: a new queue of that name has none.
    assert channel.queue_declare("q").method.consumer_count == 0
