"""Running the broker inside another program: from trio, or in a background thread."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import trio

from amqp_lite.server import Server
from amqp_lite.storage import open_store
from vhosts import DEFAULT_VHOST, Node

T = TypeVar("T")


class Broker:
    """`async with Broker() as broker:` serves on `broker.url` (a free port by default)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        vhosts: tuple[str, ...] = (DEFAULT_VHOST,),
        heartbeat: int = 60,
        data_dir: str | os.PathLike[str] | None = None,
        node: Node | None = None,
    ) -> None:
        """`data_dir=None` keeps nothing on disk; a directory makes durable things survive."""
        self.host = host
        self.data_dir = data_dir
        self._vhosts = vhosts
        self.node = node  # made in __aenter__ when not given: recovery reads the store
        self.heartbeat = heartbeat
        self._requested_port = port
        self._nursery_manager: Any = None

    @property
    def port(self) -> int:
        return self.server.port

    def _make_node(self) -> Node:
        store = open_store(self.data_dir) if self.data_dir is not None else None
        return Node(self._vhosts, store=store)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}/"

    def vhost_url(self, vhost: str) -> str:
        from urllib.parse import quote

        return f"amqp://guest:guest@{self.host}:{self.port}/{quote(vhost, safe='')}"

    async def __aenter__(self) -> Broker:
        if self.node is None:
            self.node = await trio.to_thread.run_sync(self._make_node)
        self.server = Server(self.node, heartbeat=self.heartbeat)
        self._nursery_manager = trio.open_nursery()
        nursery = await self._nursery_manager.__aenter__()
        try:
            await nursery.start(self.server.serve, self.host, self._requested_port)
        except BaseException as error:
            await self._nursery_manager.__aexit__(type(error), error, error.__traceback__)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        with trio.CancelScope(shield=True):
            await self.server.shutdown()
        try:
            return await self._nursery_manager.__aexit__(*exc_info)
        finally:
            store = self.node.store if self.node is not None else None
            if store is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(store.flush)
                store.close()


class ThreadedBroker:
    """A broker whose trio loop runs in a background thread; see `run_in_thread`."""

    def __init__(self, broker: Broker, token: trio.lowlevel.TrioToken) -> None:
        self.broker = broker
        self.node = broker.node
        self.url = broker.url
        self.port = broker.port
        self._token = token

    def vhost_url(self, vhost: str) -> str:
        return self.broker.vhost_url(vhost)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)` in the broker's thread (the domain is not thread-safe)."""
        return trio.from_thread.run_sync(function, *args, trio_token=self._token)


@contextlib.contextmanager
def run_in_thread(**broker_options: Any) -> Iterator[ThreadedBroker]:
    """`with run_in_thread() as broker:` for synchronous or asyncio code."""
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
        raise RuntimeError("the broker did not start") from handle.get("error")
    threaded: ThreadedBroker = handle["threaded"]
    try:
        yield threaded
    finally:
        trio.from_thread.run_sync(handle["stop"], trio_token=threaded._token)
        thread.join()
