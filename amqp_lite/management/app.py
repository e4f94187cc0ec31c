"""Routing, authentication and errors: from an HTTP request to a resource module's handler.

Each resource module has a `ROUTES` list of `Route`s: a path pattern with `{name}` segments and
a handler per method. A handler takes a `Call` (the request, its path values, the user, the
broker) and returns JSON-ready data, or raises `HttpError`. Status codes, error bodies and the
401 texts are RabbitMQ 3.10.8's.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import attrs

from amqp_lite.login import DEFAULT_LOOPBACK_USERS, is_loopback
from amqp_lite.management.http import Request, Response
from vhosts.errors import AccessRefused, BrokerError, NotFound
from vhosts.users import User

if TYPE_CHECKING:
    from amqp_lite.admin import Admin
    from amqp_lite.management.stats import Stats

log = logging.getLogger("amqp_lite.management")

# The tags that let a user in, weakest first (RabbitMQ's management user tags).
MANAGEMENT, POLICYMAKER, MONITORING, ADMINISTRATOR = (
    "management",
    "policymaker",
    "monitoring",
    "administrator",
)
_MANAGEMENT_TAGS = {MANAGEMENT, POLICYMAKER, MONITORING, ADMINISTRATOR}
_REALM = 'Basic realm="RabbitMQ Management"'


class HttpError(Exception):
    """An answer other than success: status, RabbitMQ's `error` word and its `reason`."""

    def __init__(
        self, status: int, error: str, reason: Any, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers


def not_found() -> HttpError:
    return HttpError(404, "Object Not Found", "Not Found")


def bad_request(reason: Any) -> HttpError:
    return HttpError(400, "bad_request", reason)


def not_authorised(reason: str) -> HttpError:
    return HttpError(401, "not_authorised", reason)


def declare_error(error: BrokerError) -> HttpError:
    """How RabbitMQ's management answers what a declare refuses."""
    if isinstance(error, AccessRefused):
        return not_authorised("Access refused.")
    if isinstance(error, NotFound):
        return not_found()
    return bad_request(error.text)


def exchange_name(name: str) -> str:
    """The default exchange has no name; paths call it amq.default, as RabbitMQ's do."""
    return "" if name == "amq.default" else name


def flag(body: dict[str, Any], key: str, default: bool) -> bool:
    """A boolean field; RabbitMQ takes the strings "true" and "false" too (rabbitmqadmin
    sends those)."""
    value = body.get(key, default)
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    if not isinstance(value, bool):
        raise bad_request(["not_boolean", value])
    return value


@attrs.frozen
class Created:
    """A PUT or POST that made something: 201 (204 when it only changed something)."""

    created: bool = True
    location: str | None = None


NO_CONTENT = Created(created=False)


@attrs.define
class Call:
    """One request, as a handler sees it."""

    request: Request
    params: dict[str, str]  # the path's {name} values, percent-decoded
    query: dict[str, str]
    user: User
    admin: Admin
    stats: Stats
    listening: tuple[str, int] | None  # the management API's own address

    @property
    def tags(self) -> set[str]:
        return set(self.user.tags)

    @property
    def is_admin(self) -> bool:
        return ADMINISTRATOR in self.user.tags

    @property
    def is_monitor(self) -> bool:
        return bool({MONITORING, ADMINISTRATOR} & self.tags)

    def require_admin(self) -> None:
        if not self.is_admin:
            raise not_authorised("Not administrator user")

    def require_monitor(self) -> None:
        if not self.is_monitor:
            raise not_authorised("Not monitor user")

    def require_policymaker(self) -> None:
        if not {POLICYMAKER, ADMINISTRATOR} & self.tags:
            raise not_authorised("User not authorised to access object")

    def vhost(self, name: str | None = None) -> str:
        """The path's vhost, if it exists and this user may use it."""
        vhost = self.params["vhost"] if name is None else name
        if vhost not in self.admin.node.vhosts:
            raise not_found()
        if not self.user.may_enter(vhost):
            raise not_authorised("User not authorised to access virtual host")
        return vhost

    def visible_vhosts(self) -> list[str]:
        """The vhosts whose contents this user may list: those it has permissions in."""
        return sorted(v for v in self.admin.node.vhosts if self.user.may_enter(v))

    def check(self, kind: str, resource_kind: str, vhost: str, name: str) -> None:
        """The AMQP permission (configure/write/read) an operation needs, as RabbitMQ checks it."""
        try:
            self.user.check(vhost, kind, resource_kind, name)
        except BrokerError:
            raise not_authorised("Access refused.") from None

    def body(self) -> dict[str, Any]:
        """The request's JSON object; RabbitMQ's 400 for anything else."""
        if not self.request.body.strip():
            return {}
        try:
            value = json.loads(
                self.request.body, parse_constant=_not_json, parse_float=_finite_float
            )
        except (ValueError, UnicodeDecodeError):
            raise bad_request("not_json") from None
        if not isinstance(value, dict):
            raise bad_request("not_json")
        return value


def _not_json(constant: str) -> float:
    """Infinity, -Infinity and NaN: Python's decoder takes them, RabbitMQ's does not."""
    raise ValueError(f"{constant} is not JSON")


def _finite_float(text: str) -> float:
    """A JSON number, unless it is too big for a double (Python would make it infinity)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


Handler = Callable[[Call], Any]


@attrs.frozen
class Route:
    pattern: str  # "/api/queues/{vhost}/{name}"
    methods: dict[str, Handler]

    @property
    def segments(self) -> list[str]:
        return self.pattern.strip("/").split("/")


class Router:
    def __init__(self, admin: Admin, stats: Stats, routes: Iterable[Route]) -> None:
        self.admin = admin
        self.stats = stats
        self.listening: tuple[str, int] | None = None
        self._routes = [(route, route.segments) for route in routes]

    def __call__(self, request: Request) -> Response:
        """Answer one request; never raises (an internal error is a 500 and a log line)."""
        try:
            return self._answer(request)
        except HttpError as error:
            return _error_response(error)
        except Exception:
            log.exception("internal error answering %s %s", request.method, request.target)
            failure = HttpError(500, "internal_server_error", "the broker could not answer this")
            return _error_response(failure)

    def _answer(self, request: Request) -> Response:
        path, _, query_text = request.target.partition("?")
        route, params = self._match(path)
        if route is None:
            raise not_found()
        method = "GET" if request.method == "HEAD" else request.method
        handler = route.methods.get(method)
        if handler is None:
            allowed = sorted({*route.methods, "HEAD" if "GET" in route.methods else "", "OPTIONS"})
            allow = ", ".join(m for m in allowed if m)
            if method == "OPTIONS":
                return Response(200, headers=(("allow", allow),))
            return Response(405, headers=(("allow", allow),))
        user = self._authenticate(request)
        query = {k: v[-1] for k, v in parse_qs(query_text, keep_blank_values=True).items()}
        call = Call(request, params, query, user, self.admin, self.stats, self.listening)
        try:
            result = handler(call)
        except NotFound:
            raise not_found() from None
        if isinstance(result, Created):
            headers = (("location", result.location),) if result.location else ()
            return Response(201 if result.created else 204, headers=headers)
        if result is None:
            return Response(204)
        if isinstance(result, Response):
            return result
        return json_response(200, result)

    def _match(self, path: str) -> tuple[Route | None, dict[str, str]]:
        # Split before decoding: a vhost named "/" arrives as one segment, "%2F".
        segments = [unquote(s) for s in path.strip("/").split("/")]
        for route, pattern in self._routes:
            if len(pattern) != len(segments):
                continue
            params = {}
            for want, got in zip(pattern, segments, strict=True):
                if want.startswith("{"):
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return route, params
        return None, {}

    def _authenticate(self, request: Request) -> User:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            # No credentials at all: RabbitMQ answers with the challenge and no body.
            raise HttpError(401, "", "", headers=(("www-authenticate", _REALM),))
        try:
            name, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            name, password = "", ""
        user = self.admin.node.users.authenticate(name, password)
        if user is None:
            raise HttpError(
                401, "not_authorized", "Login failed", headers=(("www-authenticate", _REALM),)
            )
        # As RabbitMQ: a loopback-only user (guest) is refused from elsewhere, here too.
        server = self.admin.server
        loopback_users = server.loopback_users if server is not None else DEFAULT_LOOPBACK_USERS
        if user.name in loopback_users and not is_loopback(request.peer):
            log.warning(
                "HTTP access denied: user '%s' - User can only log in via localhost", user.name
            )
            raise not_authorised("User can only log in via localhost")
        if not _MANAGEMENT_TAGS & set(user.tags):
            raise not_authorised("Not management user")
        return user


def json_response(status: int, value: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_jsonable)
    try:
        data = body.encode()
    except UnicodeEncodeError:  # octets off the wire that are not UTF-8 (surrogate escapes)
        data = body.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode()
    return Response(
        status,
        data,
        (("content-type", "application/json"), ("cache-control", "no-cache"), *headers),
    )


def _jsonable(value: Any) -> Any:
    """AMQP values JSON has no type for: bytes as text, decimals and timestamps as numbers."""
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    if hasattr(value, "timestamp"):
        return int(value.timestamp())
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _error_response(error: HttpError) -> Response:
    if not error.error:
        return Response(error.status, headers=error.headers)
    return json_response(
        error.status, {"error": error.error, "reason": error.reason}, headers=error.headers
    )
