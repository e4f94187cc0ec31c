"""Things the domain must do at a given time (expire a message, delete an idle queue).

The domain schedules callbacks at clock times; the server's timer task sleeps until
`next_deadline()` and then calls `run_due(now)`. Callbacks re-check their own state when they
fire, so a stale timer (the message was consumed meanwhile) costs one look and nothing more.

A timer that will never be wanted (its queue was deleted) is cancelled: it lets go of its
callback, and with it of whatever the callback holds, at once, and leaves the heap when it comes
to the top or when cancelled timers make up half of the heap, whichever is first. So the heap
holds at most about twice the timers that are still to fire, however many queues come and go.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

# Below this many cancelled timers the heap is not worth rebuilding.
_COMPACT_AT = 64


class Timer:
    """One scheduled call, as `Timers.schedule` returns it."""

    __slots__ = ("callback", "when")

    def __init__(self, when: float, callback: Callable[[float], None]) -> None:
        self.when = when
        self.callback: Callable[[float], None] | None = callback  # None: fired or cancelled

    @property
    def pending(self) -> bool:
        return self.callback is not None


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._cancelled = 0  # cancelled timers still in the heap
        self.on_earlier_deadline: Callable[[], None] | None = None  # wakes the timer task

    def schedule(self, when: float, callback: Callable[[float], None]) -> Timer:
        """Call `callback(now)` once the clock reaches `when`."""
        earlier = not self._heap or when < self._heap[0][0]
        timer = Timer(when, callback)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        if earlier and self.on_earlier_deadline is not None:
            self.on_earlier_deadline()
        return timer

    def cancel(self, timer: Timer) -> None:
        """It will not fire; what its callback holds is let go of now."""
        if timer.callback is None:
            return  # fired already, or cancelled
        timer.callback = None
        self._cancelled += 1
        if self._cancelled >= _COMPACT_AT and 2 * self._cancelled >= len(self._heap):
            self._heap = [entry for entry in self._heap if entry[2].callback is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].callback is None:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def run_due(self, now: float) -> int:
        """Fire every callback due by `now` (including ones scheduled meanwhile)."""
        fired = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            callback = timer.callback
            if callback is None:
                self._cancelled -= 1
                continue
            timer.callback = None
            callback(now)
            fired += 1
        return fired

    @property
    def heap_size(self) -> int:
        """Timers in the heap, cancelled ones included: what they cost in memory."""
        return len(self._heap)

    def __len__(self) -> int:
        """Timers still to fire."""
        return len(self._heap) - self._cancelled
