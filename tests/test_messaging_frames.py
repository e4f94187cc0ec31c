"""Messaging checked frame by frame, with a bare socket client built on pika's codec.

pika's blocking API hides the order in which frames arrive and always picks consumer tags itself;
these tests need both, so they speak AMQP directly. pika's frame codec is independent of ours,
which keeps the check honest. Expected frames were observed on RabbitMQ 3.10.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pika import frame, spec

from amqp_lite import ThreadedBroker

SIZES = [0, 300_000]  # empty, and big enough to span several body frames
CONTENT_METHODS = (spec.Basic.Deliver, spec.Basic.Return, spec.Basic.GetOk)


def _body(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


class FrameClient:
    """A synchronous AMQP client: sends what it is told, returns frames in arrival order."""

    def __init__(self, port: int) -> None:
        # A timeout so that a broker which stays silent fails the test instead of hanging it.
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""
        self.sock.sendall(frame.ProtocolHeader().marshal())
        self.expect(0, spec.Connection.Start)
        self.send(
            0,
            spec.Connection.StartOk(
                client_properties={"capabilities": {"consumer_cancel_notify": True}},
                mechanism="PLAIN",
                response=b"\0guest\0guest",
            ),
        )
        tune = self.expect(0, spec.Connection.Tune)
        self.frame_max = tune.frame_max
        self.send(
            0,
            spec.Connection.TuneOk(
                channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=0
            ),
        )
        self.send(0, spec.Connection.Open(virtual_host="/"))
        self.expect(0, spec.Connection.OpenOk)

    def close(self) -> None:
        self.sock.close()

    def send(self, channel: int, method: Any) -> None:
        self.sock.sendall(frame.Method(channel, method).marshal())

    def call(self, channel: int, method: Any, reply: type) -> Any:
        self.send(channel, method)
        return self.expect(channel, reply)

    def open_channel(self, channel: int) -> None:
        self.call(channel, spec.Channel.Open(), spec.Channel.OpenOk)

    def publish_bytes(
        self, channel: int, routing_key: str, body: bytes, *, mandatory: bool = False
    ) -> bytes:
        """The frames of one publish to the default exchange, to send alone or in a burst."""
        method = spec.Basic.Publish(exchange="", routing_key=routing_key, mandatory=mandatory)
        data = frame.Method(channel, method).marshal()
        data += frame.Header(channel, len(body), spec.BasicProperties()).marshal()
        chunk = self.frame_max - 8  # frame header and end octet
        for start in range(0, len(body), chunk):
            data += frame.Body(channel, body[start : start + chunk]).marshal()
        return data

    def frame(self) -> Any:
        while True:
            if self.buffer:
                consumed, decoded = frame.decode_frame(self.buffer)
                if decoded is not None:
                    self.buffer = self.buffer[consumed:]
                    return decoded
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("the broker closed the socket")
            self.buffer += chunk

    def next_method(self) -> tuple[int, Any, bytes | None]:
        """(channel, method, body): content methods come with their whole body reassembled."""
        method_frame = self.frame()
        assert isinstance(method_frame, frame.Method), method_frame
        method = method_frame.method
        if not isinstance(method, CONTENT_METHODS):
            return method_frame.channel_number, method, None
        header = self.frame()
        assert isinstance(header, frame.Header), header
        body = b""
        while len(body) < header.body_size:
            body_frame = self.frame()
            assert isinstance(body_frame, frame.Body), body_frame
            body += body_frame.fragment
        return method_frame.channel_number, method, body

    def expect(self, channel: int, kind: type) -> Any:
        number, method, _body = self.next_method()
        assert (number, type(method)) == (channel, kind), (number, method)
        return method


@pytest.fixture
def client(broker: ThreadedBroker) -> Iterator[FrameClient]:
    raw = FrameClient(broker.port)
    yield raw
    raw.close()


def _confirmed_by(ack: Any, already: set[int]) -> set[int]:
    """The publish tags an ack confirms; RabbitMQ may ack out of order, so not a simple range."""
    if not ack.multiple:
        return {ack.delivery_tag}
    return set(range(1, ack.delivery_tag + 1)) - already


def _declare(client: FrameClient, channel: int, queue: str) -> None:
    client.call(channel, spec.Queue.Declare(queue=queue), spec.Queue.DeclareOk)


@pytest.mark.parametrize("size", SIZES)
def test_in_confirm_mode_each_return_precedes_the_ack_of_its_publish(
    client: FrameClient, size: int
) -> None:
    client.open_channel(1)
    client.call(1, spec.Confirm.Select(), spec.Confirm.SelectOk)
    _declare(client, 1, "routable")
    body = _body(size)
    # Publishes 1, 3 and 5 are unroutable; all five go in one burst, as a fast publisher's would.
    keys = ["nowhere", "routable", "nowhere", "routable", "nowhere"]
    client.sock.sendall(
        b"".join(client.publish_bytes(1, key, body, mandatory=True) for key in keys)
    )

    returned_before_ack: list[int] = []  # publish numbers, by counting returns in order
    unroutable = iter(number for number, key in enumerate(keys, 1) if key == "nowhere")
    acked: set[int] = set()
    while len(acked) < len(keys):
        _channel, method, content = client.next_method()
        if isinstance(method, spec.Basic.Return):
            assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
            assert (method.exchange, method.routing_key) == ("", "nowhere")
            assert content == body
            number = next(unroutable)
            assert number not in acked, "a return must come before the ack of its publish"
            returned_before_ack.append(number)
        else:
            assert isinstance(method, spec.Basic.Ack)
            acked.update(_confirmed_by(method, acked))
    assert acked == {1, 2, 3, 4, 5}
    assert returned_before_ack == [1, 3, 5]
    # Nothing else was on its way: the next frame is the reply to this round trip.
    client.call(1, spec.Basic.Qos(prefetch_count=0), spec.Basic.QosOk)


def test_confirms_cover_exactly_tags_1_to_n(client: FrameClient) -> None:
    client.open_channel(1)
    client.call(1, spec.Confirm.Select(), spec.Confirm.SelectOk)
    _declare(client, 1, "confirmed")
    count = 50
    client.sock.sendall(b"".join(client.publish_bytes(1, "confirmed", b"m") for _ in range(count)))
    acked: set[int] = set()
    while len(acked) < count:
        ack = client.expect(1, spec.Basic.Ack)
        newly = _confirmed_by(ack, acked)
        assert newly, f"ack {ack} confirms nothing new"
        acked.update(newly)
    assert acked == set(range(1, count + 1))
    client.call(1, spec.Basic.Qos(prefetch_count=0), spec.Basic.QosOk)


def test_server_generates_amq_ctag_consumer_tags(client: FrameClient) -> None:
    client.open_channel(1)
    _declare(client, 1, "tagged")
    first = client.call(1, spec.Basic.Consume(queue="tagged"), spec.Basic.ConsumeOk)
    second = client.call(1, spec.Basic.Consume(queue="tagged"), spec.Basic.ConsumeOk)
    assert first.consumer_tag.startswith("amq.ctag-")
    assert second.consumer_tag.startswith("amq.ctag-")
    assert first.consumer_tag != second.consumer_tag
    client.sock.sendall(client.publish_bytes(1, "tagged", b""))
    deliver = client.expect(1, spec.Basic.Deliver)
    assert deliver.consumer_tag == first.consumer_tag
    assert deliver.delivery_tag == 1


def test_cancel_of_an_unknown_tag_is_still_answered_with_cancel_ok(client: FrameClient) -> None:
    client.open_channel(1)
    cancel_ok = client.call(1, spec.Basic.Cancel(consumer_tag="nope"), spec.Basic.CancelOk)
    assert cancel_ok.consumer_tag == "nope"


def test_cancel_ok_comes_after_the_last_delivery_and_nothing_follows(client: FrameClient) -> None:
    client.open_channel(1)
    _declare(client, 1, "cancelled")
    tag = client.call(1, spec.Basic.Consume(queue="cancelled"), spec.Basic.ConsumeOk).consumer_tag
    client.sock.sendall(client.publish_bytes(1, "cancelled", _body(300_000)))
    _channel, deliver, content = client.next_method()
    assert isinstance(deliver, spec.Basic.Deliver) and len(content or b"") == 300_000
    assert (
        client.call(1, spec.Basic.Cancel(consumer_tag=tag), spec.Basic.CancelOk).consumer_tag == tag
    )
    client.sock.sendall(client.publish_bytes(1, "cancelled", b"after"))
    declared = client.call(
        1, spec.Queue.Declare(queue="cancelled", passive=True), spec.Queue.DeclareOk
    )
    assert declared.message_count == 1  # waiting in the queue, not sent to the cancelled consumer


def test_mandatory_return_in_a_transaction_comes_at_commit_before_commit_ok(
    client: FrameClient,
) -> None:
    client.open_channel(1)
    client.call(1, spec.Tx.Select(), spec.Tx.SelectOk)
    client.sock.sendall(client.publish_bytes(1, "nowhere", b"t", mandatory=True))
    # Not routed yet, so not returned yet: the next frame answers this round trip.
    client.call(1, spec.Basic.Qos(prefetch_count=0), spec.Basic.QosOk)
    client.send(1, spec.Tx.Commit())
    _channel, returned, content = client.next_method()
    assert isinstance(returned, spec.Basic.Return) and content == b"t"
    client.expect(1, spec.Tx.CommitOk)
