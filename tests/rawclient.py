"""A raw AMQP test client on trio: our own codec, arbitrary bytes out, decoded frames in.

For the protocol tests that pika would refuse to send (bad headers, broken frames, content out of
order) and for the trio-layer tests that need a client which misbehaves on purpose (stays silent,
stops reading). It checks nothing itself: tests assert on the frames it returns.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import trio

from amqp_lite.wire import methods
from amqp_lite.wire.frames import (
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    FrameDecoder,
    HeartbeatFrame,
    MethodFrame,
    encode_content,
    encode_method,
)

READ_SIZE = 256 * 1024
# Generous (and above the server's 10 s handshake timeout, for tests on a MockClock): a
# broker that does not answer fails the test, it does not hang it.
TIMEOUT = 20.0


class Closed(Exception):
    """The server closed the socket while a frame was expected."""


class RawClient:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder(frame_max=0, client=True)  # the client side takes any size
        self.frame_max = 131072
        self.heartbeats_seen = 0

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> RawClient:
        return cls(await trio.open_tcp_stream(host, port))

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def abort(self) -> None:
        """Vanish: close with a TCP reset (SO_LINGER 0), as a killed client's kernel may."""
        self.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.stream.aclose()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    # -- out -------------------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send_method(self, channel: int, method: Any) -> None:
        await self.send(encode_method(channel, method))

    async def publish(
        self, channel: int, routing_key: str, body: bytes, exchange: str = "", **flags: Any
    ) -> None:
        """basic.publish + header + body frames in one write."""
        method = methods.BasicPublish(exchange=exchange, routing_key=routing_key, **flags)
        await self.send(
            encode_method(channel, method) + encode_content(channel, 60, body, self.frame_max)
        )

    async def heartbeat(self) -> None:
        await self.send(HEARTBEAT_FRAME)

    # -- in --------------------------------------------------------------------------------------

    async def receive_raw(self) -> bytes:
        """Whatever bytes arrive next (b"" at end of stream), bypassing the frame decoder."""
        with trio.fail_after(TIMEOUT):
            try:
                return await self.stream.receive_some(READ_SIZE)
            except trio.BrokenResourceError:  # reset: RabbitMQ hangs up that way after a bad header
                return b""

    async def read_raw_until_eof(self) -> bytes:
        chunks = []
        while chunk := await self.receive_raw():
            chunks.append(chunk)
        return b"".join(chunks)

    async def next_frame(self, *, skip_heartbeats: bool = True, timeout: float = TIMEOUT) -> Any:
        """The next frame from the server; raises `Closed` at end of stream."""
        with trio.fail_after(timeout):
            while True:
                for frame in self.decoder.frames():
                    if isinstance(frame, HeartbeatFrame):
                        self.heartbeats_seen += 1
                        if skip_heartbeats:
                            continue
                    return frame
                try:
                    data = await self.stream.receive_some(READ_SIZE)
                except trio.BrokenResourceError:  # connection reset
                    data = b""
                if not data:
                    raise Closed("server closed the connection")
                self.decoder.feed(data)

    async def expect(self, method_class: type, channel: int | None = None) -> Any:
        """The next frame must be `method_class` (on `channel` if given); returns the method."""
        frame = await self.next_frame()
        assert isinstance(frame, MethodFrame), frame
        assert isinstance(frame.method, method_class), frame
        if channel is not None:
            assert frame.channel == channel, frame
        return frame.method

    async def expect_content(self) -> tuple[Any, bytes]:
        """Header + body frames of one content: (properties, body)."""
        header = await self.next_frame()
        body = b""
        while len(body) < header.body_size:
            body += (await self.next_frame()).payload
        return header.properties, body

    async def frames_until_eof(self) -> list[Any]:
        """Every frame up to the server closing the socket (heartbeats skipped)."""
        frames = []
        while True:
            try:
                frames.append(await self.next_frame())
            except Closed:
                return frames

    async def expect_connection_close(self, reply_code: int, *, close_ok: bool = True) -> Any:
        """connection.close with `reply_code`; answers close-ok and checks the socket closes."""
        close = await self.expect(methods.ConnectionClose, 0)
        assert close.reply_code == reply_code, close
        if close_ok:
            await self.send_method(0, methods.ConnectionCloseOk())
        assert await self.frames_until_eof() == []
        return close

    # -- the usual sequences ---------------------------------------------------------------------

    async def handshake(
        self,
        *,
        vhost: str = "/",
        heartbeat: int = 0,
        frame_max: int = 0,
        channel_max: int = 0,
        mechanism: str = "PLAIN",
        response: bytes = b"\x00guest\x00guest",
        client_properties: dict[str, Any] | None = None,
    ) -> tuple[Any, Any]:
        """Protocol header to open-ok; 0 for heartbeat/frame_max/channel_max takes the server's.

        Returns (connection.start, connection.tune) as the server sent them.
        """
        await self.send(PROTOCOL_HEADER)
        start = await self.expect(methods.ConnectionStart, 0)
        await self.send_method(
            0,
            methods.ConnectionStartOk(
                client_properties=client_properties or {"product": "rawclient"},
                mechanism=mechanism,
                response=response,
                locale="en_US",
            ),
        )
        tune = await self.expect(methods.ConnectionTune, 0)
        self.frame_max = frame_max or tune.frame_max
        await self.send_method(
            0,
            methods.ConnectionTuneOk(
                channel_max=channel_max or tune.channel_max,
                frame_max=self.frame_max,
                heartbeat=heartbeat,
            ),
        )
        await self.send_method(0, methods.ConnectionOpen(virtual_host=vhost))
        await self.expect(methods.ConnectionOpenOk, 0)
        return start, tune

    async def open_channel(self, channel: int = 1) -> None:
        await self.send_method(channel, methods.ChannelOpen())
        await self.expect(methods.ChannelOpenOk, channel)

    async def declare_queue(self, channel: int, name: str, **flags: Any) -> Any:
        await self.send_method(channel, methods.QueueDeclare(queue=name, **flags))
        return await self.expect(methods.QueueDeclareOk, channel)

    async def get(self, channel: int, queue: str) -> bytes | None:
        """basic.get with no-ack: the body, or None for get-empty."""
        await self.send_method(channel, methods.BasicGet(queue=queue, no_ack=True))
        frame = await self.next_frame()
        if isinstance(frame.method, methods.BasicGetEmpty):
            return None
        assert isinstance(frame.method, methods.BasicGetOk), frame
        _properties, body = await self.expect_content()
        return body

    async def close(self) -> None:
        """A clean client-side close: connection.close, close-ok, end of stream."""
        await self.send_method(0, methods.ConnectionClose(reply_code=200, reply_text="bye"))
        await self.expect(methods.ConnectionCloseOk, 0)
        assert await self.frames_until_eof() == []


async def connected(port: int, **handshake: Any) -> RawClient:
    """A client past the handshake with channel 1 open."""
    client = await RawClient.connect(port)
    await client.handshake(**handshake)
    await client.open_channel(1)
    return client
