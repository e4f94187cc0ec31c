"""RabbitMQ's management HTTP API, served by the broker itself in its own trio loop.

The same paths, methods, status codes and JSON as RabbitMQ 3.10.8's management plugin, so that
rabbitmqadmin, pyrabbit2, Flower, KEDA and test harnesses work unchanged. Modules:

  http.py         HTTP/1.1 over trio with h11: bounded, one task per client connection
  app.py          routing, basic auth against the broker's users, tags, RabbitMQ's errors
  paging.py       the list parameters: page, page_size, name, use_regex, sort, columns
  stats.py        message_stats counters and their rates, sampled every 5 s
  overview.py     /api/overview, /api/whoami, /api/nodes, /api/cluster-name
  access.py       /api/vhosts, /api/users, /api/permissions
  policies.py     /api/policies
  limits.py       /api/vhost-limits, /api/user-limits
  exchanges.py    /api/exchanges (and publish)
  queues.py       /api/queues (and contents, get)
  bindings.py     /api/bindings
  connections.py  /api/connections, /api/channels, /api/consumers
  definitions.py  /api/definitions
  health.py       /api/aliveness-test, /api/health/checks
  learning.py     /api/amqp-lite/topology and /explain: beyond RabbitMQ, for the dashboard
  assets.py       the dashboard (`dashboard/`: page, scripts, styles) at / and /dashboard/

Extension points, for what is built on top (dashboard, `amqp-lite ctl`, metrics, tracing):

- A new group of endpoints is a module with a `ROUTES` list of `app.Route`s, added to
  `ROUTE_MODULES` below. A handler takes an `app.Call` (request, path values, query, user,
  `admin`, `stats`) and returns JSON-ready data, an `app.Created`, an `http.Response` (for a
  page or another content type), or raises `app.HttpError`. Check access with the `Call`'s
  `require_admin` / `require_monitor` / `vhost()` / `check()`, which answer as RabbitMQ does.
- Everything the API changes goes through `amqp_lite.admin.Admin` (the one admin surface); a
  new operation belongs there, or in `vhosts.node.Node` when it is pure domain.
- To follow what happens without polling, subscribe to `node.events` (`vhosts.events`): the
  statistics here count churn and keep the counts of closed channels that way.
- Counts and rates: `stats.Stats` reads the counters (`vhosts.counters.MessageCounts`) and
  gives `rate(key, name)`; `stats.message_stats` / `with_rates` shape them as RabbitMQ does.
- The JSON of each object is made by one function (`queues.queue_json`,
  `exchanges.exchange_json`, `connections.connection_json`...): reuse them for other views.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import trio

from amqp_lite.management import (
    access,
    assets,
    bindings,
    connections,
    definitions,
    exchanges,
    health,
    learning,
    limits,
    overview,
    policies,
    queues,
)
from amqp_lite.management.app import Route, Router
from amqp_lite.management.http import HttpServer
from amqp_lite.management.stats import INTERVAL, Stats

if TYPE_CHECKING:
    from amqp_lite.admin import Admin

ROUTE_MODULES = (
    overview,
    access,
    policies,
    limits,
    exchanges,
    queues,
    bindings,
    connections,
    definitions,
    health,
    learning,
)

DEFAULT_PORT = 15672


def routes() -> list[Route]:
    return [route for module in ROUTE_MODULES for route in module.ROUTES]


class Management:
    """One broker's management API: its statistics, its routes and its HTTP listener."""

    def __init__(self, admin: Admin, stats: Stats | None = None) -> None:
        """`stats` may be shared with the Prometheus metrics; whoever made it closes it."""
        self.admin = admin
        self._owns_stats = stats is None
        self.stats = Stats(admin) if stats is None else stats
        self.router = Router(admin, self.stats, routes())
        self.http = HttpServer(assets.serving(self.router))
        self.host = ""
        self.port = 0
        self.scheme = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/"

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        ssl_context: ssl.SSLContext | None = None,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled, over HTTPS with `ssl_context` (see
        `amqp_lite.tls.server_ssl_context`); reports the bound port through `task_status`."""
        self.scheme = "http" if ssl_context is None else "https"
        try:
            # Bound before the nursery opens: a port in use is the OSError itself.
            listeners = await self.http.listen(host, port, ssl_context=ssl_context)
            async with trio.open_nursery() as nursery:
                self.port = await nursery.start(self.http.serve_listeners, listeners)
                self.host = host
                self.router.listening = (host, self.port)
                nursery.start_soon(self._sample)
                task_status.started(self.port)
        finally:
            if self._owns_stats:
                self.stats.close()

    async def _sample(self) -> None:
        """A statistics sample every INTERVAL seconds, and at once when a test moves the clock."""
        clock = self.admin.node.clock
        # Synchronously: the rates are there when the test's advance() returns.
        unsubscribe = clock.advanced.subscribe(lambda: self.stats.sample(clock.now()))
        try:
            while True:
                self.stats.sample(clock.now())
                await trio.sleep(INTERVAL)
        finally:
            unsubscribe()
