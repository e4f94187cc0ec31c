"""A node's topology as a value, and the one way to apply it.

Recovery from the store, the definitions loader and its rehearsal each build a `Topology` and
call `apply_topology`, which goes through the node's ordinary paths (add_vhost, add_user,
declare_exchange, bind...), so the domain's rules hold whoever applies. What differs between
the callers is said by their `Rules`, kept beside each caller:

* recovery (`Node`) applies with the store detached, so that nothing is recorded twice, builds
  queues by name (a server-named 'amq.gen-...' queue could not be declared), and skips what
  the store names but no longer has;
* the definitions loader refuses anything missing, and every error names the file and line of
  the object at fault; it applies all or nothing by applying first to a scratch node that holds
  the node's own versions of what the file names, itself a topology applied leniently.

Objects are applied section by section in the order of the fields of `Topology`, so that each
finds what it names (a binding its exchanges and queues) whatever order a file lists them in.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import attrs

from vhosts.exchange import Exchange
from vhosts.policies import Policy
from vhosts.queue import Queue
from vhosts.users import DEFAULT_HASHING, Permission, TopicPermission, User, Users
from vhosts.vhost import VirtualHost


@attrs.frozen
class VhostSpec:
    name: str
    origin: object = None  # where it came from, for the caller's error messages
    default_queue_type: str | None = None  # None: leave the vhost's as it is


@attrs.frozen
class UserSpec:
    name: str
    password_hash: str  # empty: no password can log in
    hashing_algorithm: str = DEFAULT_HASHING
    tags: list[str] = attrs.Factory(list)
    origin: object = None
    limits: dict[str, Any] = attrs.Factory(dict)  # merged into the user's, as RabbitMQ does


@attrs.frozen
class PermissionSpec:
    user: str
    vhost: str
    permission: Permission
    origin: object = None


@attrs.frozen
class TopicPermissionSpec:
    user: str
    vhost: str
    permission: TopicPermission
    origin: object = None


@attrs.frozen
class VhostLimitsSpec:
    """A vhost's whole set of limits (RabbitMQ's "vhost-limits" runtime parameter)."""

    vhost: str
    limits: dict[str, Any]
    origin: object = None


@attrs.frozen
class PolicySpec:
    policy: Policy
    origin: object = None


@attrs.frozen
class ExchangeSpec:
    vhost: str
    name: str
    type: str
    durable: bool
    auto_delete: bool
    internal: bool
    arguments: dict[str, Any]
    origin: object = None


@attrs.frozen
class QueueSpec:
    vhost: str
    name: str
    durable: bool
    auto_delete: bool
    arguments: dict[str, Any]
    origin: object = None
    exclusive_owner: object = None  # the connection an exclusive queue belongs to


@attrs.frozen
class BindingSpec:
    vhost: str
    source: str
    destination: str
    destination_type: str  # "queue" or "exchange"
    routing_key: str
    arguments: dict[str, Any]
    origin: object = None


@attrs.frozen
class Topology:
    vhosts: tuple[VhostSpec, ...] = ()
    users: tuple[UserSpec, ...] = ()
    permissions: tuple[PermissionSpec, ...] = ()
    policies: tuple[PolicySpec, ...] = ()
    exchanges: tuple[ExchangeSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()
    bindings: tuple[BindingSpec, ...] = ()
    # Last, so that positional construction keeps its meaning; they need only users and
    # vhosts, and are applied after the permissions.
    topic_permissions: tuple[TopicPermissionSpec, ...] = ()
    # After the queues, so that a file's limits do not refuse its own queues (RabbitMQ's
    # import checks its queues against the limits in force before it).
    vhost_limits: tuple[VhostLimitsSpec, ...] = ()


@attrs.frozen
class Missing:
    """Something an object names that the node does not have."""

    kind: str  # "vhost", "user", "exchange" or "queue"
    name: str
    vhost: str = ""  # where an exchange or queue was looked for
    binding_source: bool = False  # the exchange a binding is from

    def __str__(self) -> str:
        if self.kind == "vhost":
            return f"vhost {self.name} not found"  # the text of Node.vhost's refusal
        if self.kind == "user":
            return f"no user '{self.name}'"
        return f"no {self.kind} '{self.name}' in vhost '{self.vhost}'"


def _skip(origin: object, missing: Missing) -> None:
    return None


def _as_is(origin: object) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


@attrs.frozen
class Rules:
    """What differs between the callers of `apply_topology`."""

    # Queues are declared as a client declares them (name rules and all); False builds them
    # by name, as recovery must for server-named queues.
    declare_queues: bool = True
    # Something an object names is not there (a permission's user, a binding's queue...):
    # raise to refuse the topology, or return to skip that object.
    missing: Callable[[object, Missing], None] = _skip
    # Wraps the application of each object, given its origin: the caller's error messages.
    reporting: Callable[[object], AbstractContextManager[None]] = _as_is


class TopologyTarget(Protocol):
    """What a topology is applied to: a `Node`."""

    @property
    def vhosts(self) -> Mapping[str, VirtualHost]: ...

    @property
    def users(self) -> Users: ...

    def add_vhost(self, name: str, *, default_queue_type: str | None = None) -> VirtualHost: ...

    def add_user(
        self,
        name: str,
        password: str | None = None,
        *,
        password_hash: str | None = None,
        tags: list[str] | None = None,
        hashing_algorithm: str = DEFAULT_HASHING,
    ) -> User: ...

    def set_permission(self, user: User, vhost: str, permission: Permission) -> None: ...

    def set_topic_permission(self, user: User, vhost: str, permission: TopicPermission) -> None: ...

    def set_user_limits(self, name: str, definition: Mapping[str, Any]) -> None: ...

    def set_vhost_limits(self, name: str, definition: Mapping[str, Any]) -> None: ...


def apply_topology(node: TopologyTarget, topology: Topology, rules: Rules) -> None:
    """Apply `topology` to `node`, section by section, under `rules`."""
    for v in topology.vhosts:
        with _applying(rules, v.origin):
            node.add_vhost(v.name, default_queue_type=v.default_queue_type)
    for u in topology.users:
        with _applying(rules, u.origin):
            node.add_user(
                u.name,
                password_hash=u.password_hash,
                tags=list(u.tags),
                hashing_algorithm=u.hashing_algorithm,
            )
            if u.limits:
                node.set_user_limits(u.name, u.limits)
    for p in topology.permissions:
        with _applying(rules, p.origin):
            user = _found(node.users.get(p.user), Missing("user", p.user))
            _vhost(node, p.vhost)
            node.set_permission(user, p.vhost, p.permission)
    for t in topology.topic_permissions:
        with _applying(rules, t.origin):
            user = _found(node.users.get(t.user), Missing("user", t.user))
            _vhost(node, t.vhost)
            node.set_topic_permission(user, t.vhost, t.permission)
    for pd in topology.policies:
        with _applying(rules, pd.origin):
            _vhost(node, pd.policy.vhost).set_policy(pd.policy)
    for e in topology.exchanges:
        with _applying(rules, e.origin):
            _vhost(node, e.vhost).declare_exchange(
                e.name,
                e.type,
                durable=e.durable,
                auto_delete=e.auto_delete,
                internal=e.internal,
                arguments=copy.deepcopy(e.arguments),
            )
    for q in topology.queues:
        with _applying(rules, q.origin):
            _apply_queue(_vhost(node, q.vhost), q, rules.declare_queues)
    for b in topology.bindings:
        with _applying(rules, b.origin):
            _apply_binding(_vhost(node, b.vhost), b)
    for lim in topology.vhost_limits:
        with _applying(rules, lim.origin):
            _vhost(node, lim.vhost)
            node.set_vhost_limits(lim.vhost, lim.limits)


def _apply_queue(vhost: VirtualHost, q: QueueSpec, declare: bool) -> None:
    arguments = copy.deepcopy(q.arguments)
    if declare:
        vhost.declare_queue(
            q.name,
            q.exclusive_owner,
            durable=q.durable,
            exclusive=q.exclusive_owner is not None,
            auto_delete=q.auto_delete,
            arguments=arguments,
        )
    else:
        vhost.queues[q.name] = vhost.new_queue(
            q.name, durable=q.durable, auto_delete=q.auto_delete, arguments=arguments
        )


def _apply_binding(vhost: VirtualHost, b: BindingSpec) -> None:
    source = _found(
        vhost.exchanges.get(b.source),
        Missing("exchange", b.source, b.vhost, binding_source=True),
    )
    found: Queue | Exchange | None
    if b.destination_type == "queue":
        found = vhost.queues.get(b.destination)
    else:
        found = vhost.exchanges.get(b.destination)
    if found is None:
        raise _MissingError(Missing(b.destination_type, b.destination, b.vhost))
    vhost.bind(source, found, b.routing_key, copy.deepcopy(b.arguments))


class _MissingError(Exception):
    def __init__(self, missing: Missing) -> None:
        super().__init__(str(missing))
        self.missing = missing


T = TypeVar("T")


def _found(value: T | None, missing: Missing) -> T:
    if value is None:
        raise _MissingError(missing)
    return value


def _vhost(node: TopologyTarget, name: str) -> VirtualHost:
    return _found(node.vhosts.get(name), Missing("vhost", name))


@contextlib.contextmanager
def _applying(rules: Rules, origin: object) -> Iterator[None]:
    """Around one object: the rules report its errors, and decide on what it names missing."""
    with rules.reporting(origin):
        try:
            yield
        except _MissingError as error:
            rules.missing(origin, error.missing)  # raises, or the object is skipped
