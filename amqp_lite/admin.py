"""The one admin surface: every runtime operation an operator or a test performs on a broker.

vhosts, users, permissions and policies; purging and deleting queues; closing connections; and
listings of everything with its counts. `Broker`, `ThreadedBroker`, the pytest plugin, the
management API and the command line all call this, so each operation is written once, with
RabbitMQ's rules and texts. The domain part (`vhosts.node.Node`, `vhosts.inventory`) does the
work; this module adds what only the protocol layer knows: the connections and their channels.

Listings return frozen snapshots, safe to keep and to read from another thread. Operations raise
`vhosts.errors.NotFound` for what is not there and `ValueError` for what RabbitMQ refuses (a
policy's validation texts); they must run in the broker's trio loop (`ThreadedBroker.admin`
takes care of that).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from amqp_lite import resources as resource_readings
from amqp_lite.connection import ServerConnection, State
from vhosts import Node, Permission, Queue, inventory
from vhosts.errors import NotFound, PreconditionFailed
from vhosts.inventory import (
    BindingInfo,
    ExchangeInfo,
    PermissionInfo,
    QueueInfo,
    TopicPermissionInfo,
    UserInfo,
    VhostInfo,
)
from vhosts.policies import Policy
from vhosts.users import TopicPermission, hashing_module

if TYPE_CHECKING:
    from amqp_lite.channel import Channel
    from amqp_lite.server import Server
    from vhosts.definitions import Definitions

log = logging.getLogger("amqp_lite.admin")

# What a connection closed from the management UI is told, as RabbitMQ tells it.
DEFAULT_CLOSE_REASON = "Closed via management plugin"

# RabbitMQ's names for the states of a connection.
_CONNECTION_STATES = {
    State.AWAITING_HEADER: "starting",
    State.AWAITING_START_OK: "starting",
    State.AWAITING_TUNE_OK: "tuning",
    State.AWAITING_OPEN: "opening",
    State.OPEN: "running",
    State.CLOSING: "closing",
    State.CLOSED: "closed",
}


@attrs.frozen
class ConnectionInfo:
    name: str  # "peer_host:peer_port -> host:port"
    peer_host: str
    peer_port: int
    host: str
    port: int
    # RabbitMQ's: starting, tuning, opening, running, blocking, blocked, flow, closing, closed
    state: str
    user: str
    vhost: str
    channels: int
    client_properties: dict[str, Any]
    auth_mechanism: str
    heartbeat: int  # seconds
    frame_max: int
    channel_max: int
    connected_at: float  # seconds since the epoch, on the broker's clock
    connection: ServerConnection = attrs.field(repr=False, eq=False)  # live: only for the loop


@attrs.frozen
class ChannelInfo:
    name: str  # "<connection name> (<number>)"
    connection: str
    number: int
    user: str
    vhost: str
    state: str  # running, flow (the client paused deliveries), closing
    consumers: int
    messages_unacknowledged: int
    prefetch_count: int
    global_prefetch_count: int
    confirm: bool
    transactional: bool


@attrs.frozen
class ConsumerInfo:
    vhost: str
    queue: str
    consumer_tag: str
    channel: str  # the channel's name
    connection: str
    ack_required: bool
    exclusive: bool
    prefetch_count: int
    arguments: dict[str, Any]


@attrs.frozen
class ResourceInfo:
    """Memory and disk as the alarms see them (RabbitMQ's mem_* and disk_free* node fields)."""

    mem_used: int  # bytes, the resident set when last read
    mem_limit: int  # the high watermark, in bytes
    mem_alarm: bool
    disk_free: int  # bytes free where the data directory is, when last read
    disk_free_limit: int
    disk_free_alarm: bool
    total_memory: int  # what a relative watermark is a fraction of


class Admin:
    """Runtime operations on a node, and on the server's connections when there is one."""

    def __init__(self, node: Node, server: Server | None = None) -> None:
        self.node = node
        self.server = server

    # -- vhosts ----------------------------------------------------------------------------------

    def add_vhost(self, name: str) -> bool:
        """Create vhost `name` (guest may use it); False when it was there already."""
        if name in self.node.vhosts:
            return False
        self.node.add_vhost(name)
        return True

    def delete_vhost(self, name: str) -> bool:
        """Delete a vhost and everything in it, and close its connections, as `rabbitmqctl
        delete_vhost` does: basic.cancel to its consumers, then connection.close 320. False
        when there was no such vhost."""
        vhost = self.node.delete_vhost(name)
        if vhost is None:
            return False
        self._force_close(
            [c for c in self._connections() if c.vhost is vhost],
            f"CONNECTION_FORCED - vhost '{name}' is deleted",
        )
        return True

    def vhosts(self) -> list[VhostInfo]:
        return inventory.vhosts(self.node)

    def vhost_metadata(self, name: str) -> dict[str, Any]:
        vhost = self.node.vhost(self._vhost(name))
        return {
            "description": vhost.description,
            "tags": list(vhost.tags),
            "default_queue_type": vhost.default_queue_type,
        }

    def set_vhost_metadata(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: list[str] | None = None,
        default_queue_type: str | None = None,
    ) -> None:
        """What an operator says of a vhost; what is not given stays as it was.

        `default_queue_type` ("quorum", "classic") is the x-queue-type its queues get when
        declared without one, where the type allows their flags, as RabbitMQ 3.11 has it;
        ValueError for a type this broker does not have.
        """
        vhost = self.node.vhost(self._vhost(name))
        if default_queue_type is not None:
            self.node.set_default_queue_type(name, default_queue_type)
        if description is not None:
            vhost.description = description
        if tags is not None:
            vhost.tags = list(tags)

    def set_tracing(self, name: str, on: bool) -> None:
        """Turn the firehose tracer on or off for a vhost (`rabbitmqctl trace_on`/`trace_off`):
        while on, every publish and delivery in it is copied to amq.rabbitmq.trace."""
        self.node.vhost(self._vhost(name)).tracing = on

    def tracing(self, name: str) -> bool:
        return self.node.vhost(self._vhost(name)).tracing

    # -- users and permissions -------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        password: str | None = None,
        *,
        password_hash: str | None = None,
        tags: list[str] | tuple[str, ...] = (),
        hashing_algorithm: str | None = None,
    ) -> None:
        """Add a user, or replace the password and tags of the one of that name.

        A password is hashed with `hashing_algorithm` (sha256, sha512 or md5, or RabbitMQ's
        module names for them), by default the node's (sha256 unless the broker was given
        another); a `password_hash` is taken as made by it. With neither a password nor a hash
        the user can log in only by its TLS client certificate (EXTERNAL).
        """
        if password is None and password_hash is None:
            password_hash = ""
        self.node.add_user(
            name,
            password,
            password_hash=password_hash,
            tags=list(tags),
            hashing_algorithm=hashing_module(hashing_algorithm or self.node.password_hashing),
        )

    def delete_user(self, name: str) -> bool:
        """Delete a user and close its connections, as RabbitMQ does; False if there was none."""
        user = self.node.delete_user(name)
        if user is None:
            return False
        self._force_close(
            [c for c in self._connections() if c.user is user],
            f"CONNECTION_FORCED - user '{name}' is deleted",
        )
        return True

    def change_password(self, name: str, password: str) -> None:
        self.node.change_password(name, password)

    def clear_password(self, name: str) -> None:
        self.node.change_password(name, None)

    def set_user_tags(self, name: str, tags: list[str] | tuple[str, ...]) -> None:
        self.node.set_user_tags(name, list(tags))

    def users(self) -> list[UserInfo]:
        return inventory.users(self.node)

    def set_permissions(
        self,
        user: str,
        vhost: str,
        configure: str = ".*",
        write: str = ".*",
        read: str = ".*",
    ) -> None:
        """Give `user` these regular expressions in `vhost`, as `rabbitmqctl set_permissions`."""
        found = self.node.user(user)
        self._vhost(vhost)
        self.node.set_permission(found, vhost, Permission(configure, write, read))

    def clear_permissions(self, user: str, vhost: str) -> bool:
        return self.node.clear_permission(self.node.user(user), vhost)

    def permissions(
        self, *, vhost: str | None = None, user: str | None = None
    ) -> list[PermissionInfo]:
        if vhost is not None:
            self._vhost(vhost)
        if user is not None:
            self.node.user(user)
        return inventory.permissions(self.node, vhost=vhost, user=user)

    def set_topic_permissions(
        self, user: str, vhost: str, exchange: str, write: str = ".*", read: str = ".*"
    ) -> None:
        """As `rabbitmqctl set_topic_permissions`: the routing keys `user` may publish with
        (write) and bind with (read) on topic exchange `exchange` in `vhost`. `{username}` and
        `{vhost}` in a pattern stand for the user's and the vhost's names. ValueError for a
        pattern that is not a regular expression."""
        found = self.node.user(user)
        self._vhost(vhost)
        for kind, pattern in (("write", write), ("read", read)):
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{kind} is not a regular expression: {error}") from None
        self.node.set_topic_permission(found, vhost, TopicPermission(exchange, write, read))

    def clear_topic_permissions(self, user: str, vhost: str, exchange: str | None = None) -> bool:
        """Remove `user`'s topic permissions in `vhost` (on one exchange, or all)."""
        return self.node.clear_topic_permissions(self.node.user(user), vhost, exchange)

    def topic_permissions(
        self, *, vhost: str | None = None, user: str | None = None
    ) -> list[TopicPermissionInfo]:
        if vhost is not None:
            self._vhost(vhost)
        if user is not None:
            self.node.user(user)
        return inventory.topic_permissions(self.node, vhost=vhost, user=user)

    # -- policies --------------------------------------------------------------------------------

    def set_policy(
        self,
        vhost: str,
        name: str,
        pattern: str,
        definition: dict[str, Any],
        *,
        priority: int | float = 0,
        apply_to: str = "all",
    ) -> None:
        """Add or replace a policy, as `rabbitmqctl set_policy` does; kept in the store.

        Raises ValueError with RabbitMQ's validation texts for a policy it would refuse.
        """
        self._vhost(vhost)
        self.node.set_policy(Policy(vhost, name, pattern, apply_to, priority, definition))

    def clear_policy(self, vhost: str, name: str) -> bool:
        """Remove a policy (`rabbitmqctl clear_policy`); False when there was none."""
        return self.node.clear_policy(self._vhost(vhost), name)

    def policies(self, vhost: str | None = None) -> list[Policy]:
        return inventory.policies(self.node, self._vhost(vhost) if vhost is not None else None)

    # -- exchanges, queues, bindings -------------------------------------------------------------

    def exchanges(self, vhost: str | None = None) -> list[ExchangeInfo]:
        return inventory.exchanges(self.node, self._vhost(vhost) if vhost is not None else None)

    def queues(self, vhost: str | None = None) -> list[QueueInfo]:
        return inventory.queues(self.node, self._vhost(vhost) if vhost is not None else None)

    def queue(self, vhost: str, name: str) -> QueueInfo:
        return inventory.queue_info(self.node.vhost(self._vhost(vhost)), self._queue(vhost, name))

    def bindings(self, vhost: str | None = None) -> list[BindingInfo]:
        return inventory.bindings(self.node, self._vhost(vhost) if vhost is not None else None)

    def purge_queue(self, vhost: str, name: str) -> int:
        """Drop a queue's ready messages (`rabbitmqctl purge_queue`); returns how many."""
        return self._queue(vhost, name).purge()

    def delete_queue(
        self, vhost: str, name: str, *, if_unused: bool = False, if_empty: bool = False
    ) -> int:
        """Delete a queue whoever declared it; its consumers get basic.cancel. Returns the
        number of ready messages it held."""
        queue = self._queue(vhost, name)
        try:
            queue.check_deletable(if_unused=if_unused, if_empty=if_empty)
        except PreconditionFailed as error:
            raise ValueError(error.text) from None
        return self.node.vhost(vhost).remove_queue(queue)

    # -- connections, channels, consumers --------------------------------------------------------

    def connections(self) -> list[ConnectionInfo]:
        """The connections that got as far as logging in and are not closed, oldest first."""
        return [_connection_info(c) for c in self._connections()]

    def close_connection(self, name: str, reason: str = DEFAULT_CLOSE_REASON) -> bool:
        """Close a connection with 320 CONNECTION_FORCED and `reason`, as `rabbitmqctl
        close_connection` and the management API do; False when no connection has that name."""
        for connection in self._connections():
            if connection.name == name:
                _close(connection, f"CONNECTION_FORCED - {reason}")
                return True
        return False

    def channels(self) -> list[ChannelInfo]:
        return [
            _channel_info(connection, channel)
            for connection in self._connections()
            for channel in _by_number(connection)
        ]

    def consumers(self, vhost: str | None = None) -> list[ConsumerInfo]:
        found = []
        for connection in self._connections():
            if vhost is not None and (connection.vhost is None or connection.vhost.name != vhost):
                continue
            for channel in _by_number(connection):
                for consumer in channel.consumers.by_tag.values():
                    if not isinstance(consumer.queue, Queue):
                        continue  # direct reply-to: RabbitMQ does not list it either
                    found.append(
                        ConsumerInfo(
                            consumer.queue.vhost_name,
                            consumer.queue.name,
                            consumer.tag,
                            _channel_name(connection, channel),
                            connection.name,
                            ack_required=not consumer.no_ack,
                            exclusive=consumer.exclusive,
                            prefetch_count=consumer.prefetch,
                            arguments={"x-priority": consumer.priority}
                            if consumer.priority
                            else {},
                        )
                    )
        return found

    # -- limits (RabbitMQ's set_vhost_limits, set_user_limits) ---------------------------------

    def set_vhost_limits(self, vhost: str, definition: dict[str, Any]) -> None:
        """Replace a vhost's limits (`rabbitmqctl set_vhost_limits`): {"max-connections": 10,
        "max-queues": 100}, a negative value for no limit. ValueError with RabbitMQ's text."""
        self.node.set_vhost_limits(self._vhost(vhost), definition)

    def set_vhost_limit(self, vhost: str, name: str, value: object) -> None:
        """Set one of a vhost's limits, keeping the others (the management API's PUT)."""
        self.node.set_vhost_limit(self._vhost(vhost), name, value)

    def clear_vhost_limits(self, vhost: str, name: str | None = None) -> None:
        """Clear one of a vhost's limits, or (None) all of them."""
        self.node.clear_vhost_limit(self._vhost(vhost), name)

    def vhost_limits(self, vhost: str | None = None) -> dict[str, dict[str, int]]:
        """The limits of each vhost that has some (of `vhost` only, if given)."""
        names = [self._vhost(vhost)] if vhost is not None else sorted(self.node.vhosts)
        limits = {name: dict(self.node.vhosts[name].limits) for name in names}
        return {name: found for name, found in limits.items() if found}

    def set_user_limits(self, user: str, definition: dict[str, Any]) -> None:
        """Set some of a user's limits (`rabbitmqctl set_user_limits`: the others stay):
        {"max-connections": 5, "max-channels": 50}. ValueError with RabbitMQ's text."""
        self.node.set_user_limits(user, definition)

    def clear_user_limits(self, user: str, name: str | None = None) -> None:
        """Clear one of a user's limits, or (None: `clear_user_limits USER all`) all of them."""
        self.node.clear_user_limit(user, name)

    def user_limits(self, user: str | None = None) -> dict[str, dict[str, int]]:
        """The limits of each user that has some (of `user` only, if given)."""
        users = (
            [self.node.user(user)]
            if user is not None
            else sorted(self.node.users, key=lambda u: u.name)
        )
        return {u.name: dict(u.limits) for u in users if u.limits}

    # -- resources -------------------------------------------------------------------------------

    def resources(self) -> ResourceInfo:
        """Memory and disk, their limits and alarms; read now when nothing watches them."""
        alarms = self.node.alarms
        monitor = self.server.resources if self.server is not None else None
        if monitor is None:
            total = resource_readings.available_memory()
            watermark = resource_readings.MemoryWatermark()
            disk_limit = resource_readings.DiskFreeLimit()
            return ResourceInfo(
                resource_readings.resident_memory(),
                watermark.limit(total),
                resource_readings.MEMORY in alarms,
                resource_readings.free_disk_space(Path.cwd()),
                disk_limit.limit(total),
                resource_readings.DISK in alarms,
                total,
            )
        return ResourceInfo(
            monitor.memory_used,
            monitor.memory_limit,
            resource_readings.MEMORY in alarms,
            monitor.disk_free,
            monitor.disk_free_limit,
            resource_readings.DISK in alarms,
            monitor.total_memory,
        )

    # -- the whole topology ----------------------------------------------------------------------

    def load_definitions(self, definitions: Definitions) -> None:
        """Apply parsed definitions (`vhosts.definitions.parse`): all of them, or nothing."""
        definitions.apply_to(self.node)

    def export_definitions(self) -> dict[str, Any]:
        """The broker's topology as RabbitMQ's `export_definitions` writes it (JSON-ready)."""
        from vhosts.definitions_export import export_definitions  # rarely needed

        return export_definitions(self.node)

    # -- helpers ---------------------------------------------------------------------------------

    def _vhost(self, name: str) -> str:
        if name not in self.node.vhosts:
            raise NotFound(f"no vhost '{name}'")
        return name

    def _queue(self, vhost: str, name: str) -> Queue:
        queue = self.node.vhost(self._vhost(vhost)).queues.get(name)
        if queue is None:
            raise NotFound(f"no queue '{name}' in vhost '{vhost}'")
        return queue

    @staticmethod
    def _force_close(connections: list[ServerConnection], text: str) -> None:
        """As RabbitMQ closes the connections of a deleted vhost or user: connection.close 320,
        then the socket at once, without waiting for close-ok. Consumers of queues that went
        with a vhost have had their basic.cancel already."""
        for connection in connections:
            _close(connection, text, hang_up=True)

    def _connections(self) -> Iterator[ServerConnection]:
        if self.server is None:
            return iter(())
        # Logged in, and not yet gone: a closed one is only waiting for its socket to close.
        opened = [
            c for c in self.server.connections if c.user is not None and c.state is not State.CLOSED
        ]
        return iter(sorted(opened, key=lambda c: c.connected_at))


