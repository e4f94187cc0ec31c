"""The protocol core with no I/O: a `ServerConnection` on a `Node`, bytes in, frames out.

What these check is what goes on the wire (the over-the-wire tests check the same behaviour
through real clients and the trio server); here each runs in a millisecond or so, and the
questions the I/O layer asks the core (deadlines, heartbeats, pausing the reader) are answered
without a clock.
"""

from __future__ import annotations

import math

from amqp_lite.connection import (
    CLOSE_TIMEOUT,
    HANDSHAKE_TIMEOUT,
    OUTPUT_HIGH_WATER,
    READ_PAUSE_BACKLOG,
    SILENT_CLOSE_DELAY,
)
from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import PROTOCOL_HEADER, encode_header, encode_method
from amqp_lite.wire.properties import EMPTY_RAW_PROPERTIES
from tests.sansio import Message, Method, Peer, opened
from vhosts import Node

# -- the handshake -------------------------------------------------------------------------------


def test_the_handshake_answers_each_step_and_nothing_more() -> None:
    peer = Peer(heartbeat=30)
    start, tune = peer.handshake(heartbeat=20)
    assert (start.version_major, start.version_minor) == (0, 9)
    assert sorted(start.mechanisms.split()) == [b"AMQPLAIN", b"PLAIN"]
    assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (2047, 131072, 30)
    assert peer.connection.heartbeat == 20  # the client's choice in tune-ok counts
    assert peer.receive() == []


def test_the_protocol_header_may_arrive_a_byte_at_a_time() -> None:
    peer = Peer()
    for byte in PROTOCOL_HEADER[:-1]:
        peer.send(bytes([byte]))
        assert peer.receive() == []
    peer.send(PROTOCOL_HEADER[-1:])
    assert [type(m) for m in peer.methods()] == [methods.ConnectionStart]


def test_a_foreign_protocol_header_gets_ours_back_and_a_hang_up() -> None:
    peer = Peer()
    peer.send(b"HTTP/1.1 200 OK\r\n")
    assert peer.connection.data_to_send() == PROTOCOL_HEADER
    assert peer.connection.wants_socket_closed


def test_a_wrong_password_is_403_and_then_a_hang_up() -> None:
    peer = Peer()
    peer.send(PROTOCOL_HEADER)
    peer.receive()
    peer.send_method(
        0,
        methods.ConnectionStartOk(
            client_properties={"capabilities": {"authentication_failure_close": True}},
            mechanism="PLAIN",
            response=b"\x00guest\x00wrong",
        ),
    )
    [close] = peer.methods()
    assert isinstance(close, methods.ConnectionClose)
    assert close.reply_code == 403
    assert not peer.connection.wants_socket_closed  # close-ok first
    peer.send_method(0, methods.ConnectionCloseOk())
    assert peer.connection.wants_socket_closed


def test_an_unknown_vhost_closes_the_connection_with_530() -> None:
    peer = Peer()
    peer.send(PROTOCOL_HEADER)
    peer.receive()
    peer.call(
        0,
        methods.ConnectionStartOk(mechanism="PLAIN", response=b"\x00guest\x00guest"),
        methods.ConnectionTune,
    )
    peer.send_method(0, methods.ConnectionTuneOk(channel_max=2047, frame_max=131072, heartbeat=0))
    close = peer.call(0, methods.ConnectionOpen(virtual_host="nowhere"), methods.ConnectionClose)
    assert (close.reply_code, close.class_id, close.method_id) == (530, 10, 40)


def test_a_method_before_login_is_answered_by_a_silent_hang_up() -> None:
    """As RabbitMQ: before tune-ok the client gets no reason, and waits for the hang-up."""
    peer = Peer()
    peer.send(PROTOCOL_HEADER)
    peer.receive()
    peer.send_method(1, methods.ChannelOpen())
    assert peer.methods() == []
    assert peer.connection.wants_socket_closed
    assert peer.connection.close_delay == SILENT_CLOSE_DELAY


# -- what the I/O layer asks ---------------------------------------------------------------------


