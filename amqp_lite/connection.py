"""The server side of one AMQP connection, sans-IO: bytes in, bytes out, no sockets.

`receive_data` decodes frames and runs them against the domain; whatever must go back to the
client (replies, deliveries from other connections' publishes, confirms) gathers in an output
buffer that the I/O layer drains with `data_to_send`. This module is the one boundary where a
`BrokerError` becomes channel.close or connection.close.

The I/O layer keeps the time and asks the connection everything else: when to give up reading
(`read_deadline`, then `read_timed_out`), how often to send a heartbeat (`heartbeat_interval`,
then `send_heartbeat`), whether to read at all for now (`reading_paused`, and `on_reading_resumed`
when that ends) and when to hang up (`wants_socket_closed`).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
from collections.abc import Callable, Collection, Iterator
from typing import Any

from amqp_lite.channel import Channel
from amqp_lite.errors import ChannelError, UnexpectedFrame
from amqp_lite.identity import server_properties
from amqp_lite.limits import Limits
from amqp_lite.login import (
    DEFAULT_LOOPBACK_USERS,
    LoginInvalid,
    LoginRefused,
    TlsPeer,
    log_in,
    offered_mechanisms,
)
from amqp_lite.replies import closes_connection, fitted, reply_text
from amqp_lite.wire import methods
from amqp_lite.wire.frames import (
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    BodyFrame,
    Frame,
    FrameDecoder,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    encode_header,
    encode_method,
)
from amqp_lite.wire.methods import Method
from amqp_lite.wire.spec import FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD
from vhosts import Node, Queue, User, VirtualHost
from vhosts.errors import AccessRefused, BrokerError, NotAllowed

log = logging.getLogger("amqp_lite.connection")

CHANNEL_MAX = 2047
FRAME_MAX = 131072
HEARTBEAT = 60
# Deliveries pause for a connection whose unsent output passes this, so one slow reader
# cannot make the broker buffer without bound.
OUTPUT_HIGH_WATER = 1 << 20
# Reading from the client pauses while its unsent output passes this: replies, confirms and
# returns are not held back like deliveries, so a client that sends without reading is slowed
# (TCP pushes back on it) instead of buffered for.
READ_PAUSE_BACKLOG = 4 * OUTPUT_HIGH_WATER
HANDSHAKE_TIMEOUT = 10.0  # seconds a client has, in all, from connecting to connection.open
CLOSE_TIMEOUT = 3.0  # seconds we wait for close-ok after sending connection.close

# Seconds between a refused login that gets no reply and the socket's close: RabbitMQ's
# SILENT_CLOSE_DELAY, which makes a client without authentication_failure_close wait.
SILENT_CLOSE_DELAY = 3.0

DEFAULT_LIMITS = Limits()

SHUTDOWN_TEXT = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"


# 0-9-1's header, and 0-9's older form (class 1, instance 1, version 0-9) that some clients
# still send (Perl's Net::AMQP): RabbitMQ speaks 0-9-1 to both.
_ACCEPTED_HEADERS = (PROTOCOL_HEADER, b"AMQP\x01\x01\x00\x09")


class State(enum.Enum):
    AWAITING_HEADER = "awaiting protocol header"
    AWAITING_START_OK = "awaiting connection.start-ok"
    AWAITING_TUNE_OK = "awaiting connection.tune-ok"
    AWAITING_OPEN = "awaiting connection.open"
    OPEN = "open"
    CLOSING = "closing"  # we sent connection.close; only close-ok (or close) counts now
    CLOSED = "closed"  # nothing more to say: the socket should be closed once output is sent


class ServerConnection:
    def __init__(
        self,
        node: Node,
        *,
        heartbeat: int = HEARTBEAT,
        peer: tuple[str, int] = ("", 0),
        local: tuple[str, int] = ("", 0),
        tls: TlsPeer | None = None,
        loopback_users: Collection[str] = DEFAULT_LOOPBACK_USERS,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.node = node
        self.limits = limits  # the node-wide ones: largest message...
        self.peer = peer  # the client's address and port, as the I/O layer knows them
        self.local = local
        self.tls = tls  # a TLS connection's client certificate, for EXTERNAL
        self.loopback_users = loopback_users  # users refused unless the peer is loopback
        # Once the socket is to be closed, the I/O layer waits this long first (a login refused
        # without a word to the client: see SILENT_CLOSE_DELAY).
        self.close_delay = 0.0
        # RabbitMQ's name for a connection, which management and rabbitmqctl show and take.
        self.name = f"{peer[0]}:{peer[1]} -> {local[0]}:{local[1]}"
        self.connected_at = node.clock.now()
        # Bytes and reads/writes on the socket, RabbitMQ's recv_oct/recv_cnt/send_oct/send_cnt.
        self.recv_oct = self.recv_cnt = self.send_oct = self.send_cnt = 0
        self.auth_mechanism = ""
        self.state = State.AWAITING_HEADER
        self.channel_max = CHANNEL_MAX
        self.frame_max = FRAME_MAX
        self.heartbeat = heartbeat  # seconds, 0 for none; the client may lower it in tune-ok
        self.user: User | None = None
        self.vhost: VirtualHost | None = None
        self.client_properties: dict[str, Any] = {}
        self.channels: dict[int, Channel] = {}
        self.exclusive_queues: set[Queue] = set()
        # Called when output appears while the buffer was empty: the I/O layer's writer wakes.
        self.on_output: Callable[[], None] = _ignore
        # Called when `reading_paused` turns false: the I/O layer's reader wakes.
        self.on_reading_resumed: Callable[[], None] = _ignore

        self._decoder = FrameDecoder(frame_max=FRAME_MAX)
        self._header = b""
        self._output: list[bytes] = []
        self._output_size = 0
        self._closing_channels: set[int] = set()
        self._confirming: set[Channel] = set()  # published in confirm mode since the last flush
        self._awaiting_store: set[Channel] = set()  # confirms waiting for a store fsync
        # Server-started methods (basic.cancel) held while a method's reply is still to come.
        self._held: list[tuple[Channel, Any]] | None = None
        self._released = False
        # Flow control, as RabbitMQ's: while the node has a resource alarm, a connection that
        # publishes is blocked, and nothing more is read from it until the alarms clear; while
        # the store is behind the disk, one that publishes is not read until it catches up.
        self._blocking = False  # an alarm is on, or the store is behind: the next publish pauses
        self._blocked = False  # paused by an alarm (and told so, if it has the capability)
        self._flow = False  # paused until the store catches up
        # On the I/O layer's clock, fixed when it first asks (see read_deadline).
        self._handshake_deadline: float | None = None
        self._close_deadline: float | None = None
        # Why the connection ends, for the log line when it has (None: the client vanished).
        self._close_reason: str | None = None
        log.info("accepting AMQP connection %s", self.name)

    # -- the I/O layer's interface ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Run everything in `data`; replies and deliveries land in the output buffer."""
        if self.state is State.CLOSED:
            return
        self.recv_oct += len(data)
        self.recv_cnt += 1
        if self.state is State.AWAITING_HEADER:
            data = self._receive_header(data)
            if not data:
                return
        self._decoder.feed(data)
        closed = State.CLOSED
        try:
            for frame in self._decoder.frames():
                self._receive_frame(frame)
                if self.state is closed:  # it may close
                    break
        except BrokerError as error:  # the frame stream itself is broken: nothing more to read
            self._close_connection(error)
            self._decoder = FrameDecoder(frame_max=self.frame_max)  # drop what is buffered
        finally:
            self._flush_confirms()
        if not self._blocking:  # once a read, not once a message: is the store behind?
            store = self.node.store
            if store is not None and store.behind and self.state is State.OPEN:
                self._blocking = True

    def data_to_send(self) -> bytes:
        output = self._output
        if not output:
            return b""
        size = self._output_size
        data = output[0] if len(output) == 1 else b"".join(output)
        self._output = []
        self._output_size = 0
        self.send_oct += len(data)
        self.send_cnt += 1
        # Reading was paused by the backlog just sent (see reading_paused), and nothing else?
        if size >= READ_PAUSE_BACKLOG and not self.reading_paused:
            self.on_reading_resumed()
        was_full = size >= OUTPUT_HIGH_WATER
        if was_full and self.state is State.OPEN:
            for channel in list(self.channels.values()):
                channel.resume_consumers()
        return data

    @property
    def wants_socket_closed(self) -> bool:
        """Close the socket once `data_to_send` is empty."""
        return self.state is State.CLOSED

    @property
    def output_pending(self) -> int:
        """Bytes waiting for the I/O layer to send them."""
        return self._output_size

    @property
    def reading_paused(self) -> bool:
        """Should the I/O layer stop reading from the client for now?

        True while the connection is blocked by a resource alarm (see `alarms_changed`), and
        while the client is far behind reading what we send (see READ_PAUSE_BACKLOG).
        `on_reading_resumed` is called when it turns false again.
        """
        return self._blocked or self._flow or self._output_size >= READ_PAUSE_BACKLOG

    @property
    def throttled(self) -> str | None:
        """RabbitMQ's connection state under flow control, as its listings show it: "blocked"
        (not read since it published during an alarm), "blocking" (an open connection during
        an alarm that has not published since: its next publish blocks it), "flow" (not read
        until the store catches up); None otherwise."""
        if self._blocked:
            return "blocked"
        alarmed = self.state is State.OPEN and bool(self.node.alarms)
        if self._flow:
            return "blocked" if alarmed else "flow"  # RabbitMQ says flow for flow alone
        return "blocking" if alarmed else None

    def alarms_changed(self) -> None:
        """The node's resource alarms went on or off (the I/O layer tells every connection).

        As RabbitMQ: while an alarm is on, an open connection is blocked once it publishes
        (consumers carry on, so queues can drain). A client with the `connection.blocked`
        capability hears connection.blocked ("low on memory", "low on disk", or both) then,
        and connection.unblocked when the last alarm clears.
        """
        alarmed = bool(self.node.alarms) and self.state is State.OPEN
        if alarmed:
            self._blocking = True
        elif self._blocking:
            self._blocking = self._store_behind()
            if self._blocked:
                self._blocked = False
                if self.client_supports("connection.blocked"):
                    self.send_method(0, methods.ConnectionUnblocked())
                if not self.reading_paused:
                    self.on_reading_resumed()

    def _pause_publisher(self) -> None:
        """A publish while an alarm is on, or the store is behind: read nothing more for now."""
        if self.node.alarms:
            if not self._blocked:
                self._block()
        elif not self._flow:
            self._flow = True

    def _store_behind(self) -> bool:
        store = self.node.store
        return store is not None and store.behind and self.state is State.OPEN

    def _block(self) -> None:
        """A publish while an alarm is on: read nothing more until the alarms clear."""
        self._blocked = True
        if self.client_supports("connection.blocked"):
            resources = " & ".join(sorted(self.node.alarms))
            self.send_method(0, methods.ConnectionBlocked(reason=f"low on {resources}"))

    def read_deadline(self, now: float) -> float:
        """When to stop waiting for the client's next bytes, on the I/O layer's clock (`now` is
        its time at the call), then call `read_timed_out`. math.inf: wait for ever.

        The handshake has HANDSHAKE_TIMEOUT in all, however slowly its bytes come; an open
        connection with heartbeats, two intervals from each read; a closing one, CLOSE_TIMEOUT
        for close-ok.
        """
        state = self.state
        if state is State.OPEN:
            if self.heartbeat and not (self._blocked or self._flow):  # paused: we do not read
                return now + 2 * self.heartbeat
            return math.inf
        if state is State.CLOSING:
            if self._close_deadline is None:
                self._close_deadline = now + CLOSE_TIMEOUT
            return self._close_deadline
        if self._handshake_deadline is None:
            self._handshake_deadline = now + HANDSHAKE_TIMEOUT
        return self._handshake_deadline

    def read_timed_out(self) -> bool:
        """The read deadline passed: the connection is over, without a word (as RabbitMQ drops
        it). Returns True when that means the client missed its heartbeats."""
        missed_heartbeats = self.state is State.OPEN
        if missed_heartbeats:
            self._close_reason = f"missed heartbeats from client, timeout: {self.heartbeat}s"
        elif self.state is not State.CLOSING:
            self._close_reason = "handshake timeout"
        self.connection_lost()
        return missed_heartbeats

    @property
    def heartbeat_interval(self) -> float:
        """Seconds the I/O layer lets pass without sending anything before it calls
        `send_heartbeat` (math.inf: no heartbeats)."""
        if self.state is State.OPEN and self.heartbeat:
            return self.heartbeat / 2
        return math.inf

    def send_heartbeat(self) -> None:
        if self.state is State.OPEN:
            self.send(HEARTBEAT_FRAME)

    def close(self, reply_code: int = 320, text: str = SHUTDOWN_TEXT) -> None:
        """Begin a server-side close (shutdown, vhost deleted): connection.close, then wait."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if self.state is State.AWAITING_HEADER:
            self.state = State.CLOSED
            self.on_output()  # nothing to say, but the writer must wake up to hang up
            return
        close = methods.ConnectionClose(reply_code=reply_code, reply_text=fitted(text))
        self.send_method(0, close)
        self._close_reason = f"closed by the broker: {reply_code} {text}"
        self.state = State.CLOSING
        self.release()

    def connection_lost(self) -> None:
        """The socket is gone, however that happened."""
        self.state = State.CLOSED
        self.release()
        self._log_closed()

    def _log_closed(self) -> None:
        """One line when a connection is over, with why (once: this may be called again)."""
        reason, self._close_reason = self._close_reason, ""
        if reason == "":
            return
        vhost, user = self.vhost, self.user
        opened = vhost is not None and user is not None
        who = f" (vhost '{vhost.name}', user '{user.name}')" if vhost and user else ""
        if reason is None:
            level = logging.WARNING if opened else logging.INFO
            reason = "client unexpectedly closed TCP connection"
        else:
            level = logging.INFO
        log.log(level, "closing AMQP connection %s%s: %s", self.name, who, reason)

    def abandon(self) -> None:
        """Hang up without a word: even closing failed. The I/O layer closes the socket."""
        self._output = []
        self._output_size = 0
        self.state = State.CLOSED
        self.on_output()

    def release(self) -> None:
        """Give back what this connection holds: consumers, unacked messages, exclusive queues.

        Each channel and queue on its own: a failure in one (logged) must not leave the others'
        consumers and unacked messages stranded on a connection that is gone.
        """
        if self._released:
            return
        self._released = True
        events = self.node.events
        tracking = self.node.tracking
        for channel in self.channels.values():
            _logging_failures(channel.release)
            tracking.channel_closed(channel.user_name)
            events.channel_closed.emit(channel)
        self.channels.clear()
        if self.vhost is not None:
            for queue in self.exclusive_queues:
                _logging_failures(self.vhost.remove_queue, queue)
            assert self.user is not None
            tracking.connection_closed(self.vhost.name, self.user.name)
            events.connection_closed.emit(self)  # opened: it had reached its vhost
        self.exclusive_queues.clear()

    # -- output, for channels --------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if not self._output:
            self.on_output()
        self._output.append(data)
        self._output_size += len(data)

    def send_method(self, channel: int, method: Method) -> None:
        self.send(encode_method(channel, method))

    def has_output_room(self) -> bool:
        return self._output_size < OUTPUT_HIGH_WATER

    def confirms_pending(self, channel: Channel) -> None:
        self._confirming.add(channel)

    def claim_exclusive(self, queue: Queue) -> None:
        self.exclusive_queues.add(queue)

    def notify(self, channel: Channel, method: Method) -> None:
        """A method the server starts on `channel` (basic.cancel): after pending replies."""
        if self._held is not None:
            self._held.append((channel, method))
        else:
            channel.send_after_replies(method)  # a channel with replies waiting is flushed already

    @contextlib.contextmanager
    def notifying_after_reply(self) -> Iterator[None]:
        """Hold what `notify` is given until the current method has sent (or queued) its reply."""
        held: list[tuple[Channel, Any]] = []
        self._held = held
        try:
            yield
        finally:
            self._held = None
            for channel, method in held:
                if not channel.closing:
                    self.notify(channel, method)

    def client_supports(self, capability: str) -> bool:
        capabilities = self.client_properties.get("capabilities")
        return isinstance(capabilities, dict) and bool(capabilities.get(capability))

    # -- input -----------------------------------------------------------------------------------

    def _receive_header(self, data: bytes) -> bytes:
        self._header += data
        if len(self._header) < len(PROTOCOL_HEADER):
            if any(header.startswith(self._header) for header in _ACCEPTED_HEADERS):
                return b""
        elif self._header[: len(PROTOCOL_HEADER)] in _ACCEPTED_HEADERS:
            rest = self._header[len(PROTOCOL_HEADER) :]
            self._header = b""
            self.state = State.AWAITING_START_OK
            self.send_method(
                0,
                methods.ConnectionStart(
                    version_major=0,
                    version_minor=9,
                    server_properties=server_properties(self.node.cluster_name),
                    mechanisms=" ".join(offered_mechanisms(self.tls)).encode(),
                    locales=b"en_US",
                ),
            )
            return rest
        # Not AMQP 0-9-1: say which protocol we speak, then hang up (spec section 4.2.2).
        self.send(PROTOCOL_HEADER)
        self.state = State.CLOSED
        return b""

    def _receive_frame(self, frame: Frame) -> None:
        # The hot path first: a method or content on an open channel. (Channels exist only
        # while the connection is open: closing it releases them.)
        channel = self.channels.get(frame.channel)
        if channel is not None:
            try:
                if type(frame) is MethodFrame:
                    method = frame.method
                    if type(method) in _CHANNEL_LIFECYCLE:
                        self._on_channel_lifecycle(channel, method)
                    else:
                        channel.handle_method(method)
                    return
                if type(frame) is HeaderFrame:
                    channel.handle_header(frame)
                    if self._blocking:
                        self._pause_publisher()
                    return
                if type(frame) is BodyFrame:
                    channel.handle_body(frame)
                    return
            except BrokerError as error:
                self._channel_error(channel, frame, error)
                return
        channel_number = frame.channel
        if self.state is State.CLOSING:
            self._receive_while_closing(frame)
            return
        if isinstance(frame, HeartbeatFrame):
            if channel_number != 0:
                raise UnexpectedFrame("heartbeat frame on a non-zero channel")
            return
        if channel_number == 0:
            if not isinstance(frame, MethodFrame):
                raise UnexpectedFrame("unexpected content frame on channel 0")
            self._on_connection_method(frame.method)
            return
        if self.state is not State.OPEN:  # RabbitMQ does not look inside it
            raise UnexpectedFrame(_describe_unexpected(frame))
        if channel_number in self._closing_channels:
            self._on_closing_channel_frame(frame)
            return
        if channel is None:
            try:
                self._on_unopened_channel_frame(frame)
            except BrokerError as error:
                if isinstance(frame, MethodFrame) and not error.class_id:
                    error.class_id, error.method_id = frame.method.CLASS_ID, frame.method.METHOD_ID
                self._close_connection(error)

    def _channel_error(self, channel: Channel, frame: Frame, error: BrokerError) -> None:
        """The one place a channel's error becomes channel.close, or connection.close when its
        reply code is a hard error."""
        if isinstance(frame, MethodFrame) and not error.class_id:
            error.class_id, error.method_id = frame.method.CLASS_ID, frame.method.METHOD_ID
        if closes_connection(error.reply_code):
            self._close_connection(error)
        else:
            self._close_channel(channel, error)

    def _receive_while_closing(self, frame: Frame) -> None:
        """After our connection.close only close-ok (or a crossing close) counts."""
        method = frame.method if isinstance(frame, MethodFrame) and frame.channel == 0 else None
        if isinstance(method, methods.ConnectionClose):
            self.send_method(0, methods.ConnectionCloseOk())
            self.state = State.CLOSED
        elif isinstance(method, methods.ConnectionCloseOk):
            self.state = State.CLOSED

    def _on_unopened_channel_frame(self, frame: Frame) -> None:
        if isinstance(frame, MethodFrame) and isinstance(frame.method, methods.ChannelOpen):
            # RabbitMQ limits how many are open, whatever their numbers.
            if len(self.channels) >= self.channel_max:
                raise NotAllowed(
                    f"number of channels opened ({len(self.channels)}) has reached "
                    f"the negotiated channel_max ({self.channel_max})"
                )
            assert self.vhost is not None and self.user is not None
            try:
                self.node.admit_channel(self.user)
            except NotAllowed as refused:  # RabbitMQ names no method in this close
                self._close_connection(refused)
                return
            channel = Channel(self, frame.channel, self.vhost, self.user)
            self.channels[frame.channel] = channel
            self.send_method(frame.channel, methods.ChannelOpenOk())
            self.node.events.channel_created.emit(channel)
            return
        if not isinstance(frame, MethodFrame):
            raise UnexpectedFrame("expected method frame, got non method frame instead")
        raise ChannelError("expected 'channel.open'")

    def _on_channel_lifecycle(self, channel: Channel, method: Method) -> None:
        """channel.open, close and close-ok on an open channel."""
        if isinstance(method, methods.ChannelClose):
            self._forget_channel(channel)
            self.send_method(channel.number, methods.ChannelCloseOk())
        elif isinstance(method, methods.ChannelOpen):
            raise ChannelError("second 'channel.open' seen")
        else:
            raise ChannelError("unexpected 'channel.close-ok'")

    def _on_closing_channel_frame(self, frame: Frame) -> None:
        if isinstance(frame, MethodFrame):
            if isinstance(frame.method, methods.ChannelCloseOk):
                self._closing_channels.discard(frame.channel)
            elif isinstance(frame.method, methods.ChannelClose):
                self.send_method(frame.channel, methods.ChannelCloseOk())
        # Anything else crossed our channel.close on the wire: drop it, as the spec says.

    def close_channel(self, channel: Channel, error: BrokerError) -> None:
        """Close one channel from the server's side (a consumer timed out), with `error`'s
        code and text; its unacked deliveries go back to their queues."""
        if self.channels.get(channel.number) is channel:
            self._close_channel(channel, error)

    def _close_channel(self, channel: Channel, error: BrokerError) -> None:
        log.warning(  # the client's mistake: warning, so that error means ours
            "channel error on connection %s, channel %d: %s (class %d, method %d)",
            self.name,
            channel.number,
            reply_text(error.reply_code, error.text),
            error.class_id,
            error.method_id,
        )
        self._forget_channel(channel)
        self._closing_channels.add(channel.number)
        close = methods.ChannelClose(
            reply_code=error.reply_code,
            reply_text=reply_text(error.reply_code, error.text),
            class_id=error.class_id,
            method_id=error.method_id,
        )
        # A durable declare's ok still waiting for the disk goes first, as the client sent it.
        if channel.send_after_replies(close):
            self._confirming.add(channel)  # flushed when this input is done, like confirms

    def _forget_channel(self, channel: Channel) -> None:
        del self.channels[channel.number]
        self.node.tracking.channel_closed(channel.user_name)
        self._confirming.discard(channel)
        self._awaiting_store.discard(channel)
        channel.closing = True
        channel.release()
        self.node.events.channel_closed.emit(channel)

    def _close_connection(self, error: BrokerError) -> None:
        if self.state in (State.CLOSING, State.CLOSED):
            return
        text = reply_text(error.reply_code, error.text)
        if self.state in (State.AWAITING_START_OK, State.AWAITING_TUNE_OK):
            # As RabbitMQ: before tune-ok a client is not trusted with a reason.
            log.warning(
                "connection %s: handshake error, hanging up without a reply: %s", self.name, text
            )
            self._hang_up_silently()
            return
        self._send_connection_close(error)

    def _send_connection_close(self, error: BrokerError) -> None:
        text = reply_text(error.reply_code, error.text)
        log.warning(
            "connection error on %s: %s (class %d, method %d)",
            self.name,
            text,
            error.class_id,
            error.method_id,
        )
        self._close_reason = f"connection error: {text}"
        self.send_method(
            0,
            methods.ConnectionClose(
                reply_code=error.reply_code,
                reply_text=reply_text(error.reply_code, error.text),
                class_id=error.class_id,
                method_id=error.method_id,
            ),
        )
        self.state = State.CLOSING
        self.release()

    def _flush_confirms(self) -> None:
        if self._confirming:
            for channel in self._confirming:
                if channel.flush_confirms():
                    self._awaiting_store.add(channel)
            self._confirming.clear()

    def store_progressed(self) -> None:
        """The store wrote a batch: confirms that waited for it can go, and a publisher paused
        while the store was behind is read again once it is not."""
        if self._awaiting_store:
            self._awaiting_store = {
                channel for channel in self._awaiting_store if channel.flush_confirms()
            }
        if self._blocking and not self.node.alarms and not self._store_behind():
            self._blocking = False
            if self._flow:
                self._flow = False
                if not self.reading_paused:
                    self.on_reading_resumed()

    # -- channel 0: the handshake and connection methods ----------------------------------------

    def _on_connection_method(self, method: Method) -> None:
        try:
            handler = _CONNECTION_HANDLERS.get((self.state, type(method)))
            if handler is None:
                # connection.close too: before connection.open RabbitMQ refuses it like any other.
                state = _RABBITMQ_STATE_NAMES[self.state]
                raise ChannelError(f"unexpected method in connection state {state}")
            handler(self, method)
        except BrokerError as error:
            if not error.class_id:
                error.class_id, error.method_id = method.CLASS_ID, method.METHOD_ID
            self._close_connection(error)

    def _start_ok(self, method: methods.ConnectionStartOk) -> None:
        self.client_properties = dict(method.client_properties)
        self.auth_mechanism = mechanism = method.mechanism
        try:
            user = log_in(
                self.node.users,
                mechanism,
                bytes(method.response),
                tls=self.tls,
                peer_host=self.peer[0],
                loopback_users=self.loopback_users,
            )
        except LoginRefused as refused:
            log.warning("connection %s: %s login refused: %s", self.name, mechanism, refused)
            # Only a client that says it understands gets a reply, never the reason.
            if self.client_supports("authentication_failure_close"):
                refusal = AccessRefused(
                    f"Login was refused using authentication mechanism {mechanism}. "
                    "For details see the broker logfile."
                )
                refusal.class_id, refusal.method_id = method.CLASS_ID, method.METHOD_ID
                self._send_connection_close(refusal)
                return
            self._hang_up_silently()
            return
        except LoginInvalid as invalid:
            log.warning("connection %s: login failed: %s", self.name, invalid)
            self._hang_up_silently()
            return
        self.user = user
        self.state = State.AWAITING_TUNE_OK
        self.send_method(
            0,
            methods.ConnectionTune(
                channel_max=CHANNEL_MAX, frame_max=FRAME_MAX, heartbeat=self.heartbeat
            ),
        )

    def _hang_up_silently(self) -> None:
        """As RabbitMQ after a failed login: no reply, and the socket closed only after a delay,
        so that a client guessing passwords cannot try again at once."""
        self.state = State.CLOSED
        self.close_delay = SILENT_CLOSE_DELAY
        self._close_reason = "hung up without a reply after a failed handshake"
        self.release()
        self.on_output()  # nothing to say, but the writer must wake up to hang up

    def _tune_ok(self, method: methods.ConnectionTuneOk) -> None:
        # RabbitMQ's checks; 0 ("no limit") is above any limit. Refused silently, see above.
        if not 0 < method.channel_max <= CHANNEL_MAX:
            raise NotAllowed(
                f"negotiated channel_max = {method.channel_max} is higher than the maximum "
                f"allowed value ({CHANNEL_MAX})"
            )
        if method.frame_max < 4096 or method.frame_max > FRAME_MAX:
            raise NotAllowed(
                f"frame_max={method.frame_max} outside the allowed range 4096-{FRAME_MAX}"
            )
        self.frame_max = method.frame_max
        self.channel_max = method.channel_max
        self.heartbeat = method.heartbeat  # whatever the client says, as RabbitMQ takes it
        self._decoder.frame_max = self.frame_max
        self.state = State.AWAITING_OPEN

    def _open(self, method: methods.ConnectionOpen) -> None:
        vhost = self.node.vhost(method.virtual_host)
        assert self.user is not None
        self.node.admit_connection(vhost, self.user)  # the limits first, as RabbitMQ checks
        if not self.user.may_enter(vhost.name):
            self.node.tracking.connection_closed(vhost.name, self.user.name)
            raise NotAllowed(f"access to vhost '{vhost.name}' refused for user '{self.user.name}'")
        self.vhost = vhost
        self.state = State.OPEN
        self.send_method(0, methods.ConnectionOpenOk())
        client = self.client_properties
        log.info(
            "connection %s: user '%s' authenticated and granted access to vhost '%s' "
            "(client: %s %s)",
            self.name,
            self.user.name,
            vhost.name,
            _printable(client.get("product")),
            _printable(client.get("version")),
        )
        self._blocking = bool(self.node.alarms)
        self.node.events.connection_created.emit(self)

    def _connection_close(self, method: methods.ConnectionClose) -> None:
        self._close_reason = (
            f"client closed the connection: {method.reply_code} '{_printable(method.reply_text)}'"
        )
        self.send_method(0, methods.ConnectionCloseOk())
        self.state = State.CLOSED
        self.release()

    def _update_secret(self, method: methods.ConnectionUpdateSecret) -> None:
        self.send_method(0, methods.ConnectionUpdateSecretOk())


_RABBITMQ_STATE_NAMES = {
    State.AWAITING_START_OK: "starting",
    State.AWAITING_TUNE_OK: "tuning",
    State.AWAITING_OPEN: "opening",
    State.OPEN: "running",
}


def _describe_unexpected(frame: Frame) -> str:
    """RabbitMQ's words for a frame on a channel before connection.open: its whole payload."""
    if isinstance(frame, MethodFrame):
        kind, payload = FRAME_METHOD, encode_method(frame.channel, frame.method)[7:-1]
    elif isinstance(frame, HeaderFrame):
        header = encode_header(frame.channel, frame.class_id, frame.body_size, frame.raw_properties)
        kind, payload = FRAME_HEADER, header[7:-1]
    elif isinstance(frame, BodyFrame):
        kind, payload = FRAME_BODY, frame.payload
    else:
        kind, payload = FRAME_HEARTBEAT, b""
    octets = ",".join(str(octet) for octet in payload)
    return f"type {kind}, all octets = <<{octets}>>"


