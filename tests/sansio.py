"""An in-memory client for the sans-IO core, in the manner of h11's tests.

A `Peer` builds a `ServerConnection` on a `Node`, feeds it bytes and decodes what the connection
wants to send back into frames, and those into methods and messages. No sockets, threads or
event loop: a core test runs in milliseconds, and what it checks is exactly what would go on
the wire.

    peer = Peer()
    peer.handshake()
    peer.open_channel(1)
    peer.call(1, methods.QueueDeclare(queue="q"), methods.QueueDeclareOk)
    peer.publish(1, "q", b"hello")
    [message] = peer.receive()  # nothing: no consumer yet

`receive()` returns what the connection sent since the last call, each item a `Method` or, for
methods that carry content (deliver, get-ok, return), a `Message` with its properties and body.
"""

from __future__ import annotations

from typing import Any

import attrs

from amqp_lite.connection import DEFAULT_LIMITS, ServerConnection
from amqp_lite.limits import Limits
from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import (
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    BodyFrame,
    Frame,
    FrameDecoder,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    encode_content,
    encode_method,
)
from vhosts import Node


@attrs.frozen
class Message:
    """A content-bearing method as the client sees it: the method, then header and body."""

    channel: int
    method: Any
    properties: Properties
    body: bytes


@attrs.frozen
class Method:
    channel: int
    method: Any


Received = Method | Message


class Peer:
    def __init__(
        self, node: Node | None = None, *, heartbeat: int = 60, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.node = node if node is not None else Node()
        self.connection = ServerConnection(self.node, heartbeat=heartbeat, limits=limits)
        self.frame_max = 131072
        self.heartbeats = 0  # heartbeat frames the connection sent, not in `receive()`
        self._decoder = FrameDecoder(frame_max=0, client=True)  # the client side takes any size
        self._frames: list[Frame] = []
        self._output_wakeups = 0
        self.connection.on_output = self._count_wakeup

    def _count_wakeup(self) -> None:
        self._output_wakeups += 1

    # -- bytes and frames ------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Hand `data` to the connection, as one read from the socket."""
        self.connection.receive_data(data)

    def frames(self) -> list[Frame]:
        """Every frame the connection wants to send now (heartbeats counted, not returned)."""
        self._decoder.feed(self.connection.data_to_send())
        frames = []
        for frame in self._decoder.frames():
            if isinstance(frame, HeartbeatFrame):
                self.heartbeats += 1
            else:
                frames.append(frame)
        return frames

    def receive(self) -> list[Received]:
        """What the connection sent since the last call, as methods and messages."""
        received: list[Received] = []
        frames = self._frames + self.frames()
        self._frames = []
        i = 0
        while i < len(frames):
            frame = frames[i]
            assert isinstance(frame, MethodFrame), f"content frame without its method: {frame}"
            if not frame.method.HAS_CONTENT:
                received.append(Method(frame.channel, frame.method))
                i += 1
                continue
            # The header and body frames follow on the same channel (other channels' frames
            # never come between them on the wire: the server writes a message in one piece).
            header = frames[i + 1] if i + 1 < len(frames) else None
            if header is None:
                self._frames = frames[i:]  # the rest is still to come
                break
            assert isinstance(header, HeaderFrame) and header.channel == frame.channel, header
            body, j = b"", i + 2
            while len(body) < header.body_size:
                part = frames[j]
                assert isinstance(part, BodyFrame) and part.channel == frame.channel, part
                body += part.payload
                j += 1
            received.append(Message(frame.channel, frame.method, header.properties, body))
            i = j
        return received

    def methods(self) -> list[Any]:
        """What `receive` returns, reduced to the methods (content dropped)."""
        return [item.method for item in self.receive()]

    # -- sending methods -------------------------------------------------------------------------

    def send_method(self, channel: int, method: Any) -> None:
        self.send(encode_method(channel, method))

    def call(self, channel: int, method: Any, reply: type) -> Any:
        """Send `method`; the one thing sent back must be `reply` on `channel`. Returns it."""
        self.send_method(channel, method)
        received = self.receive()
        assert len(received) == 1, received
        [item] = received
        assert isinstance(item.method, reply) and item.channel == channel, item
        return item.method

    def publish_bytes(
        self,
        channel: int,
        routing_key: str,
        body: bytes = b"",
        *,
        exchange: str = "",
        properties: Properties | None = None,
        **flags: Any,
    ) -> bytes:
        """basic.publish + header + body, encoded (several can then go in one `send`)."""
        method = methods.BasicPublish(exchange=exchange, routing_key=routing_key, **flags)
        return encode_method(channel, method) + encode_content(
            channel, 60, body, self.frame_max, properties
        )

    def publish(self, channel: int, routing_key: str, body: bytes = b"", **kwargs: Any) -> None:
        self.send(self.publish_bytes(channel, routing_key, body, **kwargs))

    def heartbeat(self) -> None:
        self.send(HEARTBEAT_FRAME)

    # -- the usual sequences ---------------------------------------------------------------------

    def handshake(
        self,
        *,
        vhost: str = "/",
        heartbeat: int = 0,
        frame_max: int = 0,
        response: bytes = b"\x00guest\x00guest",
        capabilities: dict[str, bool] | None = None,
    ) -> tuple[Any, Any]:
        """Protocol header to open-ok; 0 for heartbeat or frame_max takes the server's.

        Returns (connection.start, connection.tune) as the connection sent them.
        """
        self.send(PROTOCOL_HEADER)
        [start] = self.methods()
        assert isinstance(start, methods.ConnectionStart), start
        if capabilities is None:
            capabilities = {"consumer_cancel_notify": True, "connection.blocked": True}
        start_ok = methods.ConnectionStartOk(
            client_properties={"product": "sansio", "capabilities": capabilities},
            mechanism="PLAIN",
            response=response,
            locale="en_US",
        )
        tune = self.call(0, start_ok, methods.ConnectionTune)
        self.frame_max = frame_max or tune.frame_max
        self.send_method(
            0,
            methods.ConnectionTuneOk(
                channel_max=tune.channel_max, frame_max=self.frame_max, heartbeat=heartbeat
            ),
        )
        self.call(0, methods.ConnectionOpen(virtual_host=vhost), methods.ConnectionOpenOk)
        return start, tune

    def open_channel(self, channel: int = 1) -> None:
        self.call(channel, methods.ChannelOpen(), methods.ChannelOpenOk)

    def declare_queue(self, channel: int, name: str, **flags: Any) -> Any:
        return self.call(channel, methods.QueueDeclare(queue=name, **flags), methods.QueueDeclareOk)


def opened(node: Node | None = None, *, limits: Limits = DEFAULT_LIMITS, **handshake: Any) -> Peer:
    """A peer past the handshake, with channel 1 open."""
    peer = Peer(node, limits=limits)
    peer.handshake(**handshake)
    peer.open_channel(1)
    return peer
