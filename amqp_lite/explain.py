"""`amqp-lite explain`: why a message would go where it goes, from a topology file, no broker.

The file is loaded into an in-memory node exactly as `serve --definitions` would load it, then
the publish is routed by `vhosts.route_explain`, which records every binding's verdict.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from exchanges.trace import render
from vhosts import Node
from vhosts.errors import BrokerError


class HeaderSyntaxError(ValueError):
    pass


def parse_header(text: str) -> tuple[str, Any]:
    """`name=value` gives a string; `name:=json` a typed value (7, true, ["a","b"], null).

    Types matter to a headers exchange: RabbitMQ's x-match compares values with their types.
    """
    name, equals, value = text.partition("=")
    if not equals:
        raise HeaderSyntaxError(f"header {text!r}: expected name=value or name:=json")
    if not name.endswith(":"):
        return name, value
    name = name[:-1]
    try:
        return name, json.loads(value)
    except json.JSONDecodeError as error:
        raise HeaderSyntaxError(f"header {name!r}: {value!r} is not JSON ({error.msg})") from None


def explain(
    definitions_path: str,
    vhost_name: str,
    exchange: str,
    routing_key: str,
    header_args: Sequence[str],
    out: TextIO | None = None,
) -> int:
    """Print the explanation; returns the exit status (0 routed, 1 unroutable, 2 bad input)."""
    from vhosts.definitions import DefinitionsError, load
    from vhosts.route_explain import explain_route

    err = sys.stderr
    try:
        headers = dict(parse_header(h) for h in header_args) or None
    except HeaderSyntaxError as error:
        print(f"amqp-lite explain: {error}", file=err)
        return 2
    try:
        definitions = load(definitions_path)
    except (DefinitionsError, OSError) as error:
        print(f"amqp-lite explain: {error}", file=err)
        return 2
    node = Node(vhost_names=(), guest=False)
    definitions.apply_to(node)
    try:
        trace = explain_route(node.vhost(vhost_name), exchange, routing_key, headers)
    except BrokerError as error:
        print(f"amqp-lite explain: {error.text}", file=err)
        return 2
    print(render(trace), file=out or sys.stdout)
    return 0 if trace.routed else 1
