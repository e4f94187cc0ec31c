"""The whole broker's domain: its virtual hosts and its users, and their recovery from the store.

The runtime changes an operator makes (vhosts, users, permissions, policies, alarms) are methods
here, each of which records itself in the store and emits its event; `amqp_lite.admin` puts the
protocol-level ones (connections) beside them for the embedding API, the management API and the
command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from vhosts.clock import Clock
from vhosts.errors import NotAllowed, NotFound
from vhosts.events import NodeEvents
from vhosts.limits import Tracking, validate_user_limits, validate_vhost_limits
from vhosts.message import Message
from vhosts.page_files import PAGES_DIRECTORY
from vhosts.paging import Paging
from vhosts.policies import Policy
from vhosts.queue import Queue, StoredEntry
from vhosts.queue_types import check_queue_type_name
from vhosts.store import Store, stored_bcc
from vhosts.stream_storage import STREAMS_DIRECTORY, StreamStorage
from vhosts.timers import Timers
from vhosts.topology import (
    BindingSpec,
    ExchangeSpec,
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
    Permission,
    TopicPermission,
    User,
    Users,
    hash_password,
    hashing_module,
)
from vhosts.vhost import VirtualHost

DEFAULT_VHOST = "/"

# How recovery applies the stored topology: queues are built by name, since a server-named one
# ('amq.gen-...') could not be declared; what the store names but no longer has (a binding
# whose queue is gone) is skipped; anything else the domain refuses stops the start-up.
RESTORING = Rules(declare_queues=False)
RESTORE_BATCH = 1000  # stored entries a queue takes back at a time


class Node:
    def __init__(
        self,
        vhost_names: tuple[str, ...] = (DEFAULT_VHOST,),
        *,
        guest: bool = True,
        store: Store | None = None,
        streams: StreamStorage | None = None,
        clock: Clock | None = None,
        cluster_name: str = "",
        password_hashing: str = DEFAULT_HASHING,
        paging: Paging | None = None,
    ) -> None:
        """`cluster_name` is what clients are told the broker is called (server properties);
        the server names an unnamed node after its host. `password_hashing` hashes the
        passwords given at runtime (RabbitMQ's password_hashing_module). `streams` is where
        stream queues keep their logs: by default beside the store, or in a temporary
        directory when there is no store. `paging` is where classic queues page past their
        memory budget: by default beside the store; with neither, they keep all in memory."""
        self.cluster_name = cluster_name
        self.password_hashing = hashing_module(password_hashing)
        self.clock = clock if clock is not None else Clock()
        self.timers = Timers()  # the server's timer task runs what is due on `clock`
        self.events = NodeEvents()
        self.vhosts: dict[str, VirtualHost] = {}
        self.users = Users()
        self.store = store
        if streams is None:
            streams = StreamStorage(
                store.directory / STREAMS_DIRECTORY if store is not None else None,
                store.codec if store is not None else None,
            )
        self.streams = streams
        if store is not None:  # a stream's write is part of the store's cycle
            streams.mark = store.mark
            streams.count_unwritten = store.count_unwritten
        # Resources in alarm ("memory", "disk"), each with what raised it: a free-space
        # monitor and a failing write may both say "disk", and each clears only its own.
        self._alarms: dict[str, set[str]] = {}
        if paging is None and store is not None:
            paging = Paging(
                store.directory / PAGES_DIRECTORY,
                encode_properties=store.codec.encode_properties,
                decode_properties=store.codec.decode_properties,
            )
        self.paging = paging
        if paging is not None:  # queued messages keep only their encoded properties
            Message.decode_properties = paging.decode_properties
        self.tracking = Tracking()  # open connections and channels, which limits count
        # As RabbitMQ: the default user is made only on a node with no users and no vhosts
        # (a new store), so that a guest deleted for security stays deleted across restarts.
        if store is not None:
            self._recover(store)
            guest = guest and not len(self.users) and not self.vhosts
        if guest and self.users.get("guest") is None:
            self.add_user(
                "guest", "guest", tags=["administrator"], hashing_algorithm=self.password_hashing
            )
        for name in vhost_names:
            self.add_vhost(name)

    def add_vhost(self, name: str, *, default_queue_type: str | None = None) -> VirtualHost:
        """Create vhost `name` if it is not there; `default_queue_type`, when given, becomes
        its default queue type (see `set_default_queue_type`)."""
        vhost = self.vhosts.get(name)
        if vhost is not None and default_queue_type is not None:
            self.set_default_queue_type(name, default_queue_type)
        if vhost is None:
            if default_queue_type is not None:
                check_queue_type_name(default_queue_type)
            vhost = self.vhosts[name] = self._new_vhost(name, self.store)
            vhost.default_queue_type = default_queue_type
            if self.store is not None:
                self.store.save_vhost(name, default_queue_type)
            self.events.vhost_created.emit(vhost)
            guest = self.users.get("guest")
            if guest is not None and name not in guest.permissions:
                self.set_permission(guest, name, Permission())
        return vhost

    def _new_vhost(self, name: str, store: Store | None = None) -> VirtualHost:
        return VirtualHost(
            name,
            store,
            clock=self.clock,
            timers=self.timers,
            events=self.events,
            streams=self.streams,
            paging=self.paging,
        )

    def delete_vhost(self, name: str) -> VirtualHost | None:
        """Remove a vhost and everything in it; the caller closes connections still open on it.

        Its queues go the way any deleted queue goes: consumers are cancelled (basic.cancel, as
        RabbitMQ sends before closing the connections), stored messages are released.
        """
        vhost = self.vhosts.pop(name, None)
        if vhost is not None:
            for queue in list(vhost.queues.values()):
                vhost.remove_queue(queue)
        for user in self.users:
            user.topic_permissions.pop(name, None)
            if user.permissions.pop(name, None) is not None:
                self.events.permission_deleted.emit(user, name)
        if self.store is not None:
            self.store.delete_vhost(name)  # exchanges, bindings and anything left of the queues
        if vhost is not None:
            self.events.vhost_deleted.emit(vhost)
        return vhost

    def set_default_queue_type(self, name: str, queue_type: str | None) -> None:
        """The x-queue-type a vhost's queues get when declared without one, where the type
        allows their flags (RabbitMQ 3.11's vhost metadata); None: classic, as before.
        ValueError for a type this broker does not have."""
        vhost = self.vhost(name)
        if queue_type is not None:
            check_queue_type_name(queue_type)
        vhost.default_queue_type = queue_type
        if self.store is not None:
            self.store.save_vhost(name, queue_type)

    def vhost(self, name: str) -> VirtualHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            raise NotAllowed(f"vhost {name} not found")
        return vhost

    def add_user(
        self,
        name: str,
        password: str | None = None,
        *,
        password_hash: str | None = None,
        tags: list[str] | None = None,
        hashing_algorithm: str = DEFAULT_HASHING,
    ) -> User:
        """Add a user, or replace one of that name (keeping its permissions)."""
        existing = self.users.get(name)
        user = self.users.add(
            name,
            password,
            password_hash=password_hash,
            tags=tags,
            hashing_algorithm=hashing_algorithm,
        )
        self._save_user(user)
        if existing is None:
            self.events.user_created.emit(user)
        else:
            user.permissions = existing.permissions
            user.topic_permissions = existing.topic_permissions
            user.limits = existing.limits
            self.events.user_password_changed.emit(user)
            self.events.user_tags_set.emit(user)
        return user

    def _save_user(self, user: User) -> None:
        if self.store is not None:
            self.store.save_user(user.name, user.password_hash, user.hashing_algorithm, user.tags)

    def user(self, name: str) -> User:
        user = self.users.get(name)
        if user is None:
            raise NotFound(f"no user '{name}'")
        return user

    def delete_user(self, name: str) -> User | None:
        """Remove a user and its permissions; None when there was none.

        As in RabbitMQ, connections it opened stay open.
        """
        user = self.users.remove(name)
        if user is not None:
            if self.store is not None:
                self.store.delete_user(name)
            self.events.user_deleted.emit(user)
        return user

    def change_password(self, name: str, password: str | None) -> User:
        """A new password; None clears it, so that the user cannot log in with one.

        As RabbitMQ, the new password is hashed with the node's algorithm, whatever hashed the
        old one (an MD5 hash imported from an old node goes with its password).
        """
        user = self.user(name)
        if password is None:
            user.password_hash = ""
        else:
            user.hashing_algorithm = self.password_hashing
            user.password_hash = hash_password(password, algorithm=self.password_hashing)
        self._save_user(user)
        self.events.user_password_changed.emit(user)
        return user

    def set_user_tags(self, name: str, tags: list[str]) -> User:
        user = self.user(name)
        user.tags = list(tags)
        self._save_user(user)
        self.events.user_tags_set.emit(user)
        return user

    def set_permission(self, user: User, vhost: str, permission: Permission) -> None:
        user.permissions[vhost] = permission
        if self.store is not None:
            p = permission
            self.store.save_permission(user.name, vhost, p.configure, p.write, p.read)
        self.events.permission_created.emit(user, vhost, permission)

    def clear_permission(self, user: User, vhost: str) -> bool:
        """Take a user's permissions in a vhost away; False when it had none there."""
        if user.permissions.pop(vhost, None) is None:
            return False
        if self.store is not None:
            self.store.delete_permission(user.name, vhost)
        self.events.permission_deleted.emit(user, vhost)
        return True

    def set_topic_permission(self, user: User, vhost: str, permission: TopicPermission) -> None:
        """Add or replace `user`'s topic permission on `permission.exchange` in `vhost`."""
        user.topic_permissions.setdefault(vhost, {})[permission.exchange] = permission
        if self.store is not None:
            p = permission
            self.store.save_topic_permission(user.name, vhost, p.exchange, p.write, p.read)

    def clear_topic_permissions(self, user: User, vhost: str, exchange: str | None = None) -> bool:
        """Take `user`'s topic permissions in `vhost` away, on one exchange or all; False when
        there were none."""
        in_vhost = user.topic_permissions.get(vhost, {})
        gone = list(in_vhost) if exchange is None else [e for e in in_vhost if e == exchange]
        for name in gone:
            del in_vhost[name]
            if self.store is not None:
                self.store.delete_topic_permission(user.name, vhost, name)
        if not in_vhost:
            user.topic_permissions.pop(vhost, None)
        return bool(gone)

    # -- limits (RabbitMQ's set_vhost_limits and set_user_limits) -------------------------------

    def set_vhost_limits(self, name: str, definition: Mapping[str, Any]) -> None:
        """Replace a vhost's limits with `definition` ({"max-connections": 10, ...});
        LimitsInvalid with RabbitMQ's text. Nothing already open is closed."""
        vhost = self.vhost(name)
        vhost.limits = validate_vhost_limits(definition)
        if self.store is not None:
            self.store.save_limits("vhost", name, vhost.limits)

    def set_vhost_limit(self, name: str, limit: str, value: object) -> None:
        """Set one of a vhost's limits, keeping the others (the management API's PUT)."""
        self.set_vhost_limits(name, {**self.vhost(name).limits, limit: value})

    def clear_vhost_limit(self, name: str, limit: str | None = None) -> None:
        """Clear one of a vhost's limits, or (None) all of them."""
        vhost = self.vhost(name)
        kept = {} if limit is None else {k: v for k, v in vhost.limits.items() if k != limit}
        self.set_vhost_limits(name, kept)

    def set_user_limits(self, name: str, definition: Mapping[str, Any]) -> None:
        """Set some of a user's limits, keeping the others, as `rabbitmqctl set_user_limits`
        does; LimitsInvalid with RabbitMQ's text."""
        user = self.user(name)
        user.limits.update(validate_user_limits(definition))  # in place: old User objects share it
        self._save_user_limits(user)

    def clear_user_limit(self, name: str, limit: str | None = None) -> None:
        """Clear one of a user's limits, or (None: RabbitMQ's "all") every one."""
        user = self.user(name)
        if limit is None:
            user.limits.clear()
        else:
            user.limits.pop(limit, None)
        self._save_user_limits(user)

    def _save_user_limits(self, user: User) -> None:
        if self.store is not None:
            self.store.save_limits("user", user.name, user.limits)

    def admit_connection(self, vhost: VirtualHost, user: User) -> None:
        """A connection is opening `vhost` as `user`: count it, or refuse it with 530."""
        current = self.users.get(user.name) or user
        self.tracking.admit_connection(vhost.name, vhost.limits, user.name, current.limits)

    def admit_channel(self, user: User) -> None:
        """`user` is opening a channel: count it, or refuse it with 530."""
        current = self.users.get(user.name) or user
        self.tracking.admit_channel(user.name, current.limits)

    def set_policy(self, policy: Policy) -> None:
        """Add or replace a policy in its vhost; ValueError with RabbitMQ's text if invalid."""
        self.vhost(policy.vhost).set_policy(policy)

    def clear_policy(self, vhost: str, name: str) -> bool:
        return self.vhost(vhost).delete_policy(name)

    @property
    def alarms(self) -> AbstractSet[str]:
        """The resources in alarm."""
        return self._alarms.keys()

    def set_alarm(self, resource: str, source: str = "") -> None:
        """A resource ("memory", "disk") ran short, as `source` finds: publishers are to be
        blocked until every source that raised the alarm has cleared it."""
        sources = self._alarms.get(resource)
        if sources is None:
            self._alarms[resource] = {source}
            self.events.alarm_set.emit(resource)
        else:
            sources.add(source)

    def clear_alarm(self, resource: str, source: str = "") -> None:
        sources = self._alarms.get(resource)
        if sources is not None and source in sources:
            sources.discard(source)
            if not sources:
                del self._alarms[resource]
                self.events.alarm_cleared.emit(resource)

    def _recover(self, store: Store) -> None:
        """Rebuild vhosts, users, durable topology and persistent messages from the store."""
        # The store is detached while its topology is applied, so that nothing is recorded
        # twice; every vhost and queue gets it back afterwards (they are all durable).
        self.store = None
        try:
            apply_topology(self, _stored_topology(store), RESTORING)
        finally:
            self.store = store
        for vhost in self.vhosts.values():
            vhost.store = store
            for queue in vhost.queues.values():
                queue.store = store
        self._recover_messages(store)
        self._recover_held_messages(store)
        store.drop_orphans()
        self.streams.forget_unclaimed()  # logs of streams deleted while their files stayed

    def _recover_held_messages(self, store: Store) -> None:
        """Delayed messages go back on the clock; those already due are released at once."""
        for (
            held_id,
            vhost_name,
            exchange_name,
            release_at,
            message_id,
            original_exchange,
            key,
            raw,
            body,
            bcc,
        ) in store.held_messages():
            vhost = self.vhosts.get(vhost_name)
            exchange = vhost.exchanges.get(exchange_name) if vhost is not None else None
            if vhost is None or exchange is None:
                store.release(held_id)  # its exchange is gone; drop_orphans takes the content
                continue
            message = Message(original_exchange, key, None, body, raw)
            message.store_id = message_id
            message.store_refs = -1 if message_id in store.holders else 1  # see Store.holders
            message.bcc = stored_bcc(bcc)
            vhost._hold(exchange, message, release_at, held_id)

    def _recover_messages(self, store: Store) -> None:
        """Each queue gets its stored entries back, a batch at a time, so that a backlog
        bigger than memory pages as it comes back rather than first filling memory.

        Content that several holders share gets its count in the store (`Store.holders`) and
        an object per holder, so that no object has to outlive its place in a page."""
        Message.decode_properties = store.codec.decode_properties
        shared = store.shared_contents()
        store.holders.update(shared)
        queue: Queue | None = None
        entries: list[StoredEntry] = []
        for row in store.queue_messages():  # ordered by vhost, queue, position
            vhost_name, queue_name, seq, delivered, expires_at, message_id = row[:6]
            exchange, key, raw, body, bcc = row[6:]
            if queue is None or queue.name != queue_name or queue.vhost_name != vhost_name:
                if queue is not None:
                    queue.restore(entries)
                queue, entries = self.vhosts[vhost_name].queues.get(queue_name), []
            if queue is None:
                continue
            message = Message(exchange, key, None, body, raw)
            message.store_id = message_id
            message.store_refs = -1 if message_id in shared else 1
            message.routed = True  # this entry is its one holder, or the store counts them
            message.bcc = stored_bcc(bcc)
            entries.append(StoredEntry(seq, message, delivered, expires_at))
            if len(entries) >= RESTORE_BATCH:
                queue.restore(entries)
                entries = []
        if queue is not None:
            queue.restore(entries)


def _stored_topology(store: Store) -> Topology:
    """What the store holds apart from messages: everything durable, so declared durable."""
    user_limits = store.limits("user")
    default_types = store.default_queue_types()
    return Topology(
        vhosts=tuple(
            VhostSpec(name, default_queue_type=default_types.get(name)) for name in store.vhosts()
        ),
        users=tuple(UserSpec(*user, limits=user_limits.get(user[0], {})) for user in store.users()),
        permissions=tuple(
            PermissionSpec(user, vhost, Permission(configure, write, read))
            for user, vhost, configure, write, read in store.permissions()
        ),
        topic_permissions=tuple(
            TopicPermissionSpec(user, vhost, TopicPermission(exchange, write, read))
            for user, vhost, exchange, write, read in store.topic_permissions()
        ),
        policies=tuple(
            PolicySpec(Policy(p.vhost, p.name, p.pattern, p.apply_to, p.priority, p.definition))
            for p in store.policies()
        ),
        exchanges=tuple(
            ExchangeSpec(e.vhost, e.name, e.type, True, e.auto_delete, e.internal, e.arguments)
            for e in store.exchanges()
        ),
        queues=tuple(
            QueueSpec(q.vhost, q.name, True, q.auto_delete, q.arguments) for q in store.queues()
        ),
        bindings=tuple(
            BindingSpec(
                b.vhost, b.source, b.destination, b.destination_kind, b.routing_key, b.arguments
            )
            for b in store.bindings()
        ),
        vhost_limits=tuple(
            VhostLimitsSpec(vhost, limits) for vhost, limits in store.limits("vhost").items()
        ),
    )