def test_the_handshake_deadline_is_absolute_however_slowly_bytes_come() -> None:
    peer = Peer()
    assert peer.connection.read_deadline(100.0) == 100.0 + HANDSHAKE_TIMEOUT
    peer.send(PROTOCOL_HEADER[:3])
    # Dribbling bytes does not buy time: the deadline stays where it was first set.
    assert peer.connection.read_deadline(105.0) == 100.0 + HANDSHAKE_TIMEOUT
    assert peer.connection.read_timed_out() is False  # not a heartbeat matter
    assert peer.connection.wants_socket_closed


def test_an_open_connection_waits_two_heartbeat_intervals_for_the_client() -> None:
    peer = opened(heartbeat=10)
    assert peer.connection.read_deadline(50.0) == 70.0
    assert peer.connection.heartbeat_interval == 5.0
    assert peer.connection.read_timed_out() is True  # missed heartbeats
    assert peer.connection.wants_socket_closed


def test_heartbeat_zero_means_no_heartbeats_and_no_read_deadline() -> None:
    peer = opened(heartbeat=0)
    assert peer.connection.read_deadline(50.0) == math.inf
    assert peer.connection.heartbeat_interval == math.inf


def test_no_heartbeats_are_sent_before_the_connection_is_open() -> None:
    peer = Peer(heartbeat=60)
    assert peer.connection.heartbeat_interval == math.inf
    peer.send(PROTOCOL_HEADER)
    peer.connection.send_heartbeat()
    peer.receive()
    assert peer.heartbeats == 0


def test_send_heartbeat_queues_one_heartbeat_frame() -> None:
    peer = opened(heartbeat=60)
    peer.connection.send_heartbeat()
    assert peer.receive() == []
    assert peer.heartbeats == 1


def test_a_closing_connection_waits_for_close_ok_only_so_long() -> None:
    peer = opened()
    peer.connection.close()
    [close] = peer.methods()
    assert close.reply_code == 320
    assert peer.connection.read_deadline(7.0) == 7.0 + CLOSE_TIMEOUT
    assert peer.connection.read_deadline(8.0) == 7.0 + CLOSE_TIMEOUT
    peer.send_method(0, methods.ConnectionCloseOk())
    assert peer.connection.wants_socket_closed


def test_reading_pauses_while_a_client_that_sends_does_not_read() -> None:
    peer = opened()
    resumed = []
    peer.connection.on_reading_resumed = lambda: resumed.append(True)
    # Unroutable mandatory publishes come back as basic.return: output the client must read.
    body = b"x" * 60_000
    burst = b"".join(
        peer.publish_bytes(1, "nowhere", body, mandatory=True) for _ in range(100)
    )  # ~6 MB of returns
    peer.send(burst)
    assert peer.connection.reading_paused
    assert not resumed
    returned = peer.receive()  # the I/O layer writes what was buffered
    assert len(returned) == 100 and all(isinstance(m.method, methods.BasicReturn) for m in returned)
    assert not peer.connection.reading_paused
    assert resumed == [True]


