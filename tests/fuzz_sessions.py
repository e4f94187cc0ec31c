"""Real client sessions, recorded, cut into frames and mutated: the fuzz test's material.

`record(broker_port)` runs each scripted session below with a real client (pika, py-amqp)
through a recording proxy and returns what each client sent, as a protocol header and a list
of raw frames. `mutate(session, rng)` makes one bad session out of one or two good ones: frame
level (drop, repeat, swap, splice, change the channel, the type, the size, the body size) and
byte level (flip, insert, truncate).
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import struct
import threading
from collections.abc import Callable

import amqp
import attrs
import pika

FRAME_END = b"\xce"
HEADER_SIZE = 7  # type, channel, size


@attrs.frozen
class Session:
    name: str
    header: bytes  # the protocol header the client sent
    frames: tuple[bytes, ...]  # each whole frame, as the client sent it

    def bytes(self) -> bytes:
        return self.header + b"".join(self.frames)


def split_frames(data: bytes) -> tuple[bytes, tuple[bytes, ...]]:
    """A client's byte stream as its protocol header and its frames."""
    header, rest = data[:8], data[8:]
    frames = []
    while len(rest) >= HEADER_SIZE:
        size = struct.unpack_from(">I", rest, 3)[0]
        frames.append(rest[: HEADER_SIZE + size + 1])
        rest = rest[HEADER_SIZE + size + 1 :]
    return header, tuple(frames)


# -- recording ------------------------------------------------------------------------------------


class _RecordingProxy:
    """Forwards one client connection to the broker, keeping what the client sent."""

    def __init__(self, broker_port: int) -> None:
        self._broker_port = broker_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.sent = bytearray()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client, _ = self._listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self._broker_port))
        ends = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(ends), [], [], 10)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        self.sent += data
                    ends[sock].sendall(data)
        finally:
            for sock in (client, upstream, self._listener):
                sock.close()

    def finish(self) -> bytes:
        self._thread.join(10)
        return bytes(self.sent)


