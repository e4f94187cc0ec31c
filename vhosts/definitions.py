"""RabbitMQ definitions files (`rabbitmqctl export_definitions`): read, check, apply all or nothing.

`load` and `parse` check a file completely and by itself: its JSON, the fields of each object,
then the domain's own rules, by applying it to a scratch node. Every error names the line where
the offending object starts, and its place ("queues[3]"), since exports are a single line.

`Definitions.apply_to(node)` first rehearses on a scratch node holding the node's own versions of
the file's vhosts, users, exchanges and queues, so that a conflict (say, an inequivalent queue)
changes nothing; only then does it apply the file to the node.

Like RabbitMQ's import it adds and updates what the file names and removes nothing: a user in
the file keeps its permissions in vhosts the file does not mention, and guest, if the node has
it, stays unless the file redefines it (and, as for any vhost amqp-lite creates, may enter the
vhosts the file creates). RabbitMQ loading definitions into a blank node at boot creates neither
the default vhost nor guest; `Node(vhost_names=(), guest=False)` and then `apply_to` does that.

Unlike RabbitMQ, which silently skips a binding whose exchange or queue is missing, this refuses
it: a typo should not lose routes. Sections amqp-lite has no feature for (runtime and global
parameters other than vhost limits) are accepted and described in `Definitions.ignored`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import json
import json.decoder
import json.scanner
import math
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from vhosts.errors import BrokerError
from vhosts.limits import (
    MAX_QUEUES,
    LimitsInvalid,
    limit,
    validate_user_limits,
    validate_vhost_limits,
)
from vhosts.node import Node
from vhosts.policies import Policy, validate_policy
from vhosts.queue_types import QUEUE_TYPES
from vhosts.topology import (
    BindingSpec,
    ExchangeSpec,
    Missing,
    PermissionSpec,
    PolicySpec,
    QueueSpec,
    Rules,
    TopicPermissionSpec,
    Topology,
    UserSpec,
    VhostLimitsSpec,
    VhostSpec,
    apply_topology,
)
from vhosts.users import (
    DEFAULT_HASHING,
    HASHING_ALGORITHMS,
    Permission,
    TopicPermission,
    hash_password,
)


class DefinitionsError(ValueError):
    """A file that cannot be loaded: "FILE:LINE: what is wrong"."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line
        self.message = message


@attrs.frozen
class Where:
    """Where an object of the file starts: the origin of its specs, named in every error."""

    line: int
    path: str  # "queues[3]"