def _printable(value: object) -> str:
    """A client-supplied value for a log line: text, shortened, without line breaks."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    text = "?" if value is None else str(value)
    return text[:100].replace("\n", " ").replace("\r", " ")


def _ignore() -> None:
    pass


def _logging_failures(action: Callable[..., object], *args: object) -> None:
    try:
        action(*args)
    except Exception:
        log.exception("internal error releasing a connection's resources")


# (state, method class) -> its handler, which takes that class.
_CONNECTION_HANDLERS: dict[tuple[State, type[Method]], Callable[[ServerConnection, Any], None]] = {
    (State.AWAITING_START_OK, methods.ConnectionStartOk): ServerConnection._start_ok,
    (State.AWAITING_TUNE_OK, methods.ConnectionTuneOk): ServerConnection._tune_ok,
    (State.AWAITING_OPEN, methods.ConnectionOpen): ServerConnection._open,
    (State.OPEN, methods.ConnectionUpdateSecret): ServerConnection._update_secret,
    (State.OPEN, methods.ConnectionClose): ServerConnection._connection_close,
}

# Methods about a channel's own life, which the connection handles rather than the channel.
_CHANNEL_LIFECYCLE: frozenset[type[Method]] = frozenset(
    {methods.ChannelOpen, methods.ChannelClose, methods.ChannelCloseOk}
)
