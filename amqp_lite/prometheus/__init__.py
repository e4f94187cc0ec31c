"""Prometheus metrics, as RabbitMQ's rabbitmq_prometheus plugin serves them.

`GET /metrics` (every per-object family summed, RabbitMQ's default) and
`GET /metrics/per-object` (one sample per queue, channel and connection), on their own port
(15692 by default), served by the management API's HTTP server in the broker's trio loop.

  text.py     the text exposition format, written by hand (see its docstring for why)
  metrics.py  the families: rabbitmq_prometheus's names, types, HELP texts and labels
"""

from __future__ import annotations

import gzip
import ssl
from typing import TYPE_CHECKING

import trio

from amqp_lite.management.app import json_response
from amqp_lite.management.http import HttpServer, Request, Response
from amqp_lite.prometheus.metrics import Metrics
from amqp_lite.prometheus.text import CONTENT_TYPE, render

if TYPE_CHECKING:
    from amqp_lite.admin import Admin
    from amqp_lite.management.stats import Stats

DEFAULT_PORT = 15692
PATHS = {"/metrics": False, "/metrics/per-object": True}  # path: per object?
_ALLOW = (("allow", "HEAD, GET, OPTIONS"),)


class Prometheus:
    """One broker's metrics endpoint: its HTTP listener and what it reads at each scrape."""

    def __init__(self, admin: Admin, stats: Stats) -> None:
        self.metrics = Metrics(admin, stats)
        self.http = HttpServer(self.answer, name="Prometheus metrics")
        self.host = ""
        self.scheme = "http"

    @property
    def port(self) -> int:
        return self.http.port

    @property
    def url(self) -> str:
        """Where the metrics are: http://host:port/metrics."""
        return f"{self.scheme}://{self.host}:{self.port}/metrics"

    def answer(self, request: Request) -> Response:
        path = request.target.partition("?")[0]
        if path not in PATHS:
            return json_response(404, {"error": "Object Not Found", "reason": "Not Found"})
        if request.method == "OPTIONS":
            return Response(200, headers=_ALLOW)
        if request.method not in ("GET", "HEAD"):
            return Response(405, headers=_ALLOW)
        body = render(self.metrics.families(per_object=PATHS[path])).encode()
        encoding = "identity"
        if "gzip" in request.headers.get("accept-encoding", ""):
            body, encoding = gzip.compress(body, compresslevel=1), "gzip"
        return Response(200, body, (("content-type", CONTENT_TYPE), ("content-encoding", encoding)))

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        ssl_context: ssl.SSLContext | None = None,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled, over HTTPS with `ssl_context`; reports the bound port through
        `task_status`."""
        self.scheme = "http" if ssl_context is None else "https"
        self.host = host
        try:
            await self.http.serve(host, port, ssl_context=ssl_context, task_status=task_status)
        finally:
            self.metrics.close()
