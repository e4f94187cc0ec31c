"""One kind of event and its listeners: the mechanism behind `vhosts.events`.

Emitting is synchronous and runs every listener in subscription order; a listener that raises
is logged and the rest still run. With no listener an emit is one loop over an empty tuple.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

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
