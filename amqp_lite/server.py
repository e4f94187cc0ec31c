"""The trio layer: accept TCP connections and shuttle bytes between sockets and `ServerConnection`s.

Each connection gets two tasks: a reader that feeds whatever one `receive_some` returns to the
sans-IO connection (so a burst of publishes is one call, and its confirms one ack), and a writer
that sends everything buffered in one `send_all` and sends heartbeats when the line is quiet.
No task per message, no syscall per frame. What to do when (timeouts, heartbeats, pausing the
reader, hanging up) the connection decides; this layer only keeps the time.
"""

from __future__ import annotations

import errno
import logging
import math
import socket
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import trio

from amqp_lite.connection import (
    CLOSE_TIMEOUT,
    DEFAULT_LIMITS,
    HANDSHAKE_TIMEOUT,
    ServerConnection,
)
from amqp_lite.consumer_timeout import ConsumerTimeouts
from amqp_lite.limits import Limits
from amqp_lite.listening import open_tcp_listeners
from amqp_lite.login import DEFAULT_LOOPBACK_USERS, TlsPeer
from amqp_lite.resources import ResourceMonitor
from amqp_lite.tls import TlsOptions
from vhosts import Node
from vhosts.page_files import PageArea
from vhosts.store import Store
from vhosts.stream_storage import StreamBatch, StreamStorage

log = logging.getLogger("amqp_lite.server")

T = TypeVar("T")

__all__ = ["CLOSE_TIMEOUT", "HANDSHAKE_TIMEOUT", "Server"]

RECEIVE_SIZE = 256 * 1024
INTERNAL_ERROR_TEXT = "INTERNAL_ERROR - internal error"
# accept() failing with one of these means the process or system is out of something (file
# descriptors, most often): wait and try again, from ACCEPT_RETRY up to ACCEPT_RETRY_MAX apart.
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_RETRY = 0.1
ACCEPT_RETRY_MAX = 2.0
# A write to disk that failed is tried again from WRITE_RETRY up to WRITE_RETRY_MAX apart.
WRITE_RETRY = 0.1
WRITE_RETRY_MAX = 5.0
WRITE_ALARM_SOURCE = "failed writes"  # beside the free-space reading's, for the disk alarm