def _close(connection: ServerConnection, text: str, *, hang_up: bool = False) -> None:
    """connection.close 320 `text` (and the socket at once: `hang_up`). A failure is that
    connection's alone: logged, and the connection cut off without a word, while the operation
    goes on with the others and its caller never sees it."""
    try:
        connection.close(320, text)
        if hang_up:
            connection.connection_lost()
    except Exception:
        log.exception("internal error closing connection %s; hanging up", connection.name)
        try:
            connection.abandon()
        except Exception:
            log.exception("internal error hanging up on connection %s", connection.name)


def _consumer_arguments(priority: int) -> dict[str, Any]:
    return {"x-priority": priority} if priority else {}


def _connection_info(connection: ServerConnection) -> ConnectionInfo:
    return ConnectionInfo(
        connection.name,
        connection.peer[0],
        connection.peer[1],
        connection.local[0],
        connection.local[1],
        connection.throttled or _CONNECTION_STATES[connection.state],
        connection.user.name if connection.user is not None else "",
        connection.vhost.name if connection.vhost is not None else "",
        len(connection.channels),
        dict(connection.client_properties),
        connection.auth_mechanism,
        connection.heartbeat,
        connection.frame_max,
        connection.channel_max,
        connection.connected_at,
        connection,
    )


def _channel_name(connection: ServerConnection, channel: Channel) -> str:
    return f"{connection.name} ({channel.number})"


def _by_number(connection: ServerConnection) -> list[Channel]:
    return [connection.channels[n] for n in sorted(connection.channels)]


def _channel_info(connection: ServerConnection, channel: Channel) -> ChannelInfo:
    if channel.closing:
        state = "closing"
    elif not channel.flow_active:
        state = "flow"
    else:
        state = "running"
    return ChannelInfo(
        _channel_name(connection, channel),
        connection.name,
        channel.number,
        connection.user.name if connection.user is not None else "",
        connection.vhost.name if connection.vhost is not None else "",
        state,
        len(channel.consumers.by_tag),
        channel.unacked_count,
        channel.prefetch_count,
        channel.global_prefetch_count,
        channel.confirming,
        channel.transactional,
    )
