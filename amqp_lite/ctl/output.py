"""What `amqp-lite ctl` prints, as rabbitmqctl 3.10.8 prints it.

Listings are tab-separated: a banner line ("Listing queues for vhost / ..."), then, once there is
a row, a header row of the column names, then one line per row. `-q` leaves out the banner,
`--no-table-headers` the header row. Nested values (arguments, client properties) are written
as Erlang terms, `[{"x-priority",3}]`, as rabbitmqctl writes them. `--formatter json` prints a
listing as a JSON array with one object per line, and the outcome of an action as
`{"node": ..., "result": "ok"}`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

JSON, TABLE = "json", "table"
FORMATTERS = (TABLE, JSON)


class Output:
    def __init__(
        self,
        *,
        quiet: bool = False,
        formatter: str = TABLE,
        table_headers: bool = True,
        node: Callable[[], str] = lambda: "",
        stream: TextIO | None = None,
    ) -> None:
        self.quiet = quiet
        self.json = formatter == JSON
        self.table_headers = table_headers
        self._node = node  # asked only when a JSON outcome needs it
        self._stream = stream if stream is not None else sys.stdout

    def write(self, text: str) -> None:
        self._stream.write(text + "\n")

    def banner(self, text: str) -> None:
        """What the command is about to do; not with -q, nor in JSON."""
        if not self.quiet and not self.json:
            self.write(text)

    def note(self, text: str) -> None:
        """Advice after success; not with -q, nor in JSON."""
        self.banner(text)

    def done(self, value: str | None = None) -> None:
        """An action succeeded; `value` is what it has to say, which -q does not hide."""
        if self.json:
            outcome: dict[str, Any] = {"node": self._node(), "result": "ok"}
            if value is not None:
                outcome["value"] = value
            self.write(json.dumps(outcome, separators=(",", ":")))
        elif value is not None:
            self.write(value)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.json:
            self.write("[")
            for i, row in enumerate(rows):
                record = {c: _json_value(v) for c, v in zip(columns, row, strict=True)}
                self.write(("," if i else "") + json.dumps(record, separators=(",", ":")))
            self.write("]")
            return
        if rows and self.table_headers:
            self.write("\t".join(columns))
        for row in rows:
            self.write("\t".join(cell(value) for value in row))

    def document(self, value: Any) -> None:
        self.write(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def cell(value: Any) -> str:
    """One table cell: text as it is, anything nested as an Erlang term."""
    if isinstance(value, str):
        return value
    return term(value)


def term(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "[" + ",".join(f"{{{term(k)},{term(v)}}}" for k, v in value.items()) + "]"
    if isinstance(value, list | tuple):
        return "[" + ",".join(term(v) for v in value) + "]"
    return json.dumps(str(value))


def _json_value(value: Any) -> Any:
    """Arguments and tables as rabbitmqctl's JSON shows them: [name, type, value] triples."""
    if isinstance(value, dict):
        return [[k, _amqp_type(v), _json_value(v)] for k, v in value.items()]
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _amqp_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "void"
    return "longstr"