@attrs.define
class Definitions:
    source: str
    vhosts: list[VhostSpec] = attrs.Factory(list)
    users: list[UserSpec] = attrs.Factory(list)
    permissions: list[PermissionSpec] = attrs.Factory(list)
    topic_permissions: list[TopicPermissionSpec] = attrs.Factory(list)
    policies: list[PolicySpec] = attrs.Factory(list)
    exchanges: list[ExchangeSpec] = attrs.Factory(list)
    queues: list[QueueSpec] = attrs.Factory(list)
    bindings: list[BindingSpec] = attrs.Factory(list)
    vhost_limits: list[VhostLimitsSpec] = attrs.Factory(list)  # "vhost-limits" parameters
    ignored: list[str] = attrs.Factory(list)  # "FILE:LINE: what was left out and why"
    queues_at: Where | None = None  # where the queues section starts

    @property
    def topology(self) -> Topology:
        return Topology(
            vhosts=tuple(self.vhosts),
            users=tuple(self.users),
            permissions=tuple(self.permissions),
            topic_permissions=tuple(self.topic_permissions),
            policies=tuple(self.policies),
            exchanges=tuple(self.exchanges),
            queues=tuple(self.queues),
            bindings=tuple(self.bindings),
            vhost_limits=tuple(self.vhost_limits),
        )

    def apply_to(self, node: Node) -> None:
        """Apply everything to `node`, or raise DefinitionsError having changed nothing."""
        self._check_queue_limits(node)
        topology = self.topology
        apply_topology(self._rehearsal(node), topology, self._rules)
        apply_topology(node, topology, self._rules)

    def check(self) -> None:
        """Raise DefinitionsError unless the file applies to an empty node."""
        apply_topology(Node(vhost_names=(), guest=False), self.topology, self._rules)

    @property
    def _rules(self) -> Rules:
        """Anything missing is refused, and every error names the object's FILE:LINE."""
        return Rules(missing=self._missing, reporting=self._reporting)

    def _check_queue_limits(self, node: Node) -> None:
        """As RabbitMQ's import: the file's new queues must fit the vhosts' limits in force
        before it (the file's own limits are set after its queues)."""
        new: dict[str, set[str]] = {}
        for q in self.queues:
            vhost = node.vhosts.get(q.vhost)
            if vhost is not None and q.name not in vhost.queues:
                new.setdefault(q.vhost, set()).add(q.name)
        for name, added in new.items():
            vhost = node.vhosts[name]
            most = limit(vhost.limits, MAX_QUEUES)
            if most is not None and len(vhost.queues) + len(added) > most:
                where = self.queues_at or Where(1, "queues")
                current = len(vhost.queues) if most else 0  # RabbitMQ says 0 for a 0 limit
                raise self._fail(
                    where,
                    f'Adding {len(added)} queue(s) to virtual host "{name}" would exceed the '
                    f"limit of {most} queue(s). This virtual host currently has {current} "
                    "queue(s) defined. Import aborted!",
                )

    def _rehearsal(self, node: Node) -> Node:
        """A scratch node with `node`'s versions of what the file names, to try the file on."""
        scratch = Node(vhost_names=(), guest=False)
        apply_topology(scratch, _current_versions(node, self), REHEARSAL_SETUP)
        return scratch

    def _missing(self, origin: object, missing: Missing) -> None:
        if missing.binding_source:
            raise self._fail(
                origin,
                f"{missing}: neither in the file nor standard "
                "(RabbitMQ's export leaves internal exchanges out: add them)",
            )
        if missing.kind == "vhost":
            raise self._fail(origin, str(missing))
        raise self._fail(origin, f"{missing} (not in the file)")

    def _fail(self, where: object, message: str) -> DefinitionsError:
        assert isinstance(where, Where)
        return DefinitionsError(self.source, where.line, f"{where.path}: {message}")

    @contextlib.contextmanager
    def _reporting(self, where: object) -> Iterator[None]:
        """The domain's refusals, reported at the object that caused them."""
        try:
            yield
        except DefinitionsError:
            raise
        except BrokerError as error:
            raise self._fail(where, error.text) from None
        except ValueError as error:
            raise self._fail(where, str(error)) from None


# The node's own versions go on the scratch node as they are; one the domain refuses there (a
# default or standard exchange, an 'amq.' queue) is left out: the file's own will meet the
# same refusal when it is tried.
REHEARSAL_SETUP = Rules(reporting=lambda origin: contextlib.suppress(BrokerError))


def _current_versions(node: Node, definitions: Definitions) -> Topology:
    """`node`'s vhosts and users, and its versions of the exchanges and queues the file names."""
    exchanges = []
    for e in definitions.exchanges:
        now = node.vhosts[e.vhost].exchanges.get(e.name) if e.vhost in node.vhosts else None
        if now is not None:
            exchanges.append(
                ExchangeSpec(
                    e.vhost,
                    now.name,
                    now.type_name,
                    now.durable,
                    now.auto_delete,
                    now.internal,
                    now.arguments,
                )
            )
    queues = []
    for q in definitions.queues:
        queue = node.vhosts[q.vhost].queues.get(q.name) if q.vhost in node.vhosts else None
        if queue is not None:
            queues.append(
                QueueSpec(
                    q.vhost,
                    queue.name,
                    queue.durable,
                    queue.auto_delete,
                    queue.arguments,
                    exclusive_owner=queue.exclusive_owner,
                )
            )
    return Topology(
        vhosts=tuple(
            VhostSpec(name, default_queue_type=vhost.default_queue_type)
            for name, vhost in node.vhosts.items()
        ),
        users=tuple(
            UserSpec(user.name, password_hash="", limits=dict(user.limits)) for user in node.users
        ),
        exchanges=tuple(exchanges),
        queues=tuple(queues),
        vhost_limits=tuple(
            VhostLimitsSpec(name, dict(vhost.limits))
            for name, vhost in node.vhosts.items()
            if vhost.limits
        ),
    )


