"""Running the broker inside another program: from trio, or in a background thread.

Both forms serve on a free loopback port by default, keep nothing on disk unless given a
`data_dir`, can start from a RabbitMQ definitions file, and let a test move the broker's clock
instead of sleeping.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote

import trio

from amqp_lite.admin import Admin
from amqp_lite.limits import DEFAULT_CONSUMER_TIMEOUT, DEFAULT_MAX_MESSAGE_SIZE, Limits
from amqp_lite.login import DEFAULT_LOOPBACK_USERS
from amqp_lite.resources import DiskFreeLimit, MemoryWatermark, ResourceMonitor
from amqp_lite.server import Server
from amqp_lite.storage import CODEC, open_store
from amqp_lite.tls import VERIFY_PEER, TlsOptions, server_ssl_context
from vhosts import DEFAULT_VHOST, Node
from vhosts.clock import Clock
from vhosts.page_files import PAGES_DIRECTORY
from vhosts.paging import DEFAULT_NODE_BUDGET, DEFAULT_QUEUE_BUDGET, Paging
from vhosts.stream_storage import StreamStorage
from vhosts.users import DEFAULT_HASHING, hashing_module

if TYPE_CHECKING:
    from amqp_lite.certificates import TestCertificates
    from amqp_lite.management import Management
    from amqp_lite.management.stats import Stats
    from amqp_lite.prometheus import Prometheus

log = logging.getLogger("amqp_lite.broker")
T = TypeVar("T")

log = logging.getLogger("amqp_lite.broker")


class _Shortcuts:
    """The admin operations tests use most, on the broker itself; `broker.admin` has them all."""

    admin: Admin

    def vhost_url(self, vhost: str) -> str:
        raise NotImplementedError

    def add_vhost(self, name: str) -> str:
        """Create vhost `name` (guest may use it) if it is not there; returns its URL."""
        self.admin.add_vhost(name)
        return self.vhost_url(name)

    def delete_vhost(self, name: str) -> bool:
        """Delete vhost `name` and close its connections, as `rabbitmqctl delete_vhost` does.

        Returns False when there was no such vhost.
        """
        return self.admin.delete_vhost(name)

    def set_policy(
        self,
        vhost: str,
        name: str,
        pattern: str,
        definition: dict[str, Any],
        *,
        priority: int | float = 0,
        apply_to: str = "all",
    ) -> None:
        """Add or replace a policy; see `Admin.set_policy`."""
        self.admin.set_policy(
            vhost, name, pattern, definition, priority=priority, apply_to=apply_to
        )

    def clear_policy(self, vhost: str, name: str) -> bool:
        """Remove a policy (`rabbitmqctl clear_policy`); False when there was none."""
        return self.admin.clear_policy(vhost, name)

    def export_definitions(self) -> dict[str, Any]:
        """The broker's topology as RabbitMQ's `export_definitions` writes it (JSON-ready)."""
        return self.admin.export_definitions()


class Broker(_Shortcuts):
    """`async with Broker() as broker:` serves on `broker.url` (a free port by default).

    `broker.admin` is the admin surface (vhosts, users, permissions, policies, queues,
    connections, listings); it and the methods that change the broker (`add_vhost`,
    `delete_vhost`, `advance`...) are synchronous and must be called in the broker's trio loop.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = 0,
        vhosts: tuple[str, ...] = (DEFAULT_VHOST,),
        heartbeat: int = 60,
        data_dir: str | os.PathLike[str] | None = None,
        node: Node | None = None,
        clock: Clock | None = None,
        definitions: str | os.PathLike[str] | None = None,
        management: bool = False,
        management_host: str | None = None,
        management_port: int = 0,
        loopback_users: Collection[str] = DEFAULT_LOOPBACK_USERS,
        tls: TlsOptions | bool = False,
        tls_port: int = 0,
        management_tls: bool = False,
        password_hashing: str = DEFAULT_HASHING,
        prometheus: bool = False,
        prometheus_host: str | None = None,
        prometheus_port: int = 0,
        prometheus_tls: bool = False,
        memory_high_watermark: str | float | MemoryWatermark = 0.4,
        disk_free_limit: str | int | DiskFreeLimit = "50MB",
        memory_used: Callable[[], int] | None = None,
        disk_free: Callable[[], int] | None = None,
        total_memory: int | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        queue_memory_budget: int = DEFAULT_QUEUE_BUDGET,
        node_memory_budget: int = DEFAULT_NODE_BUDGET,
        connection_max: int | None = None,
        consumer_timeout: int | None = DEFAULT_CONSUMER_TIMEOUT,
    ) -> None:
        """`data_dir=None` keeps nothing on disk; a directory makes durable things survive.

        `clock` is the time the broker reads (TTLs, expiry): `Clock(frozen_at=...)` stands still
        until advanced; a `node` passed in brings its own. `definitions` is a RabbitMQ
        definitions file applied before serving; a bad one raises `DefinitionsError` from
        `__aenter__`, and nothing is served. `loopback_users` may log in only from a loopback
        address (RabbitMQ's default: guest); `()` lets them in from anywhere.

        `tls` adds an amqps listener on `tls_port` (0: a free one): `TlsOptions` with your
        certificate, or `True` for a certificate made on the spot (see `certificates`), whose
        listener verifies client certificates that are offered (for EXTERNAL) but needs none.
        `port=None` leaves out the plain listener. `management_tls` serves the management API
        over HTTPS with the same certificate. `password_hashing` hashes the passwords given at
        runtime: sha256 (the default), sha512 or md5, as RabbitMQ's password_hashing_module.

        `prometheus` serves RabbitMQ's Prometheus metrics (`prometheus_url`) on
        `prometheus_port` (0: a free one), over HTTPS with `prometheus_tls`.

        The memory and disk alarms block publishers as RabbitMQ's do: `memory_high_watermark` is
        a fraction of `total_memory` (by default the machine's, or the cgroup's limit) or a size
        such as "300MB"; `disk_free_limit` a size, or "mem_relative:1.5". `memory_used` and
        `disk_free` replace the readings (bytes now), for a test that moves the broker's clock
        rather than filling memory: they are read every 2.5 s, and every 0.1 to 10 s, of it.
        ValueError here for a setting that does not parse.

        `max_message_size` is the largest body a publish may have, in bytes (RabbitMQ's
        max_message_size: 128 MiB by default, at most 512 MiB); a larger one is refused with
        406 as soon as its content header says how large it is. `connection_max` is how many
        connections the broker serves at once (RabbitMQ's connection_max): more wait to be
        accepted until one closes. `consumer_timeout` (ms, RabbitMQ's: 30 minutes by default,
        None for none) closes a channel whose oldest delivery waited longer for its ack; a
        queue's `x-consumer-timeout` or policy `consumer-timeout` overrides it.

        `queue_memory_budget` and `node_memory_budget` are the bytes of ready messages one
        classic queue, and all of them together, keep in memory; messages past them wait in
        page files (in `data_dir`, or a temporary directory) until the head of their queue
        reaches them.
        """
        self.host = host
        self.data_dir = data_dir
        self._vhosts = vhosts
        self.node = node  # made in __aenter__ when not given: recovery reads the store
        self._clock = clock
        self._definitions = definitions
        self.heartbeat = heartbeat
        self.loopback_users = loopback_users
        self._requested_port = port
        self._tls = tls
        self._password_hashing = hashing_module(password_hashing)  # ValueError: unknown
        self._tls_port = tls_port
        self._management_tls = management_tls
        self.tls: TlsOptions | None = None  # the TLS listener's settings, once serving
        # Made for `tls=True`: the CA a client must trust, and client certificates on request.
        self.certificates: TestCertificates | None = None
        self._certificates_dir: tempfile.TemporaryDirectory[str] | None = None
        self._nursery_manager: contextlib.AbstractAsyncContextManager[trio.Nursery] | None = None
        # The management HTTP API: off unless asked for; on the AMQP host by default.
        self._management = (management_host or host, management_port) if management else None
        self.management: Management | None = None
        self._management_scope: trio.CancelScope | None = None
        self._prometheus = (prometheus_host or host, prometheus_port) if prometheus else None
        self._prometheus_tls = prometheus_tls
        self.prometheus: Prometheus | None = None
        self._prometheus_scope: trio.CancelScope | None = None
        self._stats: Stats | None = None  # message counts the two HTTP endpoints share
        self._memory_high_watermark = (
            memory_high_watermark
            if isinstance(memory_high_watermark, MemoryWatermark)
            else MemoryWatermark.parse(memory_high_watermark)
        )
        self._disk_free_limit = (
            disk_free_limit
            if isinstance(disk_free_limit, DiskFreeLimit)
            else DiskFreeLimit.parse(disk_free_limit)
        )
        self._memory_used = memory_used
        self._disk_free = disk_free
        self._total_memory = total_memory
        self.limits = Limits(
            max_message_size=max_message_size,
            connection_max=connection_max,
            consumer_timeout=consumer_timeout,
        )
        self._memory_budgets = (queue_memory_budget, node_memory_budget)
        if min(self._memory_budgets) < 0:
            raise ValueError("a memory budget cannot be negative")

    @property
    def port(self) -> int:
        """The plain AMQP listener's port (0 with `port=None`)."""
        return self.server.port

    @property
    def tls_port(self) -> int:
        """The amqps listener's port (0 without TLS)."""
        return self.server.tls_port

    @property
    def management_url(self) -> str:
        """http://host:port/ of the management API (`Broker(management=True)`)."""
        if self.management is None:
            raise RuntimeError("the management API is off: Broker(management=True) turns it on")
        return self.management.url

    @property
    def prometheus_url(self) -> str:
        """http://host:port/metrics of the Prometheus metrics (`Broker(prometheus=True)`)."""
        if self.prometheus is None:
            raise RuntimeError("the metrics are off: Broker(prometheus=True) turns them on")
        return self.prometheus.url

    @property
    def resources(self) -> ResourceMonitor:
        """The memory and disk monitor: its limits and last readings."""
        assert self.server.resources is not None
        return self.server.resources

    @property
    def url(self) -> str:
        """amqps://guest:guest@host:tls_port/ when the broker has TLS, amqp://...:port/ else."""
        return self._address() + "/"

    @property
    def plain_url(self) -> str | None:
        """The plain listener's amqp:// URL even when `url` is the TLS one; None without it."""
        return f"amqp://guest:guest@{self.host}:{self.port}/" if self.port else None

    def vhost_url(self, vhost: str) -> str:
        # The vhost is one path segment: '/' itself becomes %2F, as clients expect.
        return f"{self._address()}/{quote(vhost, safe='')}"

    def _address(self) -> str:
        if self.tls_port:
            return f"amqps://guest:guest@{self.host}:{self.tls_port}"
        return f"amqp://guest:guest@{self.host}:{self.port}"

    def _tls_options(self) -> TlsOptions | None:
        if isinstance(self._tls, TlsOptions):
            return self._tls
        if not self._tls:
            return None
        from amqp_lite.certificates import TestCertificates  # needs `cryptography`

        self._certificates_dir = tempfile.TemporaryDirectory(prefix="amqp-lite-tls-")
        self.certificates = certificates = TestCertificates(self._certificates_dir.name)
        return TlsOptions(
            certificates.server_cert,
            certificates.server_key,
            certificates.ca,
            verify=VERIFY_PEER,
        )

    def _prepare_node(self) -> Node:
        """Recover from the store and apply definitions: file I/O, so run in a worker thread."""
        node = self.node
        if node is None:
            store = open_store(self.data_dir) if self.data_dir is not None else None
            node = Node(
                self._vhosts,
                store=store,
                clock=self._clock,
                password_hashing=self._password_hashing,
                paging=self._paging(store.directory / PAGES_DIRECTORY if store else None),
            )
            if store is not None:
                _log_recovered(node)
        if self._definitions is not None:
            # Imported here: most embedders never load definitions.
            from vhosts.definitions import load

            try:
                load(self._definitions).apply_to(node)
            except BaseException:
                if self.node is None and node.store is not None:
                    node.store.close()
                raise
        return node

    def _paging(self, directory: Path | None) -> Paging:
        queue_budget, node_budget = self._memory_budgets
        return Paging(
            directory,
            encode_properties=CODEC.encode_properties,
            decode_properties=CODEC.decode_properties,
            queue_budget=queue_budget,
            node_budget=node_budget,
        )

    async def __aenter__(self) -> Broker:
        if self.node is None and self.data_dir is None:
            # Nothing to read: no worker thread.
            self.node = Node(
                self._vhosts,
                streams=StreamStorage(codec=CODEC),  # in a temporary directory
                clock=self._clock,
                password_hashing=self._password_hashing,
                paging=self._paging(None),  # in a temporary directory too
            )
        if self.node is None or self._definitions is not None:
            self.node = await trio.to_thread.run_sync(self._prepare_node)
        self.tls = self._tls_options()
        resources = ResourceMonitor(
            self.node,
            memory_high_watermark=self._memory_high_watermark,
            disk_free_limit=self._disk_free_limit,
            data_dir=self.data_dir if self.data_dir is not None else tempfile.gettempdir(),
            memory_used=self._memory_used,
            disk_free=self._disk_free,
            total_memory=self._total_memory,
        )
        self.server = Server(
            self.node,
            heartbeat=self.heartbeat,
            loopback_users=self.loopback_users,
            tls=self.tls,
            resources=resources,
            limits=self.limits,
        )
        self.admin = Admin(self.node, self.server)
        self._nursery_manager = trio.open_nursery()
        nursery = await self._nursery_manager.__aenter__()
        try:
            tls_port = self._tls_port if self.tls is not None else None
            serve = functools.partial(self.server.serve, tls_port=tls_port)
            await nursery.start(serve, self.host, self._requested_port)
            if self._management is not None:
                await nursery.start(self._serve_management, *self._management)
            if self._prometheus is not None:
                await nursery.start(self._serve_prometheus, *self._prometheus)
        except BaseException:
            # Exit the nursery cleanly (stopping the AMQP listener if the management one
            # failed), so the caller gets the error itself (a port in use is an OSError), not an
            # ExceptionGroup around it.
            nursery.cancel_scope.cancel()
            await self._nursery_manager.__aexit__(None, None, None)
            if self._certificates_dir is not None:
                self._certificates_dir.cleanup()
            self._close_stats()
            raise
        return self

    async def _serve_management(
        self, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        from amqp_lite.management import Management  # most embedders never serve it

        self.management = Management(self.admin, self._shared_stats())
        context = self._http_ssl_context("management_tls") if self._management_tls else None
        with trio.CancelScope() as self._management_scope:
            await self.management.serve(host, port, ssl_context=context, task_status=task_status)

    async def _serve_prometheus(
        self, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        from amqp_lite.prometheus import Prometheus

        self.prometheus = Prometheus(self.admin, self._shared_stats())
        context = self._http_ssl_context("prometheus_tls") if self._prometheus_tls else None
        with trio.CancelScope() as self._prometheus_scope:
            await self.prometheus.serve(host, port, ssl_context=context, task_status=task_status)

    def _shared_stats(self) -> Stats:
        """The message counts both HTTP endpoints read: one set of event listeners."""
        if self._stats is None:
            from amqp_lite.management.stats import Stats

            self._stats = Stats(self.admin)
        return self._stats

    def _http_ssl_context(self, option: str) -> ssl.SSLContext:
        """What an HTTP listener serves HTTPS with: the broker's own certificate."""
        if self.tls is None:
            raise ValueError(f"{option} needs the broker's TLS certificate: give tls")
        return server_ssl_context(self.tls.certfile, self.tls.keyfile)

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        for scope in (self._management_scope, self._prometheus_scope):
            if scope is not None:
                scope.cancel()
        with trio.CancelScope(shield=True):
            await self.server.shutdown()
        assert self._nursery_manager is not None, "__aexit__ without __aenter__"
        try:
            return await self._nursery_manager.__aexit__(*exc_info)
        finally:
            if self.node is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_flush, self.node)
                _close(self.node)
            if self._certificates_dir is not None:
                self._certificates_dir.cleanup()
            self._close_stats()

    def _close_stats(self) -> None:
        if self._stats is not None:
            self._stats.close()
            self._stats = None

    # -- driving the broker from a test (in its trio loop) ---------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the broker's clock forward and fire what fell due (expired TTLs...) at once.

        Firing here rather than leaving it to the server's timer task means a client's next
        request already sees the outcome: a 60 s TTL is over when `advance(61)` returns.
        """
        assert self.node is not None
        clock = self.node.clock
        clock.advance(seconds)
        self.node.timers.run_due(clock.now())


def _flush(node: Node) -> None:
    """Write what is still pending, stream logs first (the store's batch may wait for them)."""
    try:
        node.streams.flush()
        if node.store is not None:
            node.store.flush()
    except Exception as error:  # a full disk, say: nothing confirmed is in there
        log.error("could not write what was pending at shutdown, none of it confirmed: %s", error)


def _close(node: Node) -> None:
    node.streams.close()
    if node.paging is not None:
        node.paging.close()
    if node.store is not None:
        node.store.close()


class ThreadedBroker(_Shortcuts):
    """A broker whose trio loop runs in a background thread; see `run_in_thread`.

    Safe to use from any thread: every change goes to the broker's thread through `call`, and
    `admin` is the broker's admin surface with each call made there.
    """

    def __init__(self, broker: Broker, token: trio.lowlevel.TrioToken) -> None:
        """Made in the broker's thread, which it remembers."""
        self.broker = broker
        self.node = broker.node
        self.url = broker.url
        self.plain_url = broker.plain_url
        self.port = broker.port
        self.tls_port = broker.tls_port
        self.certificates = broker.certificates
        self.management_url = broker.management_url if broker.management is not None else None
        self.prometheus_url = broker.prometheus_url if broker.prometheus is not None else None
        self._token = token
        self._thread_id = threading.get_ident()
        self.admin = cast(Admin, _InBrokerThread(broker.admin, self.call))

    def vhost_url(self, vhost: str) -> str:
        return self.broker.vhost_url(vhost)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)` in the broker's thread (the domain is not thread-safe).

        Works from any thread, including one running its own trio loop (a trio test), which
        `trio.from_thread` refuses; the caller waits, briefly, for the result.
        """
        if threading.get_ident() == self._thread_id:
            return function(*args)
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(function(*args))
            except BaseException as error:  # raised in the caller's thread instead
                result.set_exception(error)

        self._token.run_sync_soon(run)
        return result.result()

    def advance(self, seconds: float) -> None:
        """Move the broker's clock forward; what fell due has happened when this returns."""
        self.call(self.broker.advance, seconds)


class _InBrokerThread:
    """An object whose methods run in the broker's thread, wherever they are called from."""

    def __init__(self, target: object, call: Callable[..., Any]) -> None:
        self._target = target
        self._call = call

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if not callable(method):
            raise AttributeError(f"{name} is not a method: read it with call()")

        @functools.wraps(method)
        def in_broker_thread(*args: Any, **kwargs: Any) -> Any:
            return self._call(functools.partial(method, *args, **kwargs))

        return in_broker_thread


@contextlib.contextmanager
def run_in_thread(**broker_options: Any) -> Iterator[ThreadedBroker]:
    """`with run_in_thread() as broker:` for synchronous or asyncio code.

    Takes `Broker`'s options. If the broker cannot start (a bad definitions file, a port in
    use), the error is raised here, in the caller's thread.
    """
    ready = threading.Event()
    handle: dict[str, Any] = {}

    async def main() -> None:
        async with Broker(**broker_options) as broker:
            stop = trio.Event()
            handle["threaded"] = ThreadedBroker(broker, trio.lowlevel.current_trio_token())
            handle["stop"] = stop.set
            ready.set()
            await stop.wait()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as error:  # reported to the caller below
            handle["error"] = error
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="amqp-lite-broker", daemon=True)
    thread.start()
    ready.wait()
    if "threaded" not in handle:
        thread.join()
        error = handle.get("error")
        if isinstance(error, Exception):
            raise error
        raise RuntimeError("the broker did not start") from error
    threaded: ThreadedBroker = handle["threaded"]
    try:
        yield threaded
    finally:
        threaded._token.run_sync_soon(handle["stop"])
        thread.join()


def _log_recovered(node: Node) -> None:
    """What start-up found in the store, as RabbitMQ reports its recovery."""
    vhosts = node.vhosts.values()
    queues = sum(len(vhost.queues) for vhost in vhosts)
    messages = sum(queue.message_count for vhost in vhosts for queue in vhost.queues.values())
    log.info(
        "recovered %d vhosts, %d users, %d queues, %d messages",
        len(node.vhosts),
        len(node.users),
        queues,
        messages,
    )
