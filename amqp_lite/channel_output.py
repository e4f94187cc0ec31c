"""One channel's frames, in the order its methods asked for them.

RabbitMQ answers a channel's methods one at a time, so a reply that promises something is on
disk (a durable declare-ok, tx.commit-ok) holds back whatever the channel sends after it: later
replies, get-ok, returns, a server-sent channel.close or basic.cancel. Deliveries pause
meanwhile (`has_room`). Confirms do not queue here: a publish made while a reply waits has its
confirm wait for the same write.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from amqp_lite.wire.frames import encode_method
from amqp_lite.wire.methods import Method


class ConnectionOutput(Protocol):
    """The connection's output buffer."""

    frame_max: int

    def send(self, data: bytes) -> None: ...

    def has_output_room(self) -> bool:
        """False while the client is slow to read what was sent already."""
        ...


class StoreProgress(Protocol):
    """How far the store has got: operations numbered as they are handed to it."""

    @property
    def last_op(self) -> int:
        """The newest operation handed to the store."""
        ...

    @property
    def durable_upto(self) -> int:
        """Every operation up to this one is on disk."""
        ...


class ChannelOutput:
    def __init__(
        self,
        connection: ConnectionOutput,
        channel: int,
        store: StoreProgress | None,
        *,
        pending: Callable[[], None],
    ) -> None:
        self._connection = connection
        self._channel = channel
        self.frame_max = connection.frame_max  # settled by tune-ok before any channel opens
        self._store = store
        self._pending = pending  # the connection flushes this channel once the read is done
        # Encoded frames waiting for the store, each with the operation it waits for (0 for
        # frames that wait only for what is before them).
        self._waiting: deque[tuple[int, bytes]] = deque()
        # `send(data)` and `has_room()` (may a delivery go out now?). While nothing waits they
        # are the connection's own methods, so a delivery pays no extra call for the ordering;
        # while something waits, frames queue behind it and deliveries pause.
        self.send: Callable[[bytes], None] = connection.send
        self.has_room: Callable[[], bool] = connection.has_output_room
        # Some reply still waits for the store, and everything sent since waits behind it. (An
        # attribute, not a property: a confirm asks it on every publish.)
        self.waiting = False

    def _wait(self, operation: int, data: bytes) -> None:
        if not self._waiting:
            self.send, self.has_room = self._send_behind, _no_room
            self.waiting = True
        self._waiting.append((operation, data))

    def _send_behind(self, data: bytes) -> None:
        self._waiting.append((0, data))  # waits for nothing but what is before it

    def reply(self, method: Method) -> None:
        self.send(encode_method(self._channel, method))

    def reply_when_stored(self, method: Method) -> None:
        """Send `method` once everything the store has been told so far is on disk."""
        store = self._store
        if store is None or (store.durable_upto >= store.last_op and not self._waiting):
            self._connection.send(encode_method(self._channel, method))
            return
        self._wait(store.last_op, encode_method(self._channel, method))
        self._pending()

    def send_after_replies(self, method: Method) -> bool:
        """A method the server starts (basic.cancel, channel.close), behind waiting replies.

        Returns True when it waits too.
        """
        waits = bool(self._waiting)
        self.reply(method)
        return waits

    def flush_stored(self) -> bool:
        """Send what the store has written, and what waited behind it.

        Returns True when that let everything out (deliveries may go again).
        """
        waiting, store = self._waiting, self._store
        if not waiting or store is None:  # only ever filled when there is a store
            return False
        durable = store.durable_upto
        if waiting[0][0] > durable:
            return False
        while waiting and waiting[0][0] <= durable:
            self._connection.send(waiting.popleft()[1])
        if waiting:
            return False
        self.send, self.has_room = self._connection.send, self._connection.has_output_room
        self.waiting = False
        return True


def _no_room() -> bool:
    return False