def _pika_basics(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare("fuzz.basics")
    properties = pika.BasicProperties(
        content_type="text/plain",
        headers={"n": 1, "list": [1, "two"], "table": {"a": True}, "big": 2**40},
        delivery_mode=2,
        priority=3,
        correlation_id="c1",
        reply_to="fuzz.replies",
        expiration="60000",
        message_id="m1",
        timestamp=1_700_000_000,
        type="t",
        app_id="fuzz",
    )
    for n in range(3):
        channel.basic_publish("", "fuzz.basics", f"message {n}".encode(), properties)
    method, _, _ = channel.basic_get("fuzz.basics")
    channel.basic_ack(method.delivery_tag)
    method, _, _ = channel.basic_get("fuzz.basics")
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, _ = channel.basic_get("fuzz.basics")
    channel.basic_reject(method.delivery_tag, requeue=False)
    channel.queue_purge("fuzz.basics")
    channel.queue_delete("fuzz.basics")
    connection.close()


def _pika_consume(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=5)
    queue = channel.queue_declare("", exclusive=True).method.queue
    for n in range(5):
        channel.basic_publish("", queue, b"x" * (n * 40_000))  # several body frames too
    for received, (method, _, _) in enumerate(channel.consume(queue, inactivity_timeout=5), 1):
        if method is None:
            break
        if received == 5:
            channel.basic_ack(method.delivery_tag, multiple=True)
            break
    channel.cancel()
    channel.basic_recover(requeue=True)
    connection.close()


def _pika_confirms(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.exchange_declare("fuzz.topic", "topic", auto_delete=True)
    channel.queue_declare("fuzz.confirmed", arguments={"x-max-length": 2, "x-message-ttl": 1000})
    channel.queue_bind("fuzz.confirmed", "fuzz.topic", "a.*.c")
    for key in ("a.b.c", "a.x.c", "nowhere"):
        with contextlib.suppress(pika.exceptions.UnroutableError):
            channel.basic_publish("fuzz.topic", key, b"m", mandatory=True)
    channel.queue_unbind("fuzz.confirmed", "fuzz.topic", "a.*.c")
    channel.queue_delete("fuzz.confirmed")
    channel.exchange_delete("fuzz.topic")
    connection.close()


def _pika_transactions(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare("fuzz.tx", auto_delete=True)
    channel.tx_select()
    channel.basic_publish("", "fuzz.tx", b"kept")
    channel.tx_commit()
    channel.basic_publish("", "fuzz.tx", b"dropped")
    channel.tx_rollback()
    method, _, _ = channel.basic_get("fuzz.tx")
    channel.basic_ack(method.delivery_tag)
    channel.tx_commit()
    channel.close()
    connection.close()


def _py_amqp_session(url_port: int) -> None:
    with amqp.Connection(f"127.0.0.1:{url_port}", heartbeat=10) as connection:
        channel = connection.channel()
        channel.exchange_declare("fuzz.headers", "headers", auto_delete=True)
        channel.queue_declare("fuzz.amqp", auto_delete=True)
        channel.queue_bind("fuzz.amqp", "fuzz.headers", arguments={"x-match": "any", "k": "v"})
        message = amqp.Message(b"py-amqp", application_headers={"k": "v"}, priority=1)
        channel.basic_publish(message, "fuzz.headers", "")
        channel.basic_consume("fuzz.amqp", callback=lambda m: m.channel.basic_ack(m.delivery_tag))
        connection.drain_events(timeout=5)
        channel.basic_cancel(channel.basic_consume("fuzz.amqp"))
        channel.flow(True)
        channel.close()


SCRIPTS: dict[str, Callable[[int], None]] = {
    "pika basics": lambda port: _pika_basics(f"amqp://guest:guest@127.0.0.1:{port}/"),
    "pika consume": lambda port: _pika_consume(f"amqp://guest:guest@127.0.0.1:{port}/"),
    "pika confirms": lambda port: _pika_confirms(f"amqp://guest:guest@127.0.0.1:{port}/"),
    "pika transactions": lambda port: _pika_transactions(f"amqp://guest:guest@127.0.0.1:{port}/"),
    "py-amqp": _py_amqp_session,
}


def record(broker_port: int) -> list[Session]:
    """Each script's session, as its client sent it to the broker on `broker_port`."""
    sessions = []
    for name, script in SCRIPTS.items():
        proxy = _RecordingProxy(broker_port)
        script(proxy.port)
        header, frames = split_frames(proxy.finish())
        sessions.append(Session(name, header, frames))
    return sessions


# -- mutating -------------------------------------------------------------------------------------


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + FRAME_END


def _mutate_frame(frame: bytes, rng: random.Random) -> bytes:
    kind, channel, size = struct.unpack_from(">BHI", frame)
    payload = frame[HEADER_SIZE:-1]
    choice = rng.randrange(9)
    if choice == 0 and payload:  # flip bits in the payload
        data = bytearray(payload)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return _frame(kind, channel, bytes(data))
    if choice == 1:  # another channel
        return _frame(kind, rng.choice([0, 1, 2, 7, 2047, 2048, 65535]), payload)
    if choice == 2:  # another frame type
        return _frame(rng.choice([1, 2, 3, 4, 8, 0, 255]), channel, payload)
    if choice == 3:  # a size that lies
        lie = rng.choice([0, 1, size - 1, size + 1, 131073, 2**31, 2**32 - 1])
        return struct.pack(">BHI", kind, channel, max(lie, 0) % 2**32) + payload + FRAME_END
    if choice == 4:  # a wrong frame end
        return frame[:-1] + bytes([rng.randrange(256)])
    if choice == 5 and kind == 2 and len(payload) >= 12:  # a content header's body size
        body_size = rng.choice([0, 1, 2**31, 2**62, 2**64 - 1])
        return _frame(kind, channel, payload[:4] + struct.pack(">Q", body_size) + payload[12:])
    if choice == 6 and kind == 1 and len(payload) >= 4:  # another class and method
        ids = rng.choice([(10, 50), (20, 40), (60, 40), (60, 80), (85, 10), (90, 20), (99, 1)])
        return _frame(kind, channel, struct.pack(">HH", *ids) + payload[4:])
    if choice == 7 and payload:  # cut the payload short
        return _frame(kind, channel, payload[: rng.randrange(len(payload))])
    # random bytes inserted in the payload
    at = rng.randrange(len(payload) + 1)
    noise = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return _frame(kind, channel, payload[:at] + noise + payload[at:])


def mutate(session: Session, other: Session, rng: random.Random) -> bytes:
    """One bad session from `session` (and a piece of `other`). Mostly after the handshake
    (the first four frames: start-ok, tune-ok, open, channel.open), where most code is."""
    frames = list(session.frames)
    header = session.header
    first = 0 if rng.random() < 0.15 else min(4, len(frames) - 1)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        at = rng.randrange(first, len(frames)) if frames[first:] else 0
        choice = rng.randrange(7)
        if choice <= 2:  # most often: one frame mutated
            frames[at] = _mutate_frame(frames[at], rng)
        elif choice == 3:
            del frames[at]
        elif choice == 4:
            frames.insert(at, frames[at])
        elif choice == 5:
            j = rng.randrange(first, len(frames))
            frames[at], frames[j] = frames[j], frames[at]
        else:  # a stretch of the other session spliced in
            start = rng.randrange(len(other.frames))
            frames[at:at] = other.frames[start : start + rng.randint(1, 5)]
    data = header + b"".join(frames)
    if rng.random() < 0.1:  # raw damage anywhere past the header
        at = rng.randrange(8, len(data))
        data = data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + data[at:]
    if rng.random() < 0.1:
        data = data[: rng.randrange(8, len(data))]
    if rng.random() < 0.02:
        data = bytes(rng.randrange(256) for _ in range(8)) + data[8:]  # a foreign header
    return data
