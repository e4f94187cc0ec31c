"""`amqp-lite ctl`: the rabbitmqctl verbs people use, spoken to a running broker's management
API (http://127.0.0.1:15672/ as guest/guest unless told otherwise).

    api.py       the HTTP client, errors and exit statuses
    output.py    rabbitmqctl's output: tab-separated tables, banners, -q, --formatter json
    listings.py  the list_* verbs and their columns
    commands.py  the other verbs

Options may come before or after the verb, as rabbitmqctl takes them. An error prints one line,
`Error: <reason>`, on standard error and exits with rabbitmqctl's status for it.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import NoReturn

from amqp_lite.ctl.api import EX_USAGE, Api, CtlError
from amqp_lite.ctl.commands import VERBS
from amqp_lite.ctl.listings import LISTINGS, run_listing
from amqp_lite.ctl.output import FORMATTERS, TABLE, Output

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 15672


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 64 with one line, as rabbitmqctl's argument validation does."""

    def error(self, message: str) -> NoReturn:
        raise CtlError(f"{self.prog}: {message}", EX_USAGE)


def _options() -> _Parser:
    options = _Parser(prog="amqp-lite ctl", add_help=False, allow_abbrev=False)
    options.add_argument("--url", help="the management API, e.g. http://guest:guest@host:15672/")
    options.add_argument("--host", default=DEFAULT_HOST)
    options.add_argument("--port", type=int, default=DEFAULT_PORT)
    options.add_argument("--username", default="guest")
    options.add_argument("--password", default="guest")
    options.add_argument("-p", "--vhost", default="/")
    options.add_argument("-q", "--quiet", action="store_true")
    options.add_argument("-s", "--silent", action="store_true", help="same as -q")
    options.add_argument("--formatter", choices=FORMATTERS, default=TABLE)
    options.add_argument("--no-table-headers", action="store_true")
    options.add_argument("-t", "--timeout", help="accepted, as rabbitmqctl's; not used")
    options.add_argument("-h", "--help", action="store_true")
    return options


def usage() -> str:
    lines = [
        "usage: amqp-lite ctl [--url URL | --host H --port P] [--username U --password P]",
        "                     [-p VHOST] [-q] [--formatter json] [--no-table-headers] VERB ...",
        "",
        "verbs:",
    ]
    for name in LISTINGS:
        lines.append(f"  {name:<20} [COLUMN ...]")
    for name, verb in VERBS.items():
        lines.append(f"  {name:<20} {verb.help}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _run(argv)
    except CtlError as error:
        sys.stdout.flush()
        # One line, even for RabbitMQ's multi-line texts ("Validation failed\n\n<<...>>").
        parts = [part.strip() for part in error.reason.splitlines() if part.strip()]
        sys.stderr.write(f"Error: {': '.join(parts)}\n")
        return error.status
    except KeyboardInterrupt:
        return 130


def _run(argv: list[str]) -> int:
    options, rest = _options().parse_known_args(argv)
    if options.help or not rest:
        print(usage())
        return 0 if options.help else EX_USAGE
    verb, arguments = rest[0], rest[1:]
    url = options.url or f"http://{options.host}:{options.port}/"
    api = Api(url, options.username, options.password)
    output = Output(
        quiet=options.quiet or options.silent,
        formatter=options.formatter,
        table_headers=not options.no_table_headers,
        node=functools.partial(_node_name, api),
    )
    listing = LISTINGS.get(verb)
    if listing is not None:
        parser = _Parser(prog=f"amqp-lite ctl {verb}")
        parser.add_argument("columns", nargs="*")
        run_listing(api, output, listing, options.vhost, parser.parse_args(arguments).columns)
        return 0
    found = VERBS.get(verb)
    if found is None:
        raise CtlError(f"unknown verb '{verb}'; `amqp-lite ctl --help` lists them", EX_USAGE)
    parser = _Parser(prog=f"amqp-lite ctl {verb}")
    found.arguments(parser)
    args = parser.parse_args(arguments)
    args.vhost = options.vhost
    found.run(api, output, args)
    return 0


def _node_name(api: Api) -> str:
    overview = api.find("/api/overview")
    return str(overview.get("node", "")) if isinstance(overview, dict) else ""