def test_a_reader_is_not_paused_below_the_backlog_mark() -> None:
    peer = opened()
    peer.send(peer.publish_bytes(1, "nowhere", b"x" * (READ_PAUSE_BACKLOG // 2), mandatory=True))
    assert not peer.connection.reading_paused


# -- channel errors ------------------------------------------------------------------------------


def test_an_unknown_delivery_tag_closes_that_channel_only() -> None:
    peer = opened()
    peer.open_channel(2)
    peer.send_method(1, methods.BasicAck(delivery_tag=5))
    [close] = peer.receive()
    assert close == Method(
        1,
        methods.ChannelClose(
            reply_code=406,
            reply_text="PRECONDITION_FAILED - unknown delivery tag 5",
            class_id=60,
            method_id=80,
        ),
    )
    # Until close-ok, what crosses the close on that channel is dropped...
    peer.send_method(1, methods.QueueDeclare(queue="dropped"))
    assert peer.receive() == []
    # ...while the other channel carries on.
    peer.declare_queue(2, "kept")
    peer.send_method(1, methods.ChannelCloseOk())
    peer.open_channel(1)  # the number is free again
    assert "dropped" not in peer.node.vhost("/").queues


def test_publishing_to_a_missing_exchange_closes_the_channel_naming_basic_publish() -> None:
    peer = opened()
    peer.publish(1, "rk", b"body", exchange="missing")
    [close] = peer.methods()
    assert isinstance(close, methods.ChannelClose)
    assert close.reply_code == 404
    assert close.reply_text == "NOT_FOUND - no exchange 'missing' in vhost '/'"
    assert (close.class_id, close.method_id) == (60, 40)


def test_a_method_on_a_channel_never_opened_closes_the_connection_with_504() -> None:
    peer = opened()
    peer.send_method(7, methods.QueueDeclare(queue="q"))
    [close] = peer.methods()
    assert isinstance(close, methods.ConnectionClose)
    assert close.reply_code == 504


def test_a_content_header_without_a_publish_closes_the_connection_with_505() -> None:
    peer = opened()
    peer.send(encode_header(1, 60, 0, EMPTY_RAW_PROPERTIES))
    [close] = peer.methods()
    assert isinstance(close, methods.ConnectionClose)
    assert close.reply_code == 505
    assert (close.class_id, close.method_id) == (0, 0)


def test_a_method_between_publish_and_its_content_is_505_naming_the_publish() -> None:
    peer = opened()
    peer.send(
        encode_method(1, methods.BasicPublish(routing_key="q"))
        + encode_method(1, methods.QueueDeclare(queue="q"))
    )
    [close] = peer.methods()
    assert isinstance(close, methods.ConnectionClose)
    assert close.reply_code == 505
    assert (close.class_id, close.method_id) == (60, 40)


def test_a_channel_error_requeues_what_the_channel_had_unacked() -> None:
    peer = opened()
    peer.declare_queue(1, "q")
    peer.publish(1, "q", b"one")
    get_ok = peer.call(1, methods.BasicGet(queue="q"), methods.BasicGetOk)
    assert get_ok.message_count == 0
    peer.send_method(1, methods.BasicAck(delivery_tag=99))  # closes the channel
    peer.receive()
    assert peer.node.vhost("/").queues["q"].message_count == 1


# -- publisher confirms --------------------------------------------------------------------------


def test_a_burst_of_publishes_in_one_read_gets_one_ack() -> None:
    peer = opened()
    peer.declare_queue(1, "q")
    peer.call(1, methods.ConfirmSelect(), methods.ConfirmSelectOk)
    peer.send(b"".join(peer.publish_bytes(1, "q", b"m") for _ in range(3)))
    assert peer.receive() == [Method(1, methods.BasicAck(delivery_tag=3, multiple=True))]
    peer.publish(1, "q", b"m")
    assert peer.receive() == [Method(1, methods.BasicAck(delivery_tag=4, multiple=False))]


def test_a_publish_refused_by_a_full_queue_is_nacked_between_acks() -> None:
    peer = opened()
    peer.declare_queue(1, "full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    peer.call(1, methods.ConfirmSelect(), methods.ConfirmSelectOk)
    peer.send(b"".join(peer.publish_bytes(1, "full", b"m") for _ in range(3)))
    assert peer.methods() == [
        methods.BasicAck(delivery_tag=1, multiple=False),
        methods.BasicNack(delivery_tag=2, multiple=False, requeue=False),
        methods.BasicNack(delivery_tag=3, multiple=False, requeue=False),
    ]


def test_an_unroutable_mandatory_publish_is_returned_before_its_ack() -> None:
    peer = opened()
    peer.call(1, methods.ConfirmSelect(), methods.ConfirmSelectOk)
    properties = Properties(content_type="text/plain")
    peer.publish(1, "nowhere", b"back", mandatory=True, properties=properties)
    returned, ack = peer.receive()
    assert returned == Message(
        1,
        methods.BasicReturn(
            reply_code=312, reply_text="NO_ROUTE", exchange="", routing_key="nowhere"
        ),
        properties,
        b"back",
    )
    assert ack == Method(1, methods.BasicAck(delivery_tag=1, multiple=False))


def test_confirm_mode_and_transactions_exclude_each_other() -> None:
    peer = opened()
    peer.call(1, methods.TxSelect(), methods.TxSelectOk)
    peer.send_method(1, methods.ConfirmSelect())
    [close] = peer.methods()
    assert (close.reply_code, close.reply_text) == (
        406,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
    )


# -- prefetch and settlement ---------------------------------------------------------------------


def _queue_with(peer: Peer, name: str, count: int) -> None:
    peer.declare_queue(1, name)
    peer.send(b"".join(peer.publish_bytes(1, name, str(i).encode()) for i in range(count)))
    assert peer.receive() == []


def _consume(peer: Peer, queue: str, channel: int = 1, *, no_ack: bool = False) -> list[Message]:
    """basic.consume; returns the deliveries that followed consume-ok."""
    peer.send_method(channel, methods.BasicConsume(queue=queue, consumer_tag=queue, no_ack=no_ack))
    first, *deliveries = peer.receive()
    assert isinstance(first.method, methods.BasicConsumeOk)
    assert all(isinstance(d, Message) for d in deliveries)
    return deliveries  # type: ignore[return-value]


def test_prefetch_holds_deliveries_until_acks_give_credit_back() -> None:
    peer = opened()
    _queue_with(peer, "q", 5)
    peer.call(1, methods.BasicQos(prefetch_count=2), methods.BasicQosOk)
    delivered = _consume(peer, "q")
    assert [m.body for m in delivered] == [b"0", b"1"]
    peer.send_method(1, methods.BasicAck(delivery_tag=1))
    [third] = peer.receive()
    assert (third.method.delivery_tag, third.body) == (3, b"2")
    peer.send_method(1, methods.BasicAck(delivery_tag=3, multiple=True))
    assert [m.body for m in peer.receive()] == [b"3", b"4"]


def test_global_prefetch_is_shared_by_the_channels_consumers() -> None:
    peer = opened()
    _queue_with(peer, "a", 3)
    _queue_with(peer, "b", 3)
    peer.call(1, methods.BasicQos(prefetch_count=3, global_=True), methods.BasicQosOk)
    assert len(_consume(peer, "a")) == 3
    assert _consume(peer, "b") == []
    peer.send_method(1, methods.BasicAck(delivery_tag=1))
    [one] = peer.receive()
    assert one.method.consumer_tag == "b"


def test_a_no_ack_consumer_is_not_limited_by_prefetch() -> None:
    peer = opened()
    _queue_with(peer, "q", 4)
    peer.call(1, methods.BasicQos(prefetch_count=1), methods.BasicQosOk)
    assert len(_consume(peer, "q", no_ack=True)) == 4


def test_deliveries_wait_while_the_client_has_not_read_a_high_water_mark() -> None:
    peer = opened()
    big = b"x" * 100_000
    peer.declare_queue(1, "q")
    peer.send(b"".join(peer.publish_bytes(1, "q", big) for _ in range(30)))
    # No basic.qos: only the connection's unsent output limits what leaves the queue.
    peer.send_method(1, methods.BasicConsume(queue="q", no_ack=True))
    queue = peer.node.vhost("/").queues["q"]
    per_mark = OUTPUT_HIGH_WATER // len(big) + 1  # deliveries until the mark is passed
    left = 30 - per_mark
    assert queue.message_count == left
    received = len(peer.receive()) - 1  # consume-ok; reading the output lets more go
    while received < 30:
        left = max(0, left - per_mark)
        assert queue.message_count == left  # a mark's worth left the queue, no more
        received += len(peer.receive())
    assert received == 30
    assert queue.message_count == 0


def test_nack_with_requeue_redelivers_and_reject_without_discards() -> None:
    peer = opened()
    _queue_with(peer, "q", 2)
    _consume(peer, "q")
    peer.send_method(1, methods.BasicNack(delivery_tag=1, requeue=True))
    [again] = peer.receive()
    assert (again.body, again.method.redelivered, again.method.delivery_tag) == (b"0", True, 3)
    peer.send_method(1, methods.BasicReject(delivery_tag=2, requeue=False))
    peer.send_method(1, methods.BasicAck(delivery_tag=3))
    assert peer.receive() == []
    assert peer.node.vhost("/").queues["q"].message_count == 0


def test_a_transaction_holds_publishes_and_acks_until_commit() -> None:
    peer = opened()
    _queue_with(peer, "q", 1)
    [delivery] = _consume(peer, "q")
    queue = peer.node.vhost("/").queues["q"]
    peer.call(1, methods.TxSelect(), methods.TxSelectOk)
    peer.publish(1, "q", b"held")
    peer.send_method(1, methods.BasicAck(delivery_tag=delivery.method.delivery_tag))
    assert queue.message_count == 0 and queue.unacked_count == 1
    peer.call(1, methods.TxRollback(), methods.TxRollbackOk)
    assert queue.unacked_count == 1  # the ack never happened; the publish is forgotten
    peer.send_method(1, methods.BasicAck(delivery_tag=delivery.method.delivery_tag))
    peer.publish(1, "q", b"kept")
    assert peer.receive() == []
    peer.send_method(1, methods.TxCommit())
    delivered, commit_ok = peer.receive()
    assert isinstance(delivered, Message) and delivered.body == b"kept"
    assert commit_ok == Method(1, methods.TxCommitOk())
    assert queue.unacked_count == 1  # "kept"; the first message's ack was committed


def test_deleting_the_consumed_queue_answers_delete_ok_before_the_cancel() -> None:
    peer = opened()
    _queue_with(peer, "q", 0)
    _consume(peer, "q")
    peer.send_method(1, methods.QueueDelete(queue="q"))
    assert peer.methods() == [
        methods.QueueDeleteOk(message_count=0),
        methods.BasicCancel(consumer_tag="q", no_wait=True),
    ]


# -- resource alarms -----------------------------------------------------------------------------


def test_an_alarm_blocks_a_connection_once_it_publishes_and_reading_pauses() -> None:
    peer = opened(heartbeat=10)
    peer.declare_queue(1, "q")
    peer.node.set_alarm("memory")
    peer.connection.alarms_changed()
    assert not peer.connection.reading_paused  # nothing published yet: not blocked
    peer.declare_queue(1, "still-served")
    peer.publish(1, "q", b"m")
    assert peer.receive() == [Method(0, methods.ConnectionBlocked(reason="low on memory"))]
    assert peer.connection.reading_paused
    assert peer.node.vhost("/").queues["q"].message_count == 1  # the publish itself went
    # We stop reading, so the client's heartbeats cannot count against it.
    assert peer.connection.read_deadline(0.0) == math.inf

    peer.node.set_alarm("disk")
    peer.connection.alarms_changed()
    peer.node.clear_alarm("memory")
    peer.connection.alarms_changed()
    assert peer.connection.reading_paused  # disk is still low
    resumed = []
    peer.connection.on_reading_resumed = lambda: resumed.append(True)
    peer.node.clear_alarm("disk")
    peer.connection.alarms_changed()
    assert peer.receive() == [Method(0, methods.ConnectionUnblocked())]
    assert not peer.connection.reading_paused and resumed == [True]
    assert peer.connection.read_deadline(0.0) == 20.0


def test_both_resources_are_named_and_a_client_without_the_capability_hears_nothing() -> None:
    node = Node()
    node.set_alarm("memory")
    node.set_alarm("disk")
    aware = opened(node)
    aware.publish(1, "", b"m")
    assert aware.methods() == [methods.ConnectionBlocked(reason="low on disk & memory")]
    unaware = opened(node, capabilities={})
    unaware.publish(1, "", b"m")
    assert unaware.receive() == []
    assert unaware.connection.reading_paused
    node.clear_alarm("memory")
    node.clear_alarm("disk")
    unaware.connection.alarms_changed()
    assert unaware.receive() == [] and not unaware.connection.reading_paused


def test_a_connection_that_only_consumes_is_never_blocked() -> None:
    peer = opened()
    _queue_with(peer, "q", 2)
    peer.node.set_alarm("memory")
    peer.connection.alarms_changed()
    assert len(_consume(peer, "q", no_ack=True)) == 2
    assert not peer.connection.reading_paused
    peer.node.clear_alarm("memory")
    peer.connection.alarms_changed()
    assert peer.receive() == []  # never blocked, so no unblocked either
