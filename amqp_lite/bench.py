"""`amqp-lite bench`: measure any AMQP 0-9-1 broker with a lean client on our own wire codec.

Three figures, each on fresh queues that are deleted afterwards:

  confirmed publish  N messages pipelined under publisher confirms, at most `window` unconfirmed;
                     rate = N / time from the first publish to the last confirm.
  consume            the same N messages with basic.qos `prefetch` and manual acks (multiple,
                     every `ack_every` deliveries); rate = N / time from basic.consume to the
                     last delivery.
  round trip         one message at a time from a publisher connection to an auto-ack consumer
                     on another connection; median and p99 of publish-to-delivery.
  connections        (with `connections=N`) N connections opened, OPEN_CONCURRENCY at a time,
                     and held until the last is open: the time that takes.

An amqps:// URL (or `ssl_context`) measures over TLS.

With `backlog`, it measures a backlog instead: N messages published (confirmed) to a fresh
queue with no consumer, then drained by one consumer; it reports both rates and the broker's
resident memory (read from /proc/<pid>/status, given the broker's process id) with the backlog
queued, sampled every second throughout, and after the drain.

The client is kept cheap so that it measures the broker, not itself: publishes are pre-encoded
and written in batches, and the consume loop splits frames itself and reads only the delivery
tag of basic.deliver (the general method decoder costs ~5 us a delivery, which would cap the
client near the rates being measured).  Client CPU per phase is printed as a sanity check.
"""

from __future__ import annotations

import contextlib
import math
import ssl
import statistics
import struct
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import trio

from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import PROTOCOL_HEADER, encode_content, encode_method
from amqp_lite.wire.properties import encode_properties

__all__ = [
    "BacklogResult",
    "BenchError",
    "BenchResult",
    "measure",
    "measure_backlog",
    "run_backlog",
    "run_bench",
]

_unpack_from = struct.unpack_from
_FRAME_METHOD, _FRAME_HEADER, _FRAME_BODY, _FRAME_END = 1, 2, 3, 0xCE
_DELIVER_ID = struct.pack(">HH", 60, 60)
_BASIC_CLASS = 60
_FRAME_MAX = 131072
_PUBLISH_BATCH = 256  # publishes per send_all: big enough to amortise the syscall
_WARMUP = 100  # round trips not counted (first-use costs in both client and broker)
OPEN_CONCURRENCY = 50  # connections being opened at once in the connections measurement


class BenchError(Exception):
    """The broker refused something or the connection went away."""


Frame = tuple[int, int, bytes]  # (frame type, channel, payload)