class Server:
    def __init__(
        self,
        node: Node,
        *,
        heartbeat: int = 60,
        loopback_users: Collection[str] = DEFAULT_LOOPBACK_USERS,
        tls: TlsOptions | None = None,
        resources: ResourceMonitor | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        """`tls` makes the TLS listener's context at once, so bad settings fail here.
        `resources` watches memory and disk while serving, and raises the node's alarms;
        `limits` are the node-wide limits (largest message...)."""
        self.node = node
        if not node.cluster_name:  # as RabbitMQ's rabbit@<short hostname>
            node.cluster_name = f"amqp-lite@{socket.gethostname().split('.')[0]}"
        self.heartbeat = heartbeat
        self.loopback_users = frozenset(loopback_users)  # may log in only from loopback
        self.connections: set[ServerConnection] = set()
        self.tls = tls
        self._tls_context = tls.context() if tls is not None else None
        self.host = ""
        self.port: int = 0  # the plain AMQP listener's, 0 when there is none
        self.tls_port: int = 0  # the amqps listener's, 0 when there is none
        self.resources = resources
        self.limits = limits
        self.consumer_timeouts = ConsumerTimeouts(node, self.connections, limits.consumer_timeout)
        # Sockets accepted and not yet closed, handshake or not: what connection_max counts.
        self._sockets = 0
        self._room = _Wakeup()  # a socket closed: below the connection limit again
        self._at_connection_max = False
        self._nursery: trio.Nursery | None = None

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int | None = 5672,
        *,
        tls_port: int | None = None,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen until cancelled: plain AMQP on `port`, amqps on `tls_port` (0: a free port,
        None: no such listener). Reports the plain port, or else the TLS one, through
        `task_status`."""
        if tls_port is not None and self._tls_context is None:
            raise ValueError("a TLS port needs the server's TLS options")
        if port is None and tls_port is None:
            raise ValueError("no listener: give a port, a TLS port, or both")
        plain = await open_tcp_listeners("AMQP", host, port) if port is not None else []
        secure = (
            await open_tcp_listeners("AMQP over TLS", host, tls_port)
            if tls_port is not None
            else []
        )
        self.host = host
        self.port = plain[0].socket.getsockname()[1] if plain else 0
        self.tls_port = secure[0].socket.getsockname()[1] if secure else 0
        events = self.node.events
        unsubscribe = [
            events.alarm_set.subscribe(self._alarms_changed),
            events.alarm_cleared.subscribe(self._alarms_changed),
        ]
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._write_to_disk, self.node.store, self.node.streams)
                nursery.start_soon(self._resume_stream_reads, self.node.streams)
                if self.node.paging is not None:
                    nursery.start_soon(self._page_io, self.node.paging.area)
                nursery.start_soon(self._run_timers)
                for listener in plain:
                    nursery.start_soon(self._accept, listener, nursery, False)
                for listener in secure:
                    nursery.start_soon(self._accept, listener, nursery, True)
                if self.resources is not None:
                    self.resources.start()
                self.consumer_timeouts.start()
                if plain:
                    log.info("listening on %s:%d", host, self.port)
                if secure:
                    log.info("listening for TLS on %s:%d", host, self.tls_port)
                task_status.started(self.port or self.tls_port)
        finally:
            if self.resources is not None:
                self.resources.stop()
            self.consumer_timeouts.stop()
            for undo in unsubscribe:
                undo()

    def _alarms_changed(self, resource: str) -> None:
        """A resource alarm went on or off: each connection decides what that means for it."""
        for connection in list(self.connections):
            _guarded(connection, connection.alarms_changed)

    async def _accept(
        self, listener: trio.SocketListener, nursery: trio.Nursery, tls: bool
    ) -> None:
        """Accept connections for ever; running out of file descriptors only slows this down."""
        retry = ACCEPT_RETRY
        async with listener:
            while True:
                await self._room_for_a_connection()
                try:
                    stream = await listener.accept()
                except OSError as error:
                    if error.errno not in ACCEPT_CAPACITY_ERRNOS:
                        raise
                    if retry == ACCEPT_RETRY:  # once per episode, not every retry
                        log.error(
                            "cannot accept connections: %s; retrying every %.1f-%.0f s",
                            error.strerror,
                            ACCEPT_RETRY,
                            ACCEPT_RETRY_MAX,
                        )
                    await trio.sleep(retry)
                    retry = min(retry * 2, ACCEPT_RETRY_MAX)
                    continue
                if retry != ACCEPT_RETRY:
                    log.info("accepting connections again")
                    retry = ACCEPT_RETRY
                self._sockets += 1
                nursery.start_soon(self._serve_counted, stream, tls)

    async def _room_for_a_connection(self) -> None:
        """At the node's connection limit, accept nothing until a connection closes: the
        clients wait in the kernel's listen backlog, as RabbitMQ's connection_max makes them."""
        most = self.limits.connection_max
        while most is not None and self._sockets >= most:
            if not self._at_connection_max:
                self._at_connection_max = True
                log.warning(
                    "%d connections, the node's limit (--connection-max): accepting no more "
                    "until one closes",
                    most,
                )
            self._room.clear()
            await self._room.wait()
        if self._at_connection_max:
            self._at_connection_max = False
            log.info("accepting connections again: below the node's limit of %s", most)

    async def _serve_counted(self, stream: trio.SocketStream, tls: bool) -> None:
        try:
            await self._serve_connection(stream, tls)
        finally:
            self._sockets -= 1
            self._room.set()

    async def shutdown(self) -> None:
        """Close every connection with 320 CONNECTION_FORCED and wait a little for close-ok."""
        for connection in list(self.connections):
            _guarded(connection, connection.close)
        with trio.move_on_after(CLOSE_TIMEOUT):
            while self.connections:
                await trio.sleep(0.01)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _write_to_disk(self, store: Store | None, streams: StreamStorage) -> None:
        """Group commit: write whatever gathered while the previous batch was being fsynced.

        The store's batch and the stream logs' are written in the same cycle, in a worker
        thread, so the event loop never waits for the disk.

        A write that fails (a full disk: "database or disk is full", or any other error) stops
        nothing: the batch stays pending, so nothing it holds is confirmed, and is tried again,
        from WRITE_RETRY up to WRITE_RETRY_MAX seconds apart, with whatever gathered meanwhile.
        Until a write succeeds the node has a disk alarm: publishers are blocked, consumers
        carry on.
        """
        wakeup = _Wakeup()
        if store is not None:
            store.on_pending = wakeup.set
        streams.on_pending = wakeup.set
        unwritten_logs: StreamBatch | None = None  # stream records a failed write left to retry
        retry = WRITE_RETRY
        while True:
            wakeup.clear()
            if not (
                unwritten_logs is not None
                or streams.has_pending
                or (store is not None and store.has_pending)
            ):
                await wakeup.wait()
                continue
            # Shielded: a batch taken must be written or given back, or a shutdown arriving
            # between the take and the write would lose it (the final flush only sees what the
            # store still holds).
            with trio.CancelScope(shield=True):
                logs = unwritten_logs if unwritten_logs is not None else streams.take_batch()
                batch, upto = store.take_batch() if store is not None else ([], 0)
                try:
                    await trio.to_thread.run_sync(_write_batches, streams, logs, store, batch)
                except _WriteFailed as failure:
                    error = failure.__cause__
                    if failure.where == "streams":
                        unwritten_logs = logs
                    else:
                        unwritten_logs = None
                        streams.batch_written(logs)
                    if store is not None:
                        store.batch_failed(batch)
                else:
                    error = unwritten_logs = None
                    streams.batch_written(logs)
                    if store is not None:
                        store.batch_written(upto)
            if error is not None:
                if retry == WRITE_RETRY:  # once per episode, not every retry
                    log.error(
                        "cannot write to disk (%s); retrying, and publishers are blocked until "
                        "it works again",
                        error,
                    )
                    self.node.set_alarm("disk", WRITE_ALARM_SOURCE)
                await trio.sleep(retry)
                retry = min(retry * 2, WRITE_RETRY_MAX)
                continue
            if retry != WRITE_RETRY:
                log.info("writing to disk again")
                retry = WRITE_RETRY
                self.node.clear_alarm("disk", WRITE_ALARM_SOURCE)
            if store is not None:
                for connection in list(self.connections):
                    _guarded(connection, connection.store_progressed)

    async def _resume_stream_reads(self, streams: StreamStorage) -> None:
        """Carry on the stream dispatches that stopped at their read budget, one round at a
        time, letting the event loop run between rounds: a consumer with much to read from
        disk (a filter that skips most of a long log) never holds up the rest."""
        wakeup = _Wakeup()
        streams.on_resume = wakeup.set
        while True:
            wakeup.clear()
            if not streams.has_resumes:
                await wakeup.wait()
                continue
            try:
                streams.run_resumes()
            except Exception:  # a bug in one dispatch must not stop the broker
                log.exception("internal error reading a stream")
            await trio.sleep(0)

    async def _page_io(self, area: PageArea) -> None:
        """Write the pages queues cut and read back the ones they will need next, in a worker
        thread, so that the event loop never waits for the disk (page files are not fsynced).
        """
        wakeup = _Wakeup()
        area.on_pending = wakeup.set
        while True:
            wakeup.clear()
            if not area.has_pending:
                await wakeup.wait()
                continue
            work = area.take_work()
            with trio.CancelScope(shield=True):  # taken: done before anything else goes
                await trio.to_thread.run_sync(area.do_work, work)
            if work.errors:  # a full disk, most likely: the pages not written stay in memory
                log.error("page files: %d operations failed: %s", len(work.errors), work.errors[0])
            try:
                area.work_done(work)
            except Exception:  # a bug in one queue must not stop paging for the others
                log.exception("internal error handing back pages read ahead")

    async def _run_timers(self) -> None:
        """Expire messages, delete idle queues, release delayed messages when they are due.

        Sleeps until the next deadline on the node's clock; the clock jumping (a test advancing
        it) or an earlier deadline being scheduled wakes it to look again.
        """
        clock, timers = self.node.clock, self.node.timers
        wakeup = _Wakeup()
        timers.on_earlier_deadline = wakeup.set
        unsubscribe = clock.advanced.subscribe(wakeup.set)  # the clock may serve other nodes
        try:
            while True:
                wakeup.clear()
                try:
                    timers.run_due(clock.now())
                except Exception:  # a bug in one timer must not stop the broker
                    log.exception("internal error running a timer")
                    continue
                deadline = timers.next_deadline()
                if deadline is None or clock.frozen:
                    delay = math.inf  # only an advance of the clock or a new deadline moves us
                else:
                    delay = max(deadline - clock.now(), 0.0)
                with trio.move_on_after(delay):
                    await wakeup.wait()
        finally:
            unsubscribe()

    async def _serve_connection(self, socket_stream: trio.SocketStream, tls: bool) -> None:
        """One connection's life. Nothing raised here may reach the accept loop's nursery: a
        failure costs this connection (541 and a log line), never the broker."""
        stream: trio.abc.Stream = socket_stream
        tls_peer = None
        try:
            peer = _address(socket_stream.socket.getpeername())
            local = _address(socket_stream.socket.getsockname())
            if tls:
                secured = await self._tls_handshake(socket_stream, peer)
                if secured is None:
                    return
                stream, tls_peer = secured
            connection = ServerConnection(
                self.node,
                heartbeat=self.heartbeat,
                peer=peer,
                local=local,
                tls=tls_peer,
                loopback_users=self.loopback_users,
                limits=self.limits,
            )
        except Exception:
            log.exception("internal error setting up a connection")
            await trio.aclose_forcefully(socket_stream)
            return
        self.connections.add(connection)
        wakeup = _Wakeup()
        connection.on_output = wakeup.set
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write, stream, connection, wakeup, nursery.cancel_scope)
                await _read(stream, connection)
                # Nothing more will be read (EOF, close, missed heartbeats): release the
                # connection's claims now, not when the writer's heartbeat wait ends.
                _guarded(connection, connection.connection_lost)
                wakeup.set()  # let the writer send what is left, then hang up
                # ...but not for ever: a peer that reads nothing keeps send_all waiting.
                nursery.cancel_scope.deadline = trio.current_time() + CLOSE_TIMEOUT
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away (reset, broken pipe); they arrive grouped by the nursery
        except* Exception:
            log.exception("internal error serving a connection; hanging up")
        finally:
            _guarded(connection, connection.connection_lost)
            self.connections.discard(connection)
            try:
                if connection.close_delay:  # a refused login: the client waits, nobody else
                    await trio.sleep(connection.close_delay)
            finally:
                await trio.aclose_forcefully(stream)

    async def _tls_handshake(
        self, stream: trio.SocketStream, peer: tuple[str, int]
    ) -> tuple[trio.SSLStream[trio.SocketStream], TlsPeer] | None:
        """The TLS handshake, within the time a client has for the AMQP one; None if it failed
        (and the socket is closed)."""
        assert self.tls is not None and self._tls_context is not None
        secured = trio.SSLStream(stream, self._tls_context, server_side=True)
        reason: object = "timed out"
        with trio.move_on_after(HANDSHAKE_TIMEOUT):
            try:
                await secured.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
                reason = error.__cause__ or error
            else:
                return secured, self.tls.peer(secured.getpeercert())
        log.info("TLS handshake with %s:%d failed: %s", *peer, reason)
        await trio.aclose_forcefully(stream)
        return None

    async def _write(
        self,
        stream: trio.abc.Stream,
        connection: ServerConnection,
        wakeup: _Wakeup,
        scope: trio.CancelScope,
    ) -> None:
        while True:
            wakeup.clear()
            data = _guarded(connection, connection.data_to_send)
            if data is None:  # it failed, and the connection is closing: send the close
                data = connection.data_to_send()
            if data:
                await stream.send_all(data)
                continue
            if connection.wants_socket_closed:
                scope.cancel()  # the reader may still be waiting on a silent client
                return
            with trio.move_on_after(connection.heartbeat_interval):
                await wakeup.wait()
                continue
            connection.send_heartbeat()  # the line was quiet for an interval


async def _read(stream: trio.abc.Stream, connection: ServerConnection) -> None:
    resumed = _Wakeup()
    connection.on_reading_resumed = resumed.set
    while not connection.wants_socket_closed:
        with trio.move_on_at(connection.read_deadline(trio.current_time())) as timer:
            if connection.reading_paused:  # the writer's progress (or an unblock) resumes it
                resumed.clear()
                await resumed.wait()
                continue
            data = await stream.receive_some(RECEIVE_SIZE)
        if timer.cancelled_caught:
            _guarded(connection, connection.read_timed_out)  # it logs why
            return
        if not data:
            return
        _guarded(connection, connection.receive_data, data)


def _write_batches(
    streams: StreamStorage, logs: StreamBatch, store: Store | None, batch: list[Any]
) -> None:
    """One write cycle, in a worker thread: stream records, then the store's transaction.

    Raises _WriteFailed, saying which failed: the store's transaction rolls back whole, so its
    batch can be tried again; stream records are written before the store's, so they are on
    disk when only the store failed, and a stream batch written again cuts off first what its
    failed attempt left.
    """
    try:
        streams.write_batch(logs)
    except Exception as error:
        raise _WriteFailed("streams") from error
    if store is not None:
        try:
            store.write_batch(batch)
        except Exception as error:
            raise _WriteFailed("store") from error


class _WriteFailed(Exception):
    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def _address(sockname: tuple[str, int] | tuple[str, int, int, int]) -> tuple[str, int]:
    return sockname[0], sockname[1]  # an IPv6 address has flow info and scope id too


def _guarded(connection: ServerConnection, action: Callable[..., T], *args: object) -> T | None:
    """Run one of the connection's own steps; if it fails, that connection alone pays.

    The failure is logged and the connection closed with 541 INTERNAL_ERROR, as RabbitMQ closes
    a connection whose channel crashed; if even the close fails, it is cut off without one.
    """
    try:
        return action(*args)
    except Exception:
        log.exception("internal error on a connection; closing it with 541")
    try:
        connection.close(541, INTERNAL_ERROR_TEXT)
    except Exception:
        log.exception("internal error closing a connection; hanging up")
        connection.abandon()
    return None


class _Wakeup:
    """A resettable event: set from synchronous code, awaited by the writer."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        if self._event.is_set():
            self._event = trio.Event()

    async def wait(self) -> None:
        await self._event.wait()
