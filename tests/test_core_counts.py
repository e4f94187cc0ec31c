"""Message counts (RabbitMQ's message_stats) as the message path keeps them, with no I/O.

The management API and the metrics read these: a channel's and a queue's `counts`, an
exchange's `publish_in` / `publish_out`, a queue's unacked bytes and a connection's bytes and
reads/writes. Each figure here is counted by hand from what the test did.
"""

from __future__ import annotations

from typing import Any

from amqp_lite.wire import methods
from tests.sansio import Message, Peer, opened

BODY = b"12345"


def _counts(counted: Any, **expected: int) -> None:
    """`counted`'s counts are `expected`, and every other count is 0."""
    values = counted.counts.values()
    assert values == {name: expected.get(name, 0) for name in values}
    assert not set(expected) - set(values), "a count the test names does not exist"


def test_a_publishing_channel_counts_publishes_confirms_returns_and_drops() -> None:
    peer = opened()
    peer.declare_queue(1, "q")
    peer.declare_queue(1, "full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    peer.call(1, methods.ConfirmSelect(), methods.ConfirmSelectOk)
    peer.send(
        b"".join(
            [
                peer.publish_bytes(1, "q", BODY),
                peer.publish_bytes(1, "full", BODY),
                peer.publish_bytes(1, "full", BODY),  # refused: nacked
                peer.publish_bytes(1, "nowhere", BODY, mandatory=True),  # returned
                peer.publish_bytes(1, "nowhere", BODY),  # dropped
            ]
        )
    )
    peer.receive()
    channel = peer.connection.channels[1]
    _counts(
        channel,
        publish=5,
        received_confirm=5,
        confirm=4,
        return_unroutable=1,
        drop_unroutable=1,
    )
    vhost = peer.node.vhost("/")
    _counts(vhost.queues["q"], publish=1)
    _counts(vhost.queues["full"], publish=1)
    default = vhost.exchanges[""]
    assert (default.publish_in, default.publish_out) == (5, 3)  # the refused one was routed

    peer.open_channel(2)  # no confirms here
    peer.publish(2, "q", BODY)
    peer.publish(2, "nowhere", BODY)
    _counts(peer.connection.channels[2], publish=2, drop_unroutable=1)
    assert (default.publish_in, default.publish_out) == (7, 4)

    peer.open_channel(3)  # a transaction counts what its commit publishes
    peer.call(3, methods.TxSelect(), methods.TxSelectOk)
    peer.publish(3, "q", BODY)
    _counts(peer.connection.channels[3])
    peer.call(3, methods.TxCommit(), methods.TxCommitOk)
    _counts(peer.connection.channels[3], publish=1)
    _counts(vhost.queues["q"], publish=3)
    _counts(
        channel, publish=5, received_confirm=5, confirm=4, return_unroutable=1, drop_unroutable=1
    )


def _fill(peer: Peer, queue: str, count: int) -> None:
    peer.declare_queue(1, queue)
    for _ in range(count):
        peer.publish(1, queue, BODY)


def test_consumers_count_deliveries_redeliveries_and_acks_on_channel_and_queue() -> None:
    peer = opened()
    _fill(peer, "q", 4)
    peer.open_channel(2)
    peer.send_method(2, methods.BasicConsume(queue="q", consumer_tag="c"))
    assert len(peer.receive()) == 1 + 4  # consume-ok, then the deliveries
    channel, queue = peer.connection.channels[2], peer.node.vhost("/").queues["q"]
    _counts(channel, deliver=4)
    _counts(queue, publish=4, deliver=4)
    assert (queue.unacked_count, queue.unacked_bytes) == (4, 4 * len(BODY))

    peer.send_method(2, methods.BasicNack(delivery_tag=1, requeue=True))
    [again] = peer.receive()
    assert isinstance(again, Message) and again.method.redelivered
    peer.send_method(2, methods.BasicAck(delivery_tag=3, multiple=True))  # 2 and 3
    _counts(channel, deliver=5, redeliver=1, ack=2)
    _counts(queue, publish=4, deliver=5, redeliver=1, ack=2)
    assert (queue.unacked_count, queue.unacked_bytes) == (2, 2 * len(BODY))

    peer.send_method(2, methods.BasicAck(delivery_tag=0, multiple=True))  # all the rest
    _counts(channel, deliver=5, redeliver=1, ack=4)
    _counts(queue, publish=4, deliver=5, redeliver=1, ack=4)
    assert (queue.unacked_count, queue.unacked_bytes) == (0, 0)
    _counts(peer.connection.channels[1], publish=4)  # the publisher delivered nothing


def test_gets_and_no_ack_consumers_are_counted_apart() -> None:
    peer = opened()
    _fill(peer, "g", 3)
    peer.open_channel(2)
    get = peer.call(2, methods.BasicGet(queue="g"), methods.BasicGetOk)
    peer.receive()
    peer.send_method(2, methods.BasicReject(delivery_tag=get.delivery_tag, requeue=True))
    peer.send_method(2, methods.BasicGet(queue="g"))  # the rejected one, again
    [again] = peer.receive()
    assert isinstance(again, Message) and again.method.redelivered
    peer.send_method(2, methods.BasicAck(delivery_tag=again.method.delivery_tag))
    for _ in range(2):
        peer.send_method(2, methods.BasicGet(queue="g", no_ack=True))
        peer.receive()
    peer.call(2, methods.BasicGet(queue="g"), methods.BasicGetEmpty)
    channel, queue = peer.connection.channels[2], peer.node.vhost("/").queues["g"]
    _counts(channel, get=2, get_no_ack=2, get_empty=1, redeliver=1, ack=1)
    _counts(queue, publish=3, get=2, get_no_ack=2, get_empty=1, redeliver=1, ack=1)
    assert (queue.unacked_count, queue.unacked_bytes) == (0, 0)

    _fill(peer, "n", 2)
    peer.send_method(2, methods.BasicConsume(queue="n", consumer_tag="n", no_ack=True))
    assert len(peer.receive()) == 1 + 2
    _counts(channel, get=2, get_no_ack=2, get_empty=1, redeliver=1, ack=1, deliver_no_ack=2)
    _counts(peer.node.vhost("/").queues["n"], publish=2, deliver_no_ack=2)
    # Delivery tags run on across gets and deliveries: the next would be 7.
    assert channel.deliveries.next_tag == 7


def test_a_connection_counts_octets_and_reads_and_writes() -> None:
    peer = Peer()
    sent = reads = 0
    original = peer.send

    def send(data: bytes) -> None:
        nonlocal sent, reads
        sent, reads = sent + len(data), reads + 1
        original(data)

    peer.send = send  # type: ignore[method-assign]
    received = writes = 0
    connection = peer.connection
    original_drain = connection.data_to_send

    def drain() -> bytes:
        nonlocal received, writes
        data = original_drain()
        if data:
            received, writes = received + len(data), writes + 1
        return data

    connection.data_to_send = drain  # type: ignore[method-assign]
    peer.handshake()
    peer.open_channel(1)
    peer.declare_queue(1, "q")
    peer.send(b"".join(peer.publish_bytes(1, "q", BODY) for _ in range(3)))
    assert (connection.recv_oct, connection.recv_cnt) == (sent, reads)
    assert (connection.send_oct, connection.send_cnt) == (received, writes)
    assert reads == 7 and writes == 5


def test_a_multiple_ack_across_queues_settles_each_in_its_queue() -> None:
    peer = opened()
    peer.declare_queue(1, "a")
    peer.declare_queue(1, "b")
    peer.open_channel(2)
    peer.send_method(2, methods.BasicConsume(queue="a", consumer_tag="a"))
    peer.send_method(2, methods.BasicConsume(queue="b", consumer_tag="b"))
    peer.receive()
    for queue in ("a", "b", "b", "a", "b"):  # delivered as published: runs of each queue
        peer.publish(1, queue, BODY)
    delivered = [item.method for item in peer.receive()]
    assert [m.consumer_tag for m in delivered] == ["a", "b", "b", "a", "b"]
    vhost = peer.node.vhost("/")
    a, b = vhost.queues["a"], vhost.queues["b"]
    assert (a.unacked_count, b.unacked_count) == (2, 3)
    peer.send_method(2, methods.BasicAck(delivery_tag=delivered[3].delivery_tag, multiple=True))
    assert (a.unacked_count, a.unacked_bytes) == (0, 0)
    assert (b.unacked_count, b.unacked_bytes) == (1, len(BODY))
    _counts(a, publish=2, deliver=2, ack=2)
    _counts(b, publish=3, deliver=3, ack=2)
    _counts(peer.connection.channels[2], deliver=5, ack=4)
