"""The one clock the broker reads: wall time, or time a test moves by hand.

Everything time-based (message and queue TTL, delayed messages, the `time` in x-death) reads
`Clock.now()`. A test can freeze the clock or jump it forward, and the listeners of `advanced`
(the timer task of each server that reads this clock, the rate sampler) look again.
"""

from __future__ import annotations

import time

from vhosts.event import Event


class Clock:
    """Seconds since the epoch, as a float.

    `Clock()` follows wall time; `advance(seconds)` adds an offset, so a one-hour TTL can
    expire at once while real time keeps running. `Clock(frozen_at=t)` stands still at `t`
    and moves only when advanced: deterministic tests.
    """

    def __init__(self, *, frozen_at: float | None = None) -> None:
        self._frozen_at = frozen_at
        self._offset = 0.0
        self.advanced: Event[[]] = Event("clock_advanced")

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def now(self) -> float:
        if self._frozen_at is not None:
            return self._frozen_at
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        if self._frozen_at is not None:
            self._frozen_at += seconds
        else:
            self._offset += seconds
        self.advanced.emit()