class _Connection:
    """One AMQP connection: raw frame splitting on the way in, pre-encoded bytes on the way out."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.frame_max = _FRAME_MAX
        self._buf = b""
        self._pending: deque[Frame] = deque()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send_method(self, channel: int, method: Any) -> None:
        await self.stream.send_all(encode_method(channel, method))

    async def read_batch(self) -> list[Frame] | deque[Frame]:
        """Every complete frame from the next read (or frames left over by `expect`)."""
        if self._pending:
            pending, self._pending = self._pending, deque()
            return pending
        while True:
            data = bytes(await self.stream.receive_some(262144))  # the same object if bytes
            if not data:
                raise BenchError("the broker closed the connection")
            buf = self._buf + data if self._buf else data
            frames: list[Frame] = []
            pos, n = 0, len(buf)
            while n - pos >= 7:
                ftype, channel, size = _unpack_from(">BHI", buf, pos)
                end = pos + 7 + size
                if end >= n:
                    break
                if buf[end] != _FRAME_END:
                    raise BenchError(f"bad frame end {buf[end]:#x} from the broker")
                frames.append((ftype, channel, buf[pos + 7 : end]))
                pos = end + 1
            self._buf = buf[pos:]
            if frames:
                return frames

    async def expect(self, channel: int, cls: type) -> Any:
        """The next method on `channel`, which must be a `cls`.

        Other frames (deliveries on other channels, say) are kept for the next `read_batch`,
        so a consumer never loses a message to a concurrent RPC."""
        held: list[Frame] = []
        while True:
            if not self._pending:
                self._pending.extend(await self.read_batch())
            frame = self._pending.popleft()
            ftype, ch, payload = frame
            if ftype == _FRAME_METHOD and payload[:4] != _DELIVER_ID:
                method = methods.decode_method(payload)
                _check_close(method)
                if ch == channel and isinstance(method, cls):
                    self._pending.extendleft(reversed(held))
                    return method
                if ch == channel and method.SYNCHRONOUS:
                    raise BenchError(f"expected {cls.__name__}, got {method.NAME}")
            held.append(frame)

    async def rpc(self, channel: int, method: Any, reply: type) -> Any:
        await self.send_method(channel, method)
        return await self.expect(channel, reply)

    async def close(self) -> None:
        with trio.move_on_after(5):
            close = methods.ConnectionClose(reply_code=200, reply_text="bye")
            await self.rpc(0, close, methods.ConnectionCloseOk)
        await self.stream.aclose()


def _check_close(method: Any) -> None:
    if isinstance(method, (methods.ConnectionClose, methods.ChannelClose)):
        raise BenchError(f"{method.NAME} {method.reply_code} {method.reply_text}")


def tls_context(url: str, ssl_context: ssl.SSLContext | None) -> ssl.SSLContext | None:
    """The TLS context to measure `url` with: the one given, or for an amqps:// URL Python's
    default (the system's CAs); None for plain AMQP."""
    scheme = urlsplit(url).scheme
    if scheme not in ("amqp", "amqps"):
        raise BenchError(f"only amqp:// and amqps:// URLs, not {url!r}")
    if ssl_context is None and scheme == "amqps":
        return ssl.create_default_context()
    return ssl_context


async def _connect(url: str, tls: ssl.SSLContext | None = None) -> _Connection:
    parts = urlsplit(url)
    user = unquote(parts.username or "guest")
    password = unquote(parts.password or "guest")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    vhost = unquote(path) if path else "/"  # as pika: amqp://host/ is vhost "/"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (5671 if tls is not None else 5672)
    tcp = await trio.open_tcp_stream(host, port)
    stream: trio.abc.Stream = tcp
    if tls is not None:
        stream = trio.SSLStream(tcp, tls, server_hostname=host)
    conn = _Connection(stream)
    try:
        await conn.send(PROTOCOL_HEADER)
        start = await conn.expect(0, methods.ConnectionStart)
        if b"PLAIN" not in bytes(start.mechanisms).split():
            raise BenchError(f"the broker does not offer PLAIN: {start.mechanisms!r}")
        properties = {
            "product": "amqp-lite bench",
            "capabilities": {
                # so that a bad password is a connection.close 403, not a dropped socket
                "authentication_failure_close": True,
                "publisher_confirms": True,
            },
        }
        response = b"\0" + user.encode() + b"\0" + password.encode()
        await conn.send_method(
            0,
            methods.ConnectionStartOk(
                client_properties=properties, mechanism="PLAIN", response=response, locale="en_US"
            ),
        )
        tune = await conn.expect(0, methods.ConnectionTune)
        conn.frame_max = min(tune.frame_max or _FRAME_MAX, _FRAME_MAX)
        # heartbeat 0: a run is short and a heartbeat task would only add noise
        await conn.send_method(
            0,
            methods.ConnectionTuneOk(
                channel_max=tune.channel_max or 2047, frame_max=conn.frame_max, heartbeat=0
            ),
        )
        await conn.rpc(0, methods.ConnectionOpen(virtual_host=vhost), methods.ConnectionOpenOk)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return conn


DURABLE_TYPES = ("quorum", "stream")  # queue types that are durable or nothing
FROM_FIRST = {"x-stream-offset": "first"}  # how a stream is read from its start


async def _declare(
    conn: _Connection, channel: int, queue: str, durable: bool, queue_type: str | None = None
) -> None:
    """A queue for the run; of `queue_type` (x-queue-type) when given, durable if it must be."""
    arguments = {"x-queue-type": queue_type} if queue_type else {}
    declare = methods.QueueDeclare(
        queue=queue, durable=durable or queue_type in DURABLE_TYPES, arguments=arguments
    )
    await conn.rpc(channel, declare, methods.QueueDeclareOk)


class _Confirms:
    """Publisher-confirm bookkeeping: tags run 1, 2, ...; acks may be multiple or out of order."""

    def __init__(self) -> None:
        self.low = 0  # every tag <= low is settled
        self.above: set[int] = set()  # settled tags > low
        self.settled = 0
        self.nacked = 0

    def settle(self, tag: int, multiple: bool, nack: bool) -> None:
        if multiple:
            if tag <= self.low:
                return
            newly = tag - self.low - sum(1 for t in self.above if t <= tag)
            self.above = {t for t in self.above if t > tag}
            self.low = tag
        else:
            if tag <= self.low or tag in self.above:
                return
            self.above.add(tag)
            newly = 1
        while self.low + 1 in self.above:
            self.above.discard(self.low + 1)
            self.low += 1
        self.settled += newly
        if nack:
            self.nacked += newly


def _message(channel: int, queue: str, body: bytes, raw_properties: bytes, frame_max: int) -> bytes:
    return encode_method(
        channel, methods.BasicPublish(exchange="", routing_key=queue)
    ) + encode_content(channel, _BASIC_CLASS, body, frame_max, raw_properties=raw_properties)


@dataclass
class BenchResult:
    url: str
    messages: int
    size: int
    persistent: bool
    window: int
    prefetch: int
    ack_every: int
    publish_seconds: float = 0.0
    publish_cpu: float = 0.0  # client CPU seconds
    nacked: int = 0
    consumed: int = 0
    consume_seconds: float = 0.0
    consume_cpu: float = 0.0
    round_trips_us: list[float] = field(default_factory=list)
    queue_type: str | None = None  # x-queue-type of the queues, when given
    connections: int = 0
    connections_seconds: float = 0.0

    @property
    def publish_rate(self) -> float:
        return self.messages / self.publish_seconds if self.publish_seconds else 0.0

    @property
    def consume_rate(self) -> float:
        return self.consumed / self.consume_seconds if self.consume_seconds else 0.0

    @property
    def median_us(self) -> float:
        return statistics.median(self.round_trips_us) if self.round_trips_us else 0.0

    @property
    def p99_us(self) -> float:
        ordered = sorted(self.round_trips_us)
        return ordered[math.ceil(0.99 * len(ordered)) - 1] if ordered else 0.0

    def report(self) -> str:
        def cpu(used: float, wall: float) -> str:
            return f"client cpu {100 * used / wall:.0f}%" if wall else ""

        kind = "persistent, durable queue" if self.persistent else "transient"
        if self.queue_type:
            kind += f", {self.queue_type} queue"
        return "\n".join(
            [
                f"amqp-lite bench  {self.url}",
                f"  {self.messages} messages of {self.size} B ({kind}), confirm window "
                f"{self.window}, prefetch {self.prefetch}, ack every {self.ack_every}",
                f"  confirmed publish: {self.publish_rate:10,.0f} msg/s  "
                f"({self.publish_seconds:.2f} s, {self.nacked} nacked, "
                f"{cpu(self.publish_cpu, self.publish_seconds)})",
                f"  consume:           {self.consume_rate:10,.0f} msg/s  "
                f"({self.consumed} in {self.consume_seconds:.2f} s, "
                f"{cpu(self.consume_cpu, self.consume_seconds)})",
                f"  round trip:        median {self.median_us:.0f} us, p99 {self.p99_us:.0f} us  "
                f"({len(self.round_trips_us)} messages one at a time, "
                f"{'acking' if self.queue_type == 'stream' else 'auto-ack'} consumer)"
                if self.round_trips_us
                else "  round trip:        skipped",
                f"  connections:       {self.connections} opened in "
                f"{self.connections_seconds:.2f} s "
                f"({1000 * self.connections_seconds / self.connections:.2f} ms each, "
                f"{OPEN_CONCURRENCY} at a time, all held open)"
                if self.connections
                else "  connections:       skipped",
            ]
        )


async def _publish_confirmed(
    conn: _Connection, queue: str, result: BenchResult, body: bytes, raw_properties: bytes
) -> None:
    channel = 1
    await conn.rpc(channel, methods.ChannelOpen(), methods.ChannelOpenOk)
    await conn.rpc(channel, methods.ConfirmSelect(), methods.ConfirmSelectOk)
    message = _message(channel, queue, body, raw_properties, conn.frame_max)
    n, window = result.messages, result.window
    confirms = _Confirms()
    room = trio.Event()
    sent = 0

    async def writer() -> None:
        nonlocal sent, room
        while sent < n:
            free = window - (sent - confirms.settled)
            if free <= 0:
                room = trio.Event()
                await room.wait()
                continue
            k = min(free, n - sent, _PUBLISH_BATCH)
            sent += k
            await conn.send(message * k)

    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            while confirms.settled < n:
                for ftype, ch, payload in await conn.read_batch():
                    if ftype != _FRAME_METHOD:
                        continue
                    method = methods.decode_method(payload)
                    if ch == channel and isinstance(method, methods.BasicAck):
                        confirms.settle(method.delivery_tag, method.multiple, False)
                    elif ch == channel and isinstance(method, methods.BasicNack):
                        confirms.settle(method.delivery_tag, method.multiple, True)
                    else:
                        _check_close(method)
                room.set()
    except BaseExceptionGroup as group:
        # the broker's reason (a BenchError here) says more than the writer's broken pipe
        reasons, _ = group.split(BenchError)
        first = (reasons or group).exceptions[0]
        if isinstance(first, BaseExceptionGroup) or not isinstance(first, Exception):
            raise
        raise first from None
    result.publish_seconds = time.perf_counter() - t0
    result.publish_cpu = time.process_time() - cpu0
    result.nacked = confirms.nacked


async def _consume(conn: _Connection, queue: str, result: BenchResult, stream: bool) -> None:
    """Consume what was published; a stream is read from its first offset (and its count is
    what was confirmed: RabbitMQ's declare-ok counts a stream's messages only now and then)."""
    channel = 2
    await conn.rpc(channel, methods.ChannelOpen(), methods.ChannelOpenOk)
    await conn.rpc(channel, methods.BasicQos(prefetch_count=result.prefetch), methods.BasicQosOk)
    if stream:
        expected = result.messages - result.nacked
    else:  # what is really there (nacked publishes are not): the loop below cannot wait forever
        passive = methods.QueueDeclare(queue=queue, passive=True)
        expected = (await conn.rpc(channel, passive, methods.QueueDeclareOk)).message_count
    consume = methods.BasicConsume(
        queue=queue, consumer_tag="bench", arguments=FROM_FIRST if stream else {}
    )
    cpu0, t0 = time.process_time(), time.perf_counter()
    await conn.rpc(channel, consume, methods.BasicConsumeOk)
    received = unacked = last_tag = 0
    body_left = 0
    ack_every = result.ack_every
    while received < expected:
        acks: list[bytes] = []
        for ftype, _ch, payload in await conn.read_batch():
            done = False
            if ftype == _FRAME_BODY:
                body_left -= len(payload)
                done = body_left <= 0
            elif ftype == _FRAME_HEADER:
                body_left = _unpack_from(">Q", payload, 4)[0]
                done = body_left == 0
            elif ftype == _FRAME_METHOD:
                if payload[:4] == _DELIVER_ID:  # skip the consumer tag (a shortstr)
                    last_tag = _unpack_from(">Q", payload, 5 + payload[4])[0]
                else:
                    _check_close(methods.decode_method(payload))
            if done:
                received += 1
                unacked += 1
                if unacked >= ack_every or received == expected:
                    acks.append(
                        encode_method(
                            channel, methods.BasicAck(delivery_tag=last_tag, multiple=True)
                        )
                    )
                    unacked = 0
        if acks:
            await conn.send(b"".join(acks))
    result.consume_seconds = time.perf_counter() - t0
    result.consume_cpu = time.process_time() - cpu0
    result.consumed = received
    await conn.rpc(channel, methods.BasicCancel(consumer_tag="bench"), methods.BasicCancelOk)


async def _open_connections(url: str, tls: ssl.SSLContext | None, count: int) -> float:
    """Seconds to open `count` connections (OPEN_CONCURRENCY at a time), each held until all
    are open; then they are closed."""
    opened: list[_Connection] = []
    limiter = trio.CapacityLimiter(OPEN_CONCURRENCY)

    async def open_one() -> None:
        async with limiter:
            opened.append(await _connect(url, tls))

    started = time.perf_counter()
    try:
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(open_one)
        return time.perf_counter() - started
    finally:
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                for conn in opened:
                    nursery.start_soon(conn.close)


async def _round_trips(
    url: str,
    tls: ssl.SSLContext | None,
    publisher: _Connection,
    queue: str,
    count: int,
    body: bytes,
    raw_properties: bytes,
    durable: bool,
    queue_type: str | None = None,
) -> list[float]:
    consumer = await _connect(url, tls)
    stream = queue_type == "stream"  # its consumers ack, with a prefetch
    try:
        await consumer.rpc(1, methods.ChannelOpen(), methods.ChannelOpenOk)
        await _declare(consumer, 1, queue, durable, queue_type)
        if stream:
            await consumer.rpc(1, methods.BasicQos(prefetch_count=10), methods.BasicQosOk)
        consume = methods.BasicConsume(queue=queue, consumer_tag="rtt", no_ack=not stream)
        await consumer.rpc(1, consume, methods.BasicConsumeOk)
        channel = 3
        await publisher.rpc(channel, methods.ChannelOpen(), methods.ChannelOpenOk)
        message = _message(channel, queue, body, raw_properties, publisher.frame_max)
        times: list[float] = []
        for i in range(count + _WARMUP):
            t0 = time.perf_counter_ns()
            await publisher.send(message)
            await _one_delivery(consumer)
            if i >= _WARMUP:
                times.append((time.perf_counter_ns() - t0) / 1000)
            if stream:
                await consumer.send_method(1, methods.BasicAck(delivery_tag=i + 1))
        return times
    finally:
        await consumer.close()


async def _one_delivery(conn: _Connection) -> None:
    """Wait until one whole delivery has arrived; one at a time, so nothing else is in flight."""
    body_left = -1
    while True:
        for ftype, _ch, payload in await conn.read_batch():
            if ftype == _FRAME_HEADER:
                body_left = _unpack_from(">Q", payload, 4)[0]
            elif ftype == _FRAME_BODY:
                body_left -= len(payload)
            elif ftype == _FRAME_METHOD and payload[:4] != _DELIVER_ID:
                _check_close(methods.decode_method(payload))
            if body_left == 0:
                return


async def measure(
    url: str,
    *,
    messages: int = 20000,
    size: int = 100,
    window: int = 1000,
    prefetch: int = 500,
    ack_every: int = 50,
    latency_messages: int = 2000,
    persistent: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    connections: int = 0,
    queue_type: str | None = None,
) -> BenchResult:
    """Run the measurements against the broker at `url` and return the figures; `queue_type`
    ("quorum", "stream") declares the queues with that x-queue-type (such queues are durable;
    a stream is consumed from its first offset, and its round-trip consumer acks)."""
    tls = tls_context(url, ssl_context)
    parts = urlsplit(url)
    shown = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()
    result = BenchResult(shown, messages, size, persistent, window, prefetch, ack_every)
    result.queue_type = queue_type
    body = b"x" * size
    raw_properties = encode_properties(Properties(delivery_mode=2) if persistent else None)
    stem = f"amqp-lite-bench-{uuid.uuid4().hex[:12]}"
    queue, rtt_queue = stem, stem + "-rtt"
    conn = await _connect(url, tls)
    try:
        await conn.rpc(4, methods.ChannelOpen(), methods.ChannelOpenOk)  # for setup and cleanup
        await _declare(conn, 4, queue, persistent, queue_type)
        try:
            await _publish_confirmed(conn, queue, result, body, raw_properties)
            await _consume(conn, queue, result, queue_type == "stream")
            if latency_messages > 0:
                result.round_trips_us = await _round_trips(
                    url,
                    tls,
                    conn,
                    rtt_queue,
                    latency_messages,
                    body,
                    raw_properties,
                    persistent,
                    queue_type,
                )
            if connections > 0:
                result.connections = connections
                result.connections_seconds = await _open_connections(url, tls, connections)
        finally:
            with trio.move_on_after(10) as cleanup:
                cleanup.shield = True
                for q in (queue, rtt_queue):
                    try:
                        await conn.rpc(4, methods.QueueDelete(queue=q), methods.QueueDeleteOk)
                    except BenchError:  # the failure that got us here is the one to report
                        break
    finally:
        await conn.close()
    return result


@dataclass
class BacklogResult:
    url: str
    messages: int
    size: int
    persistent: bool
    arguments: dict[str, Any]
    broker_pid: int | None
    publish: BenchResult
    rss_queued: int | None = None  # bytes, with the backlog queued
    rss_peak: int | None = None  # the most seen by the sampler, from the start to the end
    rss_drained: int | None = None  # after the drain

    def report(self) -> str:
        kind = "persistent, durable queue" if self.persistent else "transient"
        arguments = ", ".join(f"{k}={v}" for k, v in self.arguments.items()) or "none"
        result = self.publish
        lines = [
            f"amqp-lite bench --backlog  {self.url}",
            f"  {self.messages} messages of {self.size} B ({kind}), queue arguments: {arguments}",
            f"  confirmed publish: {result.publish_rate:10,.0f} msg/s  "
            f"({result.publish_seconds:.1f} s, {result.nacked} nacked)",
            f"  consume backlog:   {result.consume_rate:10,.0f} msg/s  "
            f"({result.consumed} in {result.consume_seconds:.1f} s, prefetch "
            f"{result.prefetch}, ack every {result.ack_every})",
        ]
        if self.broker_pid is None:
            lines.append("  broker memory:     not measured (give --broker-pid)")
        else:
            per_message = ""
            if self.rss_queued is not None and self.rss_drained is not None and self.messages:
                per_message = (
                    f", {(self.rss_queued - self.rss_drained) / self.messages:.0f} B a message "
                    "above the drained figure"
                )
            lines.append(
                f"  broker RSS (pid {self.broker_pid}): {_mb(self.rss_queued)} with the backlog "
                f"queued, {_mb(self.rss_peak)} at most, {_mb(self.rss_drained)} drained"
                f"{per_message}"
            )
        return "\n".join(lines)


def _mb(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:,.0f} MB"


def resident_memory(pid: int) -> int | None:
    """VmRSS of process `pid` in bytes, from /proc (None where that cannot be read)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


async def measure_backlog(
    url: str,
    *,
    messages: int,
    size: int = 100,
    window: int = 1000,
    prefetch: int = 500,
    ack_every: int = 50,
    persistent: bool = False,
    arguments: dict[str, Any] | None = None,
    broker_pid: int | None = None,
    progress: Any = None,
) -> BacklogResult:
    """Publish `messages` to a fresh queue, note the broker's memory, drain it, note it again.

    A stream (x-queue-type=stream among `arguments`) is read from its first offset instead of
    drained: it keeps its messages, and its memory is the figure to watch while it is read."""
    parts = urlsplit(url)
    shown = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()
    arguments = dict(arguments or {})
    publish = BenchResult(shown, messages, size, persistent, window, prefetch, ack_every)
    result = BacklogResult(shown, messages, size, persistent, arguments, broker_pid, publish)
    body = b"x" * size
    raw_properties = encode_properties(Properties(delivery_mode=2) if persistent else None)
    queue = f"amqp-lite-backlog-{uuid.uuid4().hex[:12]}"
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while broker_pid is not None:
            peak = max(peak, resident_memory(broker_pid) or 0)
            await trio.sleep(1)

    stream = arguments.get("x-queue-type") == "stream"  # a log: read from its first offset
    durable = persistent or arguments.get("x-queue-type") in DURABLE_TYPES
    conn = await _connect(url)
    try:
        await conn.rpc(4, methods.ChannelOpen(), methods.ChannelOpenOk)
        declare = methods.QueueDeclare(queue=queue, durable=durable, arguments=arguments)
        await conn.rpc(4, declare, methods.QueueDeclareOk)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sample)
                if progress is not None:
                    nursery.start_soon(_report_progress, progress, broker_pid)
                await _publish_confirmed(conn, queue, publish, body, raw_properties)
                await trio.sleep(1)  # let the broker settle (pages written) before looking
                if broker_pid is not None:
                    result.rss_queued = resident_memory(broker_pid)
                await _consume(conn, queue, publish, stream)
                if broker_pid is not None:
                    result.rss_drained = resident_memory(broker_pid)
                    peak = max(peak, result.rss_queued or 0, result.rss_drained or 0)
                nursery.cancel_scope.cancel()
        finally:
            with trio.move_on_after(60) as cleanup:
                cleanup.shield = True
                with contextlib.suppress(BenchError):  # the failure that got us here says more
                    await conn.rpc(4, methods.QueueDelete(queue=queue), methods.QueueDeleteOk)
    finally:
        await conn.close()
    result.rss_peak = peak or None
    return result


async def _report_progress(progress: Any, broker_pid: int | None) -> None:
    """Every ten seconds, that the run goes on, and the broker's memory (on `progress`)."""
    started = time.perf_counter()
    while True:
        await trio.sleep(10)
        rss = f", broker RSS {_mb(resident_memory(broker_pid))}" if broker_pid else ""
        print(f"  ... {time.perf_counter() - started:.0f} s{rss}", file=progress, flush=True)


def run_backlog(
    url: str,
    messages: int,
    size: int = 100,
    *,
    window: int = 1000,
    prefetch: int = 500,
    ack_every: int = 50,
    persistent: bool = False,
    arguments: dict[str, Any] | None = None,
    broker_pid: int | None = None,
) -> int:
    """`amqp-lite bench --backlog N`: print the figures; 0 on success, 1 otherwise."""

    async def main() -> BacklogResult:
        return await measure_backlog(
            url,
            messages=messages,
            size=size,
            window=window,
            prefetch=prefetch,
            ack_every=ack_every,
            persistent=persistent,
            arguments=arguments,
            broker_pid=broker_pid,
            progress=sys.stderr,
        )

    try:
        result = trio.run(main)
    except (BenchError, OSError, trio.BrokenResourceError) as error:
        print(f"amqp-lite bench: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(result.report())
    return 0


def run_bench(
    url: str,
    messages: int = 20000,
    size: int = 100,
    *,
    window: int = 1000,
    prefetch: int = 500,
    ack_every: int = 50,
    latency_messages: int = 2000,
    persistent: bool = False,
    timeout: float = 300.0,
    ssl_context: ssl.SSLContext | None = None,
    connections: int = 0,
    queue_type: str | None = None,
) -> int:
    """Measure, print the table; 0 on success, 1 (with the reason on stderr) otherwise."""

    async def main() -> BenchResult:
        with trio.fail_after(timeout):
            return await measure(
                url,
                messages=messages,
                size=size,
                window=window,
                prefetch=prefetch,
                ack_every=ack_every,
                latency_messages=latency_messages,
                persistent=persistent,
                ssl_context=ssl_context,
                connections=connections,
                queue_type=queue_type,
            )

    try:
        result = trio.run(main)
    except (
        BenchError,
        OSError,
        ssl.SSLError,
        trio.BrokenResourceError,
        trio.TooSlowError,
    ) as error:
        reason = error.__cause__ or error  # trio wraps a TLS failure in BrokenResourceError
        print(f"amqp-lite bench: {type(reason).__name__}: {reason}", file=sys.stderr)
        return 1
    print(result.report())
    return 0
