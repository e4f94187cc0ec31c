"""Things the domain must do at a given time (expire a message, delete an idle queue).

The domain schedules callbacks at clock times; the server's timer task sleeps until
`next_deadline()` and then calls `run_due(now)`. Callbacks re-check their own state when they
fire, so a stale timer (the message was consumed meanwhile) costs one look and nothing more.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[float], None]]] = []
        self._order = itertools.count()
        self.on_earlier_deadline: Callable[[], None] | None = None  # wakes the timer task

    def schedule(self, when: float, callback: Callable[[float], None]) -> None:
        """Call `callback(now)` once the clock reaches `when`."""
        earlier = not self._heap or when < self._heap[0][0]
        heapq.heappush(self._heap, (when, next(self._order), callback))
        if earlier and self.on_earlier_deadline is not None:
            self.on_earlier_deadline()

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run_due(self, now: float) -> int:
        """Fire every callback due by `now` (including ones scheduled meanwhile)."""
        fired = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            _when, _order, callback = heapq.heappop(heap)
            callback(now)
            fired += 1
        return fired

    def __len__(self) -> int:
        return len(self._heap)
