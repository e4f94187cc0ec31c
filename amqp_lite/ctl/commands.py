"""The verbs of `amqp-lite ctl` that change or show one thing, each over the management API,
with rabbitmqctl 3.10.8's messages and exit statuses."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from amqp_lite.ctl.api import (
    EX_DATAERR,
    EX_NOUSER,
    EX_SOFTWARE,
    EX_UNAVAILABLE,
    EX_USAGE,
    Api,
    CtlError,
    reason_of,
    segment,
)
from amqp_lite.ctl.output import Output

Run = Callable[[Api, Output, argparse.Namespace], None]
Arguments = Callable[[argparse.ArgumentParser], None]


@attrs.frozen
class Verb:
    run: Run
    arguments: Arguments
    help: str


def _user_path(name: str) -> str:
    return f"/api/users/{segment(name)}"


def _require_user(api: Api, name: str, *, quoted: bool = True) -> dict[str, Any]:
    user = api.find(_user_path(name))
    if user is None:
        shown = f'"{name}"' if quoted else name
        raise CtlError(f"User {shown} does not exist", EX_NOUSER)
    return dict(user)


def _require_vhost(api: Api, name: str) -> None:
    if api.find(f"/api/vhosts/{segment(name)}") is None:
        raise CtlError(f"Virtual host {name} does not exist", EX_UNAVAILABLE)


def _tags_text(tags: Any) -> str:
    return ",".join(tags) if isinstance(tags, list) else str(tags or "")


def _failed(answer_reason: str) -> CtlError:
    return CtlError(answer_reason, EX_SOFTWARE)


# -- users ---------------------------------------------------------------------------------------


def add_user(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(f'Adding user "{args.username}" ...')
    if api.find(_user_path(args.username)) is not None:
        raise CtlError(f'User "{args.username}" already exists', EX_SOFTWARE)
    answer = api.call("PUT", _user_path(args.username), {"password": args.password, "tags": ""})
    if answer.status not in (201, 204):
        raise _failed(reason_of(answer))
    out.done()
    out.note(
        "Done. Don't forget to grant the user permissions to some virtual hosts! "
        "See 'amqp-lite ctl set_permissions --help' to learn more."
    )


def delete_user(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(f'Deleting user "{args.username}" ...')
    answer = api.call("DELETE", _user_path(args.username))
    if answer.status == 404:
        raise CtlError(f'User "{args.username}" does not exist', EX_NOUSER)
    if answer.status != 204:
        raise _failed(reason_of(answer))
    out.done()


def change_password(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(f'Changing password for user "{args.username}" ...')
    user = _require_user(api, args.username)
    body = {"password": args.password, "tags": _tags_text(user.get("tags"))}
    answer = api.call("PUT", _user_path(args.username), body)
    if answer.status not in (201, 204):
        raise _failed(reason_of(answer))
    out.done()


def set_user_tags(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(f'Setting tags for user "{args.username}" to [{", ".join(args.tags)}] ...')
    _require_user(api, args.username)
    answer = api.call("PUT", _user_path(args.username), {"tags": ",".join(args.tags)})
    if answer.status not in (201, 204):
        raise _failed(reason_of(answer))
    out.done()


def set_permissions(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(f'Setting permissions for user "{args.username}" in vhost "{args.vhost}" ...')
    _require_vhost(api, args.vhost)
    _require_user(api, args.username, quoted=False)
    body = {"configure": args.conf, "write": args.write, "read": args.read}
    path = f"/api/permissions/{segment(args.vhost)}/{segment(args.username)}"
    answer = api.call("PUT", path, body)
    if answer.status not in (201, 204):
        raise _failed(reason_of(answer))
    out.done()


# -- vhosts --------------------------------------------------------------------------------------


def add_vhost(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(f'Adding vhost "{args.name}" ...')
    body: dict[str, Any] = {}
    if args.description is not None:
        body["description"] = args.description
    if args.tags is not None:
        body["tags"] = args.tags
    answer = api.call("PUT", f"/api/vhosts/{segment(args.name)}", body)
    if answer.status not in (201, 204):
        raise _failed(reason_of(answer))
    out.done()


def delete_vhost(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(f'Deleting vhost "{args.name}" ...')
    answer = api.call("DELETE", f"/api/vhosts/{segment(args.name)}")
    if answer.status == 404:
        raise CtlError(f"Virtual host '{args.name}' does not exist", EX_DATAERR)
    if answer.status != 204:
        raise _failed(reason_of(answer))
    out.done()


def trace(on: bool) -> Run:
    def run(api: Api, out: Output, args: argparse.Namespace) -> None:
        verb = "Starting" if on else "Stopping"
        out.banner(f'{verb} tracing for vhost "{args.vhost}" ...')
        path = f"/api/vhosts/{segment(args.vhost)}"
        if api.find(path) is None:  # a PUT would make it
            raise CtlError(f"Virtual host '{args.vhost}' does not exist", EX_DATAERR)
        answer = api.call("PUT", path, {"tracing": on})
        if answer.status not in (201, 204):
            raise _failed(reason_of(answer))
        out.done(f"Trace {'enabled' if on else 'disabled'} for vhost {args.vhost}")

    return run


# -- policies ------------------------------------------------------------------------------------


def set_policy(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(
        f'Setting policy "{args.name}" for pattern "{args.pattern}" to "{args.definition}" '
        f'with priority "{args.priority}" for vhost "{args.vhost}" ...'
    )
    try:
        definition = json.loads(args.definition)
    except ValueError as error:
        raise CtlError(f"JSON decoding error. Reason: {error}", EX_UNAVAILABLE) from None
    try:
        priority = int(args.priority)
    except ValueError:
        raise CtlError(f"priority must be an integer, not '{args.priority}'", EX_USAGE) from None
    body = {
        "pattern": args.pattern,
        "definition": definition,
        "priority": priority,
        "apply-to": args.apply_to,
    }
    _require_vhost(api, args.vhost)
    answer = api.call("PUT", f"/api/policies/{segment(args.vhost)}/{segment(args.name)}", body)
    if answer.status not in (201, 204):
        raise CtlError(reason_of(answer), EX_UNAVAILABLE)
    out.done()


def clear_policy(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(f'Clearing policy "{args.name}" on vhost "{args.vhost}" ...')
    answer = api.call("DELETE", f"/api/policies/{segment(args.vhost)}/{segment(args.name)}")
    if answer.status == 404:
        raise CtlError("Parameter does not exist", EX_UNAVAILABLE)
    if answer.status != 204:
        raise _failed(reason_of(answer))
    out.done()


# -- queues and connections ----------------------------------------------------------------------


def _queue_path(vhost: str, name: str) -> str:
    return f"/api/queues/{segment(vhost)}/{segment(name)}"


def purge_queue(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(f"Purging queue '{args.queue}' in vhost '{args.vhost}' ...")
    answer = api.call("DELETE", _queue_path(args.vhost, args.queue) + "/contents")
    if answer.status == 404:
        raise CtlError("not_found", EX_UNAVAILABLE)
    if answer.status != 204:
        raise _failed(reason_of(answer))
    out.done()


def delete_queue(api: Api, out: Output, args: argparse.Namespace) -> None:
    condition = ""
    if args.if_empty and args.if_unused:
        condition = " if queue is empty and if queue is unused"
    elif args.if_empty:
        condition = " if queue is empty"
    elif args.if_unused:
        condition = " if queue is unused"
    out.banner(f"Deleting queue '{args.queue}' on vhost '{args.vhost}'{condition} ...")
    path = _queue_path(args.vhost, args.queue)
    queue = api.find(path)
    if queue is None:
        raise CtlError("Queue not found", EX_USAGE)
    if args.if_empty and queue.get("messages", 0):
        raise CtlError("Queue is not empty", EX_USAGE)
    if args.if_unused and queue.get("consumers", 0):
        raise CtlError("Queue is in use", EX_USAGE)
    query = "&".join(
        flag
        for flag, on in (("if-empty=true", args.if_empty), ("if-unused=true", args.if_unused))
        if on
    )
    answer = api.call("DELETE", path + (f"?{query}" if query else ""))
    if answer.status == 404:
        raise CtlError("Queue not found", EX_USAGE)
    if answer.status != 204:
        raise CtlError(reason_of(answer), EX_USAGE)
    out.done(f"Queue was successfully deleted with {queue.get('messages_ready', 0)} ready messages")


def close_connection(api: Api, out: Output, args: argparse.Namespace) -> None:
    out.banner(f"Closing connection {args.connection}, reason: {args.explanation}...")
    answer = api.call(
        "DELETE",
        f"/api/connections/{segment(args.connection)}",
        headers={"X-Reason": args.explanation},
    )
    if answer.status == 404:
        raise CtlError(f"no connection named '{args.connection}'", EX_UNAVAILABLE)
    if answer.status != 204:
        raise _failed(reason_of(answer))
    out.done()


# -- definitions ---------------------------------------------------------------------------------


def export_definitions(api: Api, out: Output, args: argparse.Namespace) -> None:
    definitions = api.get("/api/definitions")
    text = json.dumps(definitions, separators=(",", ":"), ensure_ascii=False)
    if args.path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    out.banner(f'Exporting definitions in JSON to a file at "{args.path}" ...')
    try:
        Path(args.path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise CtlError(f"cannot write {args.path}: {error.strerror}", EX_DATAERR) from None
    out.done()


def import_definitions(api: Api, out: Output, args: argparse.Namespace) -> None:
    if args.path == "-":
        text = sys.stdin.read()
        out.banner("Importing definitions in JSON from standard input ...")
    else:
        path = Path(args.path)
        if not path.is_file():
            raise CtlError(f"Bad argument: File {args.path} does not exist", EX_DATAERR)
        out.banner(f'Importing definitions in JSON from a file at "{args.path}" ...')
        text = path.read_text(encoding="utf-8")
    try:
        definitions = json.loads(text)
    except ValueError as error:
        raise CtlError(
            f"Failed to deserialise input (format: JSON) (error: {error})", EX_DATAERR
        ) from None
    answer = api.call("POST", "/api/definitions", definitions)
    if answer.status not in (201, 204):
        raise CtlError(reason_of(answer), EX_DATAERR)
    out.done()
    out.note("Successfully imported definitions.")


# -- status --------------------------------------------------------------------------------------


def status(api: Api, out: Output, args: argparse.Namespace) -> None:
    overview = api.get("/api/overview")
    node = api.get(f"/api/nodes/{segment(overview['node'])}")
    report = {
        "pid": int(node.get("os_pid", 0)),
        "os": "Linux" if sys.platform.startswith("linux") else sys.platform,
        "uptime": int(node.get("uptime", 0)) // 1000,
        "rabbitmq_version": overview.get("rabbitmq_version", ""),
        "product_name": overview.get("product_name", ""),
        "product_version": overview.get("product_version", ""),
        "erlang_version": overview.get("erlang_full_version", ""),
        "alarms": [
            alarm
            for alarm, key in (("memory", "mem_alarm"), ("disk", "disk_free_alarm"))
            if node.get(key)
        ],
        "disk_free": node.get("disk_free", 0),
        "disk_free_limit": node.get("disk_free_limit", 0),
        "file_descriptors": {
            "total_used": node.get("fd_used", 0),
            "total_limit": node.get("fd_total", 0),
            "sockets_used": node.get("sockets_used", 0),
            "sockets_limit": node.get("sockets_total", 0),
        },
        "memory": {"total": {"rss": node.get("mem_used", 0)}},
        "totals": {
            "virtual_host_count": len(api.get("/api/vhosts")),
            "connection_count": overview.get("object_totals", {}).get("connections", 0),
            "queue_count": overview.get("object_totals", {}).get("queues", 0),
        },
        "listeners": [
            {
                "node": item.get("node"),
                "interface": item.get("ip_address"),
                "port": item.get("port"),
                "protocol": item.get("protocol"),
                "purpose": _PURPOSES.get(item.get("protocol", ""), ""),
            }
            for item in overview.get("listeners", [])
        ],
    }
    if out.json:
        out.document(report)
        return
    out.banner(f"Status of node {overview['node']} ...")
    bold = sys.stdout.isatty()
    lines = [
        ("Runtime", None),
        ("", f"OS PID: {report['pid']}"),
        ("", f"OS: {report['os']}"),
        ("", f"Uptime (seconds): {report['uptime']}"),
        ("", f"RabbitMQ version: {report['rabbitmq_version']}"),
        ("", f"Node name: {overview['node']}"),
        ("", f"Product: {report['product_name']} {report['product_version']}"),
        ("", f"Runtime: {report['erlang_version']}"),
        ("Alarms", None),
        ("", ", ".join(report["alarms"]) or "(none)"),
        ("Memory", None),
        ("", f"Total memory used: {report['memory']['total']['rss'] / 1e9:.4f} gb"),
        ("File Descriptors", None),
        (
            "",
            f"Total: {report['file_descriptors']['total_used']}, "
            f"limit: {report['file_descriptors']['total_limit']}",
        ),
        (
            "",
            f"Sockets: {report['file_descriptors']['sockets_used']}, "
            f"limit: {report['file_descriptors']['sockets_limit']}",
        ),
        ("Free Disk Space", None),
        ("", f"Low free disk space watermark: {report['disk_free_limit'] / 1e9:.2f} gb"),
        ("", f"Free disk space: {report['disk_free'] / 1e9:.4f} gb"),
        ("Totals", None),
        ("", f"Connection count: {report['totals']['connection_count']}"),
        ("", f"Queue count: {report['totals']['queue_count']}"),
        ("", f"Virtual host count: {report['totals']['virtual_host_count']}"),
        ("Listeners", None),
        *(
            (
                "",
                f"Interface: {item['interface']}, port: {item['port']}, "
                f"protocol: {item['protocol']}, purpose: {item['purpose']}",
            )
            for item in report["listeners"]
        ),
    ]
    first = True
    for heading, text in lines:
        if text is None:
            if not first:
                out.write("")
            out.write(f"\033[1m{heading}\033[0m" if bold else heading)
            out.write("")
            first = False
        else:
            out.write(text)


_PURPOSES = {
    "amqp": "AMQP 0-9-1",
    "amqp/ssl": "AMQP 0-9-1 over TLS",
    "http": "HTTP API",
    "https": "HTTP API over TLS (HTTPS)",
}


# -- the table of verbs --------------------------------------------------------------------------


def _args(*names: str) -> Arguments:
    def add(parser: argparse.ArgumentParser) -> None:
        for name in names:
            parser.add_argument(name)

    return add


def _none(parser: argparse.ArgumentParser) -> None:
    pass


def _add_vhost_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--description", default=None)
    parser.add_argument("--tags", default=None, help="comma-separated")


def _set_user_tags_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("username")
    parser.add_argument("tags", nargs="*")


def _set_policy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("pattern")
    parser.add_argument("definition", help="a JSON object")
    parser.add_argument("--priority", default="0")
    parser.add_argument(
        "--apply-to", default="all", choices=["all", "queues", "exchanges", "classic_queues"]
    )


def _delete_queue_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("queue")
    parser.add_argument("-e", "--if-empty", action="store_true")
    parser.add_argument("-u", "--if-unused", action="store_true")


def _path_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help='a file, or "-" for standard input or output')


VERBS: dict[str, Verb] = {
    "status": Verb(status, _none, "the node's runtime, alarms, totals and listeners"),
    "add_user": Verb(add_user, _args("username", "password"), "add a user"),
    "delete_user": Verb(delete_user, _args("username"), "delete a user and close its connections"),
    "change_password": Verb(change_password, _args("username", "password"), "set a password"),
    "set_user_tags": Verb(set_user_tags, _set_user_tags_args, "replace a user's tags"),
    "set_permissions": Verb(
        set_permissions, _args("username", "conf", "write", "read"), "grant permissions in -p"
    ),
    "add_vhost": Verb(add_vhost, _add_vhost_args, "add a virtual host"),
    "delete_vhost": Verb(delete_vhost, _args("name"), "delete a virtual host and all in it"),
    "set_policy": Verb(set_policy, _set_policy_args, "add or replace a policy in -p"),
    "clear_policy": Verb(clear_policy, _args("name"), "remove a policy from -p"),
    "purge_queue": Verb(purge_queue, _args("queue"), "drop a queue's ready messages"),
    "delete_queue": Verb(delete_queue, _delete_queue_args, "delete a queue"),
    "close_connection": Verb(
        close_connection,
        _args("connection", "explanation"),
        "close a connection (by the name list_connections name shows)",
    ),
    "export_definitions": Verb(export_definitions, _path_args, "write the definitions as JSON"),
    "import_definitions": Verb(import_definitions, _path_args, "load a definitions file"),
    "trace_on": Verb(
        trace(True), _none, "copy -p's publishes and deliveries to amq.rabbitmq.trace"
    ),
    "trace_off": Verb(trace(False), _none, "stop tracing -p"),
}
