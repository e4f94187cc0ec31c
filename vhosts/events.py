"""Node-wide events: what happened to connections, channels, topology, users and alarms.

Anything that wants to know (metrics, alarms, the management API, a test) subscribes a listener
to one event; the code where the thing happens emits it. Emitting is synchronous and runs every
listener in subscription order, so listeners must be cheap: count, remember, or wake a task.

No event is emitted on the per-message path (publish, route, deliver, ack); message counts are
read where they are kept instead. With no listener an emit is one call over an empty tuple.

The names are RabbitMQ's internal event names (`rabbit_event`), so that what amqp-lite reports
reads the same as RabbitMQ's event exchange and management plugin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec

if TYPE_CHECKING:
    from vhosts.exchange import Exchange
    from vhosts.policies import Policy
    from vhosts.queue import Queue
    from vhosts.users import Permission, User
    from vhosts.vhost import Destination, VirtualHost

P = ParamSpec("P")

log = logging.getLogger("vhosts.events")


class Event(Generic[P]):
    """One kind of event and its listeners. `bool(event)` says whether anyone listens."""

    __slots__ = ("_listeners", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        # A tuple, replaced on (un)subscribe: emitting iterates it without copying, and a
        # listener that subscribes or leaves while the event runs changes only the next emit.
        self._listeners: tuple[Callable[P, object], ...] = ()

    def __repr__(self) -> str:
        return f"<Event {self.name} listeners={len(self._listeners)}>"

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def subscribe(self, listener: Callable[P, object]) -> Callable[[], None]:
        """Call `listener` on every emit from now on; returns what unsubscribes it."""
        self._listeners = (*self._listeners, listener)
        return lambda: self.unsubscribe(listener)

    def unsubscribe(self, listener: Callable[P, object]) -> None:
        listeners = list(self._listeners)
        if listener in listeners:
            listeners.remove(listener)
            self._listeners = tuple(listeners)

    def emit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for listener in self._listeners:
            try:
                listener(*args, **kwargs)
            except Exception:  # an observer's bug must not undo what it observes
                log.exception("listener %r of event %s failed", listener, self.name)


class NodeEvents:
    """Every event a node emits; one instance per node, shared by its vhosts."""

    def __init__(self) -> None:
        # The protocol layer's connection and channel objects; vhosts/ does not know their type.
        self.connection_created: Event[[Any]] = Event("connection_created")
        self.connection_closed: Event[[Any]] = Event("connection_closed")
        self.channel_created: Event[[Any]] = Event("channel_created")
        self.channel_closed: Event[[Any]] = Event("channel_closed")

        self.vhost_created: Event[[VirtualHost]] = Event("vhost_created")
        self.vhost_deleted: Event[[VirtualHost]] = Event("vhost_deleted")
        self.queue_created: Event[[Queue]] = Event("queue_created")
        self.queue_deleted: Event[[Queue]] = Event("queue_deleted")
        self.exchange_created: Event[[Exchange]] = Event("exchange_created")
        self.exchange_deleted: Event[[Exchange]] = Event("exchange_deleted")
        # (source, destination, routing key, arguments)
        self.binding_created: Event[[Exchange, Destination, str, dict[str, Any]]] = Event(
            "binding_created"
        )
        self.binding_deleted: Event[[Exchange, Destination, str, dict[str, Any]]] = Event(
            "binding_deleted"
        )
        self.policy_set: Event[[Policy]] = Event("policy_set")
        self.policy_cleared: Event[[Policy]] = Event("policy_cleared")

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

    def __iter__(self) -> Any:
        """Every event, in the order above."""
        return (value for value in vars(self).values() if isinstance(value, Event))
