"""Node-wide events: what happened to connections, channels, topology, users and alarms.

Anything that wants to know (metrics, alarms, the management API, a test) subscribes a listener
to one event; the code where the thing happens emits it. Emitting is synchronous and runs every
listener in subscription order, so listeners must be cheap: count, remember, or wake a task.

No event is emitted on the per-message path (publish, route, deliver, ack); message counts are
read where they are kept instead. With no listener an emit is one call over an empty tuple.

The names are RabbitMQ's internal event names (`rabbit_event`), so that what amqp-lite reports
reads the same as RabbitMQ's event exchange and management plugin. The topology events are
declared beside the vhost that emits them (`VhostEvents`); the node's add the rest.
"""

from __future__ import annotations

from typing import Any

from vhosts.event import Event
from vhosts.users import Permission, User
from vhosts.vhost import VhostEvents, VirtualHost

__all__ = ["Event", "NodeEvents", "VhostEvents"]


class NodeEvents(VhostEvents):
    """Every event a node emits; one instance per node, shared by its vhosts."""

    def __init__(self) -> None:
        # The protocol layer's connection and channel objects; vhosts/ does not know their type.
        self.connection_created: Event[[Any]] = Event("connection_created")
        self.connection_closed: Event[[Any]] = Event("connection_closed")
        self.channel_created: Event[[Any]] = Event("channel_created")
        self.channel_closed: Event[[Any]] = Event("channel_closed")

        self.vhost_created: Event[[VirtualHost]] = Event("vhost_created")
        self.vhost_deleted: Event[[VirtualHost]] = Event("vhost_deleted")
        super().__init__()  # queues, exchanges, bindings, policies

        self.user_created: Event[[User]] = Event("user_created")
        self.user_deleted: Event[[User]] = Event("user_deleted")
        self.user_password_changed: Event[[User]] = Event("user_password_changed")
        self.user_tags_set: Event[[User]] = Event("user_tags_set")
        # (user, vhost name, permission)
        self.permission_created: Event[[User, str, Permission]] = Event("permission_created")
        self.permission_deleted: Event[[User, str]] = Event("permission_deleted")

        # A resource alarm ("memory", "disk") went on or off for the node.
        self.alarm_set: Event[[str]] = Event("alarm_set")
        self.alarm_cleared: Event[[str]] = Event("alarm_cleared")
