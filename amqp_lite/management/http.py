"""HTTP/1.1 for the management API: h11 parses, trio moves the bytes, in the broker's own loop.

h11 is sans-IO like our AMQP core: this module only shuttles bytes between sockets and h11, and
hands each whole request to a synchronous handler (the domain is synchronous; an answer never
waits). One task per HTTP connection, keep-alive, and bounds on everything a client controls:
header size, body size, time to send a request, idle time, and how many connections are open.
A malformed request gets 400 and costs only its own connection.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

import attrs
import h11
import trio

from amqp_lite.listening import open_tcp_listeners

log = logging.getLogger("amqp_lite.management")

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 20 * 1024 * 1024  # RabbitMQ's default management.http_max_body_size
REQUEST_TIMEOUT = 30.0  # seconds to receive a whole request once it has begun
IDLE_TIMEOUT = 60.0  # seconds a kept-alive connection may sit without a request
MAX_CONNECTIONS = 256
RECEIVE_SIZE = 64 * 1024


@attrs.frozen
class Request:
    method: str  # upper case
    target: str  # path and query, as sent (percent-encoded)
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    peer: str = ""  # the client's address ("" when unknown)


@attrs.frozen
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Response]


class _BadRequest(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class HttpServer:
    def __init__(self, handler: Handler, *, name: str = "management API") -> None:
        self.handler = handler
        self.name = name  # what the log says is listening
        self.port = 0
        self._address = ("", "http")  # host and scheme, once listening
        self._open = 0

    async def serve(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen until cancelled (HTTPS with `ssl_context`); reports the bound port through
        `task_status`. A port that cannot be had is an OSError naming it, not wrapped in an
        ExceptionGroup: it is raised before any nursery opens."""
        await self.serve_listeners(
            await self.listen(host, port, ssl_context=ssl_context), task_status=task_status
        )

    async def listen(
        self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None
    ) -> list[trio.abc.Listener[trio.abc.Stream]]:
        """Binds host:port (0: a free port, then in `self.port`) for `serve_listeners`."""
        tcp_listeners = await open_tcp_listeners(self.name, host, port)
        self.port = tcp_listeners[0].socket.getsockname()[1]
        self._address = (host, "http" if ssl_context is None else "https")
        if ssl_context is None:
            return list(tcp_listeners)
        return [
            trio.SSLListener(listener, ssl_context, https_compatible=True)
            for listener in tcp_listeners
        ]

    async def serve_listeners(
        self,
        listeners: list[trio.abc.Listener[trio.abc.Stream]],
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serves what `listen` bound until cancelled; reports the port through `task_status`."""
        host, scheme = self._address
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._serve_connection, listeners)
            log.info("%s listening on %s://%s:%d/", self.name, scheme, host, self.port)
            task_status.started(self.port)

    async def _serve_connection(self, stream: trio.abc.Stream) -> None:
        if self._open >= MAX_CONNECTIONS:
            await stream.aclose()  # memory stays bounded whatever clients do
            return
        self._open += 1
        try:
            await self._converse(stream, _peer_host(stream))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away
        except Exception:  # a bug costs this connection, never the broker
            log.exception("internal error on a management HTTP connection")
        finally:
            self._open -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _converse(self, stream: trio.abc.Stream, peer: str) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        while True:
            try:
                request = await self._receive(stream, connection, peer)
            except _BadRequest as error:
                if connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    text = str(error).encode()
                    await self._send(stream, connection, "GET", Response(error.status, text))
                return
            if request is None:
                return
            response = self.handler(request)
            await self._send(stream, connection, request.method, response)
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return  # h11 says this connection cannot carry another request
            try:
                connection.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _receive(
        self, stream: trio.abc.Stream, connection: h11.Connection, peer: str
    ) -> Request | None:
        """The next whole request; None when the client closed or stayed idle too long."""
        head: h11.Request | None = None
        body: list[bytes] = []
        size = 0
        deadline = trio.current_time() + IDLE_TIMEOUT
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as error:
                raise _BadRequest(error.error_status_hint, f"bad request: {error}") from None
            if event is h11.NEED_DATA:
                with trio.move_on_at(deadline):
                    data = await stream.receive_some(RECEIVE_SIZE)
                    try:
                        connection.receive_data(bytes(data))
                    except h11.RemoteProtocolError as error:
                        raise _BadRequest(400, f"bad request: {error}") from None
                    continue
                if head is None:
                    return None  # idle keep-alive connection: close it quietly
                raise _BadRequest(408, "request timeout")
            if isinstance(event, h11.Request):
                # h11 bounds only a head still incomplete; one that arrived whole in a couple
                # of reads can be larger, so its size is checked here too.
                head_size = len(event.target) + sum(len(n) + len(v) for n, v in event.headers)
                if head_size > MAX_HEADER_BYTES:
                    raise _BadRequest(431, "request header fields too large")
                head = event
                deadline = trio.current_time() + REQUEST_TIMEOUT
                length = dict(event.headers).get(b"content-length")
                if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
                    raise _BadRequest(413, "request body too large")
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY_BYTES:
                    raise _BadRequest(413, "request body too large")
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return Request(
                    method=head.method.decode("ascii", "replace").upper(),
                    target=head.target.decode("ascii", "replace"),
                    headers={
                        name.decode("latin-1").lower(): value.decode("latin-1")
                        for name, value in head.headers
                    },
                    body=b"".join(body),
                    peer=peer,
                )
            elif isinstance(event, h11.ConnectionClosed):
                return None
            else:  # h11.PAUSED cannot happen before our response; anything else is unexpected
                raise _BadRequest(400, "bad request")

    async def _send(
        self, stream: trio.abc.Stream, connection: h11.Connection, method: str, response: Response
    ) -> None:
        headers = [
            *response.headers,
            ("content-length", str(len(response.body))),
            ("server", "amqp-lite"),
        ]
        if response.status >= 400 and response.status not in (401, 404, 405):
            headers.append(("connection", "close"))  # after an error, start afresh
        data = connection.send(h11.Response(status_code=response.status, headers=headers))
        if method != "HEAD" and response.body:
            data = (data or b"") + (connection.send(h11.Data(data=response.body)) or b"")
        data = (data or b"") + (connection.send(h11.EndOfMessage()) or b"")
        await stream.send_all(data)


def _peer_host(stream: trio.abc.Stream) -> str:
    """The client's address, under TLS too ("" when the stream is not a socket's)."""
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        return str(stream.socket.getpeername()[0])
    return ""