def load(path: str | os.PathLike[str]) -> Definitions:
    with open(path, encoding="utf-8") as file:
        return parse(file.read(), os.fspath(path))


def parse(text: str, source: str = "<definitions>") -> Definitions:
    """Read and check a whole file; DefinitionsError at the first problem."""
    try:
        document = _decode(text)
    except json.JSONDecodeError as error:
        raise DefinitionsError(
            source, error.lineno, f"invalid JSON: {error.msg} (column {error.colno})"
        ) from None
    if not isinstance(document, _Object):
        raise DefinitionsError(source, 1, "a definitions file is one JSON object")
    definitions = _Reader(text, source).read(document)
    definitions.check()
    return definitions


# -- JSON that remembers where each object and array starts -------------------------------------


class _Object(dict[str, Any]):
    offset = 0


class _Array(list[Any]):
    offset = 0


def _decode(text: str) -> Any:
    decoder = json.JSONDecoder()

    def located(
        parse: Callable[..., tuple[Any, int]], kind: type, scanner_at: int
    ) -> Callable[..., Any]:
        """`parse`, remembering where its value starts, and scanning its items with
        _finite_only (the scanner is its argument at `scanner_at`)."""

        def parse_located(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
            args = (*args[:scanner_at], _finite_only(args[scanner_at]), *args[scanner_at + 1 :])
            value, end = parse(s_and_end, *args)
            value = kind(value)
            value.offset = s_and_end[1] - 1  # the opening bracket
            return value, end

        return parse_located

    # The pure-Python scanner's hooks, which the standard library's type stubs leave out.
    # JSONObject((text, end), strict, scan_once, ...) and JSONArray((text, end), scan_once).
    decoder.parse_object = located(json.decoder.JSONObject, _Object, 1)  # type: ignore[attr-defined]
    decoder.parse_array = located(json.decoder.JSONArray, _Array, 0)  # type: ignore[attr-defined]
    scanner = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    decoder.scan_once = _finite_only(scanner)  # type: ignore[attr-defined]
    return decoder.decode(text)


_Scanner = Callable[[str, int], tuple[Any, int]]


def _finite_only(scan_once: _Scanner) -> _Scanner:
    """Python's decoder takes Infinity, -Infinity and NaN, and reads 1e999 as infinity;
    RabbitMQ's refuses them as it refuses any text that is not JSON, and so do we."""

    def scan(text: str, index: int) -> tuple[Any, int]:
        value, end = scan_once(text, index)
        if type(value) is float and not math.isfinite(value):
            raise json.JSONDecodeError(f"{text[index:end]} is not a finite number", text, index)
        return value, end

    return scan


def _plain(value: Any) -> Any:
    """Plain dicts and lists, as the wire decoder would give."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# -- reading each section -----------------------------------------------------------------------

_REQUIRED: Any = object()
_KINDS: dict[Any, str] = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    (int, float): "a number",
    dict: "an object",
}
# Sections we accept and do not apply, with why.
_UNSUPPORTED = {
    "parameters": "amqp-lite has no runtime parameters",
    "global_parameters": "amqp-lite has no global parameters",
}
_METADATA = ("rabbit_version", "rabbitmq_version", "product_name", "product_version")


class _Reader:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def where(self, value: _Object | _Array, path: str) -> Where:
        return Where(bisect.bisect(self._newlines, value.offset) + 1, path)

    def fail(self, where: Where, message: str) -> DefinitionsError:
        return DefinitionsError(self.source, where.line, f"{where.path}: {message}")

    def field(
        self, obj: _Object, where: Where, key: str, kind: Any, default: Any = _REQUIRED
    ) -> Any:
        """obj[key], which must be of `kind` (a type, or a tuple of them); JSON has no bool ints."""
        value = obj.get(key, default)
        if value is _REQUIRED:
            raise self.fail(where, f'missing "{key}"')
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.fail(where, f'"{key}" must be {_KINDS[kind]}, not {json.dumps(value)}')
        return _plain(value)

    def read(self, document: _Object) -> Definitions:
        definitions = Definitions(self.source)
        top = self.where(document, "top level")
        version = document.get("rabbit_version", document.get("rabbitmq_version", ""))
        readers: dict[str, Callable[[_Object, Where], Any]] = {
            "vhosts": self.vhost,
            "users": lambda o, w: self.user(o, w, str(version)),
            "permissions": self.permission,
            "topic_permissions": self.topic_permission,
            "policies": self.policy,
            "exchanges": self.exchange,
            "queues": self.queue,
            "bindings": self.binding,
        }
        for section, items in document.items():
            if section in _METADATA:
                continue
            if section not in readers and section not in _UNSUPPORTED:
                definitions.ignored.append(f"{self.source}:{top.line}: {section}: unknown, ignored")
                continue
            if not isinstance(items, _Array):
                raise self.fail(top, f'"{section}" must be a list')
            if section == "queues":
                definitions.queues_at = self.where(items, "queues")
            if section == "parameters":
                items = self.parameters(items, definitions)
            entries = []
            for index, obj in enumerate(items):
                if not isinstance(obj, _Object):
                    raise self.fail(self.where(items, f"{section}[{index}]"), "must be an object")
                where = self.where(obj, f"{section}[{index}]")
                if section in readers:
                    entries.append(readers[section](obj, where))
            if section in readers:
                getattr(definitions, section).extend(entries)
            elif items:
                where = self.where(items, section)
                kinds = {str(obj.get("component") or obj.get("name") or "") for obj in items}
                named = f" ({', '.join(sorted(kinds - {''}))})" if kinds - {""} else ""
                definitions.ignored.append(
                    f"{self.source}:{where.line}: {section}: {len(items)} ignored{named}: "
                    f"{_UNSUPPORTED[section]}"
                )
        return definitions

    def parameters(self, items: _Array, definitions: Definitions) -> _Array:
        """Takes the vhost limits out of the parameters; returns the rest (not applied).

        A vhost's entry in "vhosts" has its limits too, but RabbitMQ's import reads them only
        from here, and so does this."""
        rest = _Array()
        rest.offset = items.offset
        for index, obj in enumerate(items):
            if isinstance(obj, _Object) and obj.get("component") == "vhost-limits":
                where = self.where(obj, f"parameters[{index}]")
                vhost = self.field(obj, where, "vhost", str)
                definition = self.field(obj, where, "value", dict)
                try:
                    validate_vhost_limits(definition)
                except LimitsInvalid as error:
                    complaints = str(error).strip().replace("\n\n", ": ").replace("\n", "; ")
                    raise self.fail(where, f"{complaints} ({vhost}/vhost-limits/limits)") from None
                definitions.vhost_limits.append(VhostLimitsSpec(vhost, definition, where))
            else:
                rest.append(obj)
        return rest

    def vhost(self, obj: _Object, where: Where) -> VhostSpec:
        name = self.field(obj, where, "name", str)
        metadata = self.field(obj, where, "metadata", dict, {})
        default_type = metadata.get("default_queue_type")
        if default_type is not None and default_type not in QUEUE_TYPES:
            known = ", ".join(sorted(QUEUE_TYPES))
            raise self.fail(
                where, f'unknown default_queue_type "{default_type}" (amqp-lite has {known})'
            )
        return VhostSpec(name, where, default_type)

    def user(self, obj: _Object, where: Where, version: str) -> UserSpec:
        name = self.field(obj, where, "name", str)
        # Exports before 3.6 name no algorithm and hashed with MD5; RabbitMQ still assumes so.
        legacy = re.match(r"2\.|3\.[0-5]\.", version)
        default = "rabbit_password_hashing_md5" if legacy else DEFAULT_HASHING
        algorithm = self.field(obj, where, "hashing_algorithm", str, default)
        if algorithm not in HASHING_ALGORITHMS:
            known = ", ".join(HASHING_ALGORITHMS)
            raise self.fail(where, f"unknown hashing_algorithm '{algorithm}' (known: {known})")
        if "password_hash" in obj:
            password_hash = self.field(obj, where, "password_hash", str)
            try:
                base64.b64decode(password_hash, validate=True)
            except binascii.Error:
                raise self.fail(where, "password_hash is not base64") from None
        elif "password" in obj:  # RabbitMQ also takes a clear-text password, and hashes it
            password_hash = hash_password(self.field(obj, where, "password", str), None, algorithm)
        else:
            raise self.fail(where, 'a user needs "password_hash" (or "password")')
        tags = obj.get("tags", [])
        if isinstance(tags, str):  # older exports: "administrator,management"
            tags = [tag for tag in tags.split(",") if tag]
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise self.fail(where, '"tags" must be a list of strings')
        limits = self.field(obj, where, "limits", dict, {})
        try:
            validate_user_limits(limits)
        except LimitsInvalid as error:
            raise self.fail(where, str(error)) from None
        return UserSpec(name, password_hash, algorithm, list(tags), where, limits)

    def permission(self, obj: _Object, where: Where) -> PermissionSpec:
        patterns = self.patterns(obj, where, ("configure", "write", "read"))
        user, vhost = self.field(obj, where, "user", str), self.field(obj, where, "vhost", str)
        return PermissionSpec(user, vhost, Permission(**patterns), where)

    def topic_permission(self, obj: _Object, where: Where) -> TopicPermissionSpec:
        patterns = self.patterns(obj, where, ("write", "read"))
        user, vhost = self.field(obj, where, "user", str), self.field(obj, where, "vhost", str)
        exchange = self.field(obj, where, "exchange", str)
        return TopicPermissionSpec(user, vhost, TopicPermission(exchange, **patterns), where)

    def patterns(self, obj: _Object, where: Where, kinds: tuple[str, ...]) -> dict[str, str]:
        patterns = {}
        for kind in kinds:
            patterns[kind] = pattern = self.field(obj, where, kind, str)
            try:
                re.compile(pattern)
            except re.error as error:
                raise self.fail(where, f"{kind} is not a regular expression: {error}") from None
        return patterns

    def policy(self, obj: _Object, where: Where) -> PolicySpec:
        policy = Policy(
            vhost=self.field(obj, where, "vhost", str),
            name=self.field(obj, where, "name", str),
            pattern=self.field(obj, where, "pattern", str),
            apply_to=self.field(obj, where, "apply-to", str, "all"),
            priority=self.field(obj, where, "priority", (int, float), 0),
            definition=self.field(obj, where, "definition", dict),
        )
        try:
            validate_policy(policy)
        except ValueError as error:
            complaints = str(error).replace("\n", "; ")  # one per line from validate_policy
            raise self.fail(where, f"policy '{policy.name}': {complaints}") from None
        return PolicySpec(policy, where)

    def exchange(self, obj: _Object, where: Where) -> ExchangeSpec:
        return ExchangeSpec(
            self.field(obj, where, "vhost", str),
            self.field(obj, where, "name", str),
            self.field(obj, where, "type", str),
            self.field(obj, where, "durable", bool, True),
            self.field(obj, where, "auto_delete", bool, False),
            self.field(obj, where, "internal", bool, False),  # 3.10 exports leave it out
            self.field(obj, where, "arguments", dict, {}),
            where,
        )

    def queue(self, obj: _Object, where: Where) -> QueueSpec:
        arguments = self.field(obj, where, "arguments", dict, {})
        queue_type = self.field(obj, where, "type", str, "classic")
        if queue_type != "classic":  # exports carry it in x-queue-type too; a hand may not
            arguments.setdefault("x-queue-type", queue_type)
        return QueueSpec(
            self.field(obj, where, "vhost", str),
            self.field(obj, where, "name", str),
            self.field(obj, where, "durable", bool, True),
            self.field(obj, where, "auto_delete", bool, False),
            arguments,
            where,
        )

    def binding(self, obj: _Object, where: Where) -> BindingSpec:
        destination_type = self.field(obj, where, "destination_type", str)
        if destination_type not in ("queue", "exchange"):
            raise self.fail(where, 'destination_type must be "queue" or "exchange"')
        return BindingSpec(
            self.field(obj, where, "vhost", str),
            self.field(obj, where, "source", str),
            self.field(obj, where, "destination", str),
            destination_type,
            self.field(obj, where, "routing_key", str, ""),
            self.field(obj, where, "arguments", dict, {}),
            where,
        )
