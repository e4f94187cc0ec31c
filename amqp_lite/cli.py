"""`amqp-lite serve` and friends."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from amqp_lite.broker import Broker
from amqp_lite.limits import DEFAULT_CONSUMER_TIMEOUT, DEFAULT_MAX_MESSAGE_SIZE
from amqp_lite.login import CERT_LOGIN_FROM, LOGIN_FROM_DN
from amqp_lite.logs import configure as configure_logging
from amqp_lite.resources import DiskFreeLimit, MemoryWatermark, parse_information_unit
from amqp_lite.storage import default_data_dir, open_store
from amqp_lite.tls import (
    DEFAULT_TLS_PORT,
    VERIFY_NONE,
    VERIFY_PEER,
    TlsConfigError,
    TlsOptions,
)
from vhosts import DEFAULT_VHOST
from vhosts.paging import DEFAULT_NODE_BUDGET, DEFAULT_QUEUE_BUDGET
from vhosts.store import StoreError

T = TypeVar("T")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ctl"]:  # its options may come before or after its verb: it parses them
        from amqp_lite.ctl import main as ctl

        return ctl(argv[1:])
    parser = argparse.ArgumentParser(prog="amqp-lite", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "ctl",
        help="rabbitmqctl's verbs (list_queues, add_user, trace_on...) against a running broker",
        add_help=False,
    )

    serve = commands.add_parser("serve", help="run the broker")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--port", type=_port_or_none, default=5672, help="plain AMQP; 'none' for no such listener"
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one JSON object per line (time, level, logger, message), for log collectors",
    )
    serve.add_argument(
        "--vhost", action="append", default=[], help="a virtual host besides '/' (repeatable)"
    )
    serve.add_argument("--heartbeat", type=int, default=60, help="seconds; 0 turns heartbeats off")
    serve.add_argument(
        "--management-host", default="127.0.0.1", help="where the management HTTP API listens"
    )
    serve.add_argument(
        "--management-port", type=int, default=15672, help="the management HTTP API's port"
    )
    serve.add_argument(
        "--no-management", action="store_true", help="do not serve the management HTTP API"
    )
    serve.add_argument(
        "--prometheus-host", default="127.0.0.1", help="where the Prometheus metrics are served"
    )
    serve.add_argument(
        "--prometheus-port", type=int, default=15692, help="the Prometheus metrics' port"
    )
    serve.add_argument(
        "--no-prometheus", action="store_true", help="do not serve the Prometheus metrics"
    )
    serve.add_argument(
        "--loopback-users",
        default="guest",
        metavar="USER[,USER...]|none",
        help="users who may log in only from a loopback address (default guest, as RabbitMQ)",
    )
    serve.add_argument(
        "--password-hashing",
        choices=["sha256", "sha512", "md5"],
        default="sha256",
        help="how passwords given at runtime are hashed (RabbitMQ's password_hashing_module)",
    )
    tls = serve.add_argument_group(
        "TLS", "amqps beside (or, with --port none, instead of) plain AMQP; TLS 1.2 and 1.3 only"
    )
    tls.add_argument(
        "--tls-port",
        type=int,
        default=None,
        help=f"the amqps port (default {DEFAULT_TLS_PORT} when a certificate is given)",
    )
    tls.add_argument("--tls-cert", metavar="FILE", help="the server certificate chain (PEM)")
    tls.add_argument("--tls-key", metavar="FILE", help="its private key (default: in the cert)")
    tls.add_argument(
        "--tls-ca", metavar="FILE", help="the CA certificates client certificates must chain to"
    )
    tls.add_argument(
        "--tls-verify",
        choices=[VERIFY_NONE, VERIFY_PEER],
        default=VERIFY_NONE,
        help="ask clients for a certificate and refuse a bad one (RabbitMQ's ssl_options.verify)",
    )
    tls.add_argument(
        "--tls-fail-if-no-peer-cert",
        action="store_true",
        help="with verify_peer, refuse clients without a certificate",
    )
    tls.add_argument(
        "--ssl-cert-login-from",
        choices=list(CERT_LOGIN_FROM),
        default=LOGIN_FROM_DN,
        help="what of a client certificate EXTERNAL takes as the user name",
    )
    tls.add_argument(
        "--management-tls",
        action="store_true",
        help="serve the management API over HTTPS with the same certificate",
    )
    tls.add_argument(
        "--prometheus-tls",
        action="store_true",
        help="serve the Prometheus metrics over HTTPS with the same certificate",
    )
    limits = serve.add_argument_group(
        "resources and limits", "RabbitMQ's flow control and limits, with its defaults"
    )
    limits.add_argument(
        "--memory-high-watermark",
        type=_parsed(MemoryWatermark.parse),
        default=MemoryWatermark(),
        metavar="FRACTION|SIZE",
        help="block publishers while the broker uses more memory than this: a fraction of the "
        "machine's memory (or the cgroup's limit), default 0.4, or a size such as 300MB, 2GiB",
    )
    limits.add_argument(
        "--disk-free-limit",
        type=_parsed(DiskFreeLimit.parse),
        default=DiskFreeLimit(),
        metavar="SIZE|mem_relative:X",
        help="block publishers while the data directory's disk has less free space than this: "
        "a size (default 50MB) or mem_relative:1.5 (times the memory)",
    )
    limits.add_argument(
        "--max-message-size",
        type=_parsed(parse_information_unit),
        default=DEFAULT_MAX_MESSAGE_SIZE,
        metavar="SIZE",
        help="refuse a publish whose body is larger (default 128MiB, at most 512MiB)",
    )
    limits.add_argument(
        "--consumer-timeout",
        type=_consumer_timeout,
        default=DEFAULT_CONSUMER_TIMEOUT,
        metavar="MS|none",
        help="close a channel whose delivery stays unacknowledged longer (default 1800000: "
        "30 minutes)",
    )
    limits.add_argument(
        "--connection-max",
        type=_connection_max,
        default=None,
        metavar="N|infinity",
        help="serve at most N connections at once; more wait to be accepted (default infinity)",
    )
    serve.add_argument(
        "--data-dir",
        default=None,
        help=f"where durable things are kept (default {default_data_dir()}); 'none' keeps nothing",
    )
    serve.add_argument(
        "--transient", action="store_true", help="keep nothing on disk (same as --data-dir none)"
    )
    serve.add_argument(
        "--queue-memory-budget",
        type=_parsed(parse_information_unit),
        default=DEFAULT_QUEUE_BUDGET,
        metavar="SIZE",
        help="bytes of ready messages one classic queue keeps in memory before paging to disk "
        "(e.g. 64MiB, 100MB, 0 to page at once; default 64MiB)",
    )
    serve.add_argument(
        "--node-memory-budget",
        type=_parsed(parse_information_unit),
        default=DEFAULT_NODE_BUDGET,
        metavar="SIZE",
        help="the same for all classic queues together (default 256MiB)",
    )
    serve.add_argument(
        "--definitions",
        metavar="FILE",
        help="a RabbitMQ definitions file (rabbitmqctl export_definitions) to load before serving",
    )

    bench = commands.add_parser(
        "bench", help="measure a broker: confirmed publish, consume, latency"
    )
    bench.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    bench.add_argument("--messages", type=int, default=20000)
    bench.add_argument("--size", type=int, default=100)
    bench.add_argument("--window", type=int, default=1000, help="unconfirmed publishes at most")
    bench.add_argument("--prefetch", type=int, default=500)
    bench.add_argument("--ack-every", type=int, default=50)
    bench.add_argument("--latency-messages", type=int, default=2000, help="0 skips round trips")
    bench.add_argument("--persistent", action="store_true", help="delivery_mode 2, durable queue")
    bench.add_argument(
        "--queue-type",
        choices=("classic", "quorum", "stream"),
        help="declare the queues with this x-queue-type (quorum queues and streams are durable; "
        "a stream is read from its first offset)",
    )
    bench.add_argument(
        "--connections", type=int, default=0, help="also time opening this many connections"
    )
    bench.add_argument(
        "--tls", action="store_true", help="TLS even for an amqp:// URL (amqps:// implies it)"
    )
    bench.add_argument("--tls-ca", metavar="FILE", help="trust the broker's certificate by this CA")
    bench.add_argument(
        "--tls-insecure", action="store_true", help="do not verify the broker's certificate"
    )
    bench.add_argument(
        "--backlog",
        type=int,
        metavar="N",
        help="instead: queue N messages, then drain them; with --broker-pid, report its memory",
    )
    bench.add_argument(
        "--broker-pid", type=int, help="the broker's process id, to read its memory from /proc"
    )
    bench.add_argument(
        "--queue-argument",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an argument of the backlog's queue (repeatable), e.g. x-queue-mode=lazy; "
        "NAME:=JSON for a typed value",
    )

    explain = commands.add_parser(
        "explain",
        help="explain how a topology file routes a message, without a broker",
        description="Route a message through the exchanges and bindings of a definitions file "
        "and print every binding's verdict, exchange-to-exchange hops, alternate exchanges and "
        "the queues reached. Exit status: 0 routed, 1 unroutable, 2 bad input.",
    )
    explain.add_argument("--definitions", metavar="FILE", required=True)
    explain.add_argument("--vhost", default=DEFAULT_VHOST)
    explain.add_argument("--exchange", required=True, help="'' for the default exchange")
    explain.add_argument("--routing-key", default="")
    explain.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a message header (repeatable); NAME:=JSON for a typed value, e.g. 'n:=7', "
        "'CC:=[\"a.b\"]'",
    )

    export = commands.add_parser(
        "export-definitions",
        help="write the stored topology as a RabbitMQ definitions file",
        description="Write the vhosts, users, permissions, policies, exchanges, queues and "
        "bindings kept in a data directory as a definitions file that RabbitMQ's "
        "import_definitions (or amqp-lite serve --definitions) loads. Only what is stored is "
        "there: run it on the data directory of a stopped broker, or use "
        "Broker.export_definitions() for a running one.",
    )
    export.add_argument("--data-dir", default=None, help=f"default {default_data_dir()}")
    export.add_argument("path", nargs="?", default="-", help="the file to write; - for stdout")

    args = parser.parse_args(argv)
    if args.command == "serve":
        configure_logging(args.log_level, args.log_format)
        vhosts = (DEFAULT_VHOST, *[v for v in args.vhost if v != DEFAULT_VHOST])
        data_dir = None if args.transient else (args.data_dir or default_data_dir())
        if str(data_dir).lower() == "none":
            data_dir = None
        # OSError: a listener's port in use, said in one line rather than a traceback.
        refusals: tuple[type[Exception], ...] = (StoreError, TlsConfigError, OSError)
        if args.definitions is not None:
            # Imported only when asked for, as the broker does.
            from vhosts.definitions import DefinitionsError

            refusals += (DefinitionsError,)  # the file conflicts with what the store holds
            if not _check_definitions(args.definitions):
                return 1
        try:
            management = (
                None if args.no_management else (args.management_host, args.management_port)
            )
            tls_options = _tls_options(args)
            broker = Broker(
                host=args.host,
                port=args.port,
                vhosts=vhosts,
                heartbeat=args.heartbeat,
                data_dir=data_dir,
                definitions=args.definitions,
                loopback_users=_user_list(args.loopback_users),
                management=management is not None,
                management_host=management[0] if management is not None else None,
                management_port=management[1] if management is not None else 0,
                tls=tls_options or False,
                tls_port=DEFAULT_TLS_PORT if args.tls_port is None else args.tls_port,
                management_tls=args.management_tls,
                prometheus=not args.no_prometheus,
                prometheus_host=args.prometheus_host,
                prometheus_port=args.prometheus_port,
                prometheus_tls=args.prometheus_tls,
                password_hashing=args.password_hashing,
                memory_high_watermark=args.memory_high_watermark,
                disk_free_limit=args.disk_free_limit,
                max_message_size=args.max_message_size,
                queue_memory_budget=args.queue_memory_budget,
                node_memory_budget=args.node_memory_budget,
                connection_max=args.connection_max,
                consumer_timeout=args.consumer_timeout,
            )
            trio.run(_serve, broker)
        except refusals as error:
            logging.getLogger("amqp_lite").error("%s", error)
            return 1
        return 0
    if args.command == "export-definitions":
        return _export_definitions(args.data_dir or default_data_dir(), args.path)
    if args.command == "explain":
        from amqp_lite.explain import explain as run_explain

        return run_explain(
            args.definitions, args.vhost, args.exchange, args.routing_key, args.header
        )
    if args.command == "bench" and args.backlog is not None:
        from amqp_lite.bench import run_backlog

        return run_backlog(
            args.url,
            args.backlog,
            args.size,
            window=args.window,
            prefetch=args.prefetch,
            ack_every=args.ack_every,
            persistent=args.persistent,
            arguments=dict(_queue_argument(text) for text in args.queue_argument),
            broker_pid=args.broker_pid,
        )
    if args.command == "bench":
        from amqp_lite.bench import run_bench

        return run_bench(
            args.url,
            messages=args.messages,
            size=args.size,
            window=args.window,
            prefetch=args.prefetch,
            ack_every=args.ack_every,
            latency_messages=args.latency_messages,
            persistent=args.persistent,
            ssl_context=_bench_tls(args),
            connections=args.connections,
            queue_type=args.queue_type,
        )
    return 2


def _export_definitions(data_dir: str | os.PathLike[str], path: str) -> int:
    from vhosts import Node
    from vhosts.definitions_export import export_definitions
    from vhosts.store import STORE_FILE

    log = logging.getLogger("amqp_lite")
    if not (Path(data_dir) / STORE_FILE).is_file():
        log.error("no amqp-lite store in %s", data_dir)
        return 1
    try:
        store = open_store(data_dir)
    except StoreError as error:
        log.error("%s", error)
        return 1
    try:
        node = Node(vhost_names=(), guest=False, store=store)
        text = json.dumps(export_definitions(node), indent=2, ensure_ascii=False) + "\n"
    finally:
        store.close()
    if path == "-":
        sys.stdout.write(text)
    else:
        Path(path).write_text(text, encoding="utf-8")
    return 0


def _check_definitions(path: str) -> bool:
    """Refuse a bad file before opening the store or the port; say what it leaves out."""
    from vhosts.definitions import DefinitionsError, load

    log = logging.getLogger("amqp_lite")
    try:
        ignored = load(path).ignored
    except (DefinitionsError, OSError) as error:
        log.error("%s", error)
        return False
    for note in ignored:
        log.warning("%s", note)
    return True


def _bench_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The client context for `bench`: None lets an amqps:// URL take Python's default."""
    if not (args.tls or args.tls_ca or args.tls_insecure):
        return None
    context = ssl.create_default_context(cafile=args.tls_ca)
    if args.tls_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _parsed(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from a parser whose ValueError says what is wrong."""

    def argument(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return argument


def _queue_argument(text: str) -> tuple[str, Any]:
    """`x-queue-mode=lazy` -> ("x-queue-mode", "lazy"); `x-max-length:=10` -> (..., 10)."""
    if ":=" in text:
        name, value = text.split(":=", 1)
        return name, json.loads(value)
    name, _, value = text.partition("=")
    return name, value


def _consumer_timeout(text: str) -> int | None:
    if text in ("none", "infinity"):
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError("should be milliseconds, or none")
    return int(text)


def _connection_max(text: str) -> int | None:
    if text == "infinity":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError("should be a non-negative integer, or infinity")
    return int(text)


def _port_or_none(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


def _tls_options(args: argparse.Namespace) -> TlsOptions | None:
    """The TLS listener's settings from the command line; TlsConfigError if they do not fit."""
    if args.tls_cert is None:
        if (
            args.tls_port is not None
            or args.port is None
            or args.management_tls
            or args.prometheus_tls
        ):
            raise TlsConfigError("TLS needs a certificate: give --tls-cert (and --tls-key)")
        return None
    options = TlsOptions(
        args.tls_cert,
        args.tls_key,
        args.tls_ca,
        verify=args.tls_verify,
        fail_if_no_peer_cert=args.tls_fail_if_no_peer_cert,
        login_from=args.ssl_cert_login_from,
    )
    options.context()  # refuse bad files now, with a sentence, before anything starts
    return options


def _user_list(text: str) -> tuple[str, ...]:
    """`guest,admin` -> ("guest", "admin"); `none` (or nothing) -> ()."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    return () if names == ("none",) else names


async def _serve(broker: Broker) -> None:
    log = logging.getLogger("amqp_lite")
    data_dir = broker.data_dir
    log.info("data directory: %s", data_dir if data_dir is not None else "none (transient)")
    async with broker:
        log.info("amqp-lite ready on %s", broker.url)
        if broker.management is not None:
            log.info("management API on %s", broker.management_url)
        if broker.prometheus is not None:
            log.info("Prometheus metrics on %s", broker.prometheus_url)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                log.info("shutting down")
                return
