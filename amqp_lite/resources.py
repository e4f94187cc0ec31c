"""The memory and disk alarms: RabbitMQ's vm_memory_high_watermark and disk_free_limit.

A `ResourceMonitor` samples the broker's memory (its resident set, RabbitMQ's `rss` strategy)
and the free space on the data directory's file system, on the broker's own clock, and raises
or clears the node's "memory" and "disk" alarms. What an alarm does (publishing connections
blocked, consumers carry on) is the connections' business; this module only decides when.

As RabbitMQ 3.10.8 decides it: the memory alarm is on while memory used is above the limit,
checked every 2.5 s (memory_monitor_interval); the disk alarm while free space is below the
limit, checked between every 0.1 s and every 10 s, the closer free space is to the limit the
more often (it assumes a disk can fill at 250 MB/s), and every 10 s while the alarm is on.
Neither has a band between raising and clearing: the sampling interval is what keeps an alarm
from flapping, as in RabbitMQ.

The readings are functions, so a test gives its own and moves the broker's clock instead of
filling gigabytes.
"""

from __future__ import annotations

import logging
import math
import os
import re
import resource
from collections.abc import Callable
from pathlib import Path

import attrs

from vhosts import Node

log = logging.getLogger("amqp_lite.resources")

MEMORY = "memory"  # the node's alarm names, as RabbitMQ's resource_limit alarms
DISK = "disk"
SOURCE = "free space"  # how this module's alarms are told apart from others on the resource

MEMORY_CHECK_INTERVAL = 2.5  # seconds, RabbitMQ's memory_monitor_interval
DISK_CHECK_MIN_INTERVAL = 0.1  # seconds, RabbitMQ's disk monitor's bounds
DISK_CHECK_MAX_INTERVAL = 10.0
DISK_FILL_RATE = 250_000_000  # bytes a second a disk is assumed to fill at, as RabbitMQ assumes

_UNITS = {
    "": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}
_INFORMATION_UNIT = re.compile(r"(\d+)\s*([a-z]*)")


def parse_information_unit(text: str) -> int:
    """RabbitMQ's sizes: `300MB` (10^6), `512MiB` or `512M` (2^20), `2GB`, `1024` (bytes).

    Case does not matter (RabbitMQ takes most spellings, `mB` and `Mb` among them).
    ValueError for anything else.
    """
    match = _INFORMATION_UNIT.fullmatch(text.strip().lower())
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(
            f"'{text}' is not a size: a number of bytes, or with a unit such as 300MB, 512MiB, 2GB"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


@attrs.frozen
class MemoryWatermark:
    """vm_memory_high_watermark: a fraction of the memory available, or a size in bytes."""

    relative: float | None = 0.4
    absolute: int | None = None

    @classmethod
    def parse(cls, value: str | float) -> MemoryWatermark:
        """`0.4` (a fraction, at most 1) or a size such as `300MB`; also RabbitMQ's config
        forms `relative:0.4` and `absolute:300MB`. ValueError for anything else."""
        text = str(value).strip()
        kind, _, rest = text.partition(":")
        if rest and kind in ("relative", "absolute"):
            if kind == "absolute":
                return cls(None, parse_information_unit(rest))
            return cls(_fraction(rest, upto=math.inf), None)
        try:
            return cls(_fraction(text, upto=1.0), None)
        except ValueError:
            return cls(None, parse_information_unit(text))

    def limit(self, total_memory: int) -> int:
        """In bytes; an absolute watermark above the memory there is means all of it."""
        if self.absolute is not None:
            return min(self.absolute, total_memory)
        assert self.relative is not None
        return int(self.relative * total_memory)

    def __str__(self) -> str:
        return str(self.absolute) if self.absolute is not None else f"{self.relative}"


@attrs.frozen
class DiskFreeLimit:
    """disk_free_limit: a size in bytes, or a multiple of the memory available."""

    absolute: int | None = 50_000_000  # RabbitMQ's default, 50MB
    mem_relative: float | None = None

    @classmethod
    def parse(cls, value: str | int) -> DiskFreeLimit:
        """A size such as `50MB` or `2GiB`, or `mem_relative:1.5` (RabbitMQ's
        `disk_free_limit.relative`, times the memory available). ValueError otherwise."""
        text = str(value).strip()
        kind, _, rest = text.partition(":")
        if rest and kind in ("mem_relative", "relative"):
            return cls(None, _fraction(rest, upto=math.inf))
        if rest and kind == "absolute":
            text = rest
        return cls(parse_information_unit(text), None)

    def limit(self, total_memory: int) -> int:
        if self.absolute is not None:
            return self.absolute
        assert self.mem_relative is not None
        return round(self.mem_relative * total_memory)

    def __str__(self) -> str:
        if self.absolute is not None:
            return str(self.absolute)
        return f"mem_relative:{self.mem_relative}"


def _fraction(text: str, *, upto: float) -> float:
    fraction = float(text)
    if not 0 <= fraction <= upto or math.isnan(fraction):
        raise ValueError(f"'{text}' is not a fraction between 0 and {upto}")
    return fraction


class ResourceMonitor:
    """Watches memory and disk for one node, on the node's clock and timers.

    `memory_used` and `disk_free` are the readings (bytes now); the defaults read this process's
    resident set and the free space where `data_dir` is. `total_memory` is what a relative
    watermark is a fraction of: the machine's memory, or the cgroup's limit when lower.
    """

    def __init__(
        self,
        node: Node,
        *,
        memory_high_watermark: MemoryWatermark | None = None,
        disk_free_limit: DiskFreeLimit | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        memory_used: Callable[[], int] | None = None,
        disk_free: Callable[[], int] | None = None,
        total_memory: int | None = None,
    ) -> None:
        self.node = node
        self.memory_high_watermark = memory_high_watermark or MemoryWatermark()
        self.disk_free_limit_setting = disk_free_limit or DiskFreeLimit()
        self.data_dir = Path(data_dir if data_dir is not None else os.getcwd())
        self._read_memory = memory_used or resident_memory
        self._read_disk = disk_free or (lambda: free_disk_space(self.data_dir))
        self.total_memory = total_memory if total_memory is not None else available_memory()
        self.memory_limit = self.memory_high_watermark.limit(self.total_memory)
        self.disk_free_limit = self.disk_free_limit_setting.limit(self.total_memory)
        self.memory_used = 0  # the last readings, for the management API and metrics
        self.disk_free = 0
        self._running = False

    def start(self) -> None:
        """Take the first readings now, then keep taking them on the node's clock."""
        if self._running:
            return
        self._running = True
        log.info(
            "memory high watermark set to %d MiB (%d bytes) of %d MiB (%d bytes) total",
            self.memory_limit >> 20,
            self.memory_limit,
            self.total_memory >> 20,
            self.total_memory,
        )
        log.info("disk free limit set to %d MB", self.disk_free_limit // 1_000_000)
        now = self.node.clock.now()
        self.check_memory(now)
        self.check_disk(now)

    def stop(self) -> None:
        """No more readings (a timer already scheduled finds the monitor stopped)."""
        self._running = False

    def check_memory(self, now: float) -> None:
        if not self._running:
            return
        try:
            self.memory_used = used = self._read_memory()
        except Exception:  # a reading that fails must not stop the broker, nor the readings
            log.exception("cannot read the memory used")
        else:
            if used > self.memory_limit:
                if MEMORY not in self.node.alarms:
                    log.warning(
                        "memory resource limit alarm set: %d bytes used, the limit is %d; "
                        "publishers are blocked until it clears",
                        used,
                        self.memory_limit,
                    )
                self.node.set_alarm(MEMORY, SOURCE)
            elif MEMORY in self.node.alarms:
                self.node.clear_alarm(MEMORY, SOURCE)
                if MEMORY not in self.node.alarms:
                    log.warning("memory resource limit alarm cleared: %d bytes used", used)
        self.node.timers.schedule(now + MEMORY_CHECK_INTERVAL, self.check_memory)

    def check_disk(self, now: float) -> None:
        if not self._running:
            return
        interval = DISK_CHECK_MAX_INTERVAL
        try:
            self.disk_free = free = self._read_disk()
        except Exception:
            log.exception("cannot read the free disk space of %s", self.data_dir)
        else:
            if free < self.disk_free_limit:
                if DISK not in self.node.alarms:
                    log.warning(
                        "free disk space alarm set: %d bytes free in %s, the limit is %d; "
                        "publishers are blocked until it clears",
                        free,
                        self.data_dir,
                        self.disk_free_limit,
                    )
                self.node.set_alarm(DISK, SOURCE)
            else:
                if DISK in self.node.alarms:
                    self.node.clear_alarm(DISK, SOURCE)
                    if DISK not in self.node.alarms:
                        log.warning("free disk space alarm cleared: %d bytes free", free)
                ideal = 2 * (free - self.disk_free_limit) / DISK_FILL_RATE
                interval = max(DISK_CHECK_MIN_INTERVAL, min(DISK_CHECK_MAX_INTERVAL, ideal))
        self.node.timers.schedule(now + interval, self.check_disk)


# -- the readings ------------------------------------------------------------------------------


def resident_memory() -> int:
    """This process's resident set now, in bytes; its peak where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def free_disk_space(directory: Path) -> int:
    """Bytes a process like ours may still write where `directory` is (df's Available): the
    nearest existing directory up the path, since the data directory may not exist yet."""
    while not directory.exists() and directory.parent != directory:
        directory = directory.parent
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return 0


def available_memory() -> int:
    """The machine's memory, or the limit of this process's cgroup (v2 or v1) when lower."""
    physical = physical_memory()
    limit = _cgroup_memory_limit()
    if limit is not None and (not physical or limit < physical):
        return limit
    return physical


def _cgroup_memory_limit() -> int | None:
    candidates = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _hierarchy, controllers, path = line.split(":", 2)
            if controllers == "":  # cgroup v2: one unified hierarchy
                candidates.append(Path("/sys/fs/cgroup", path.lstrip("/"), "memory.max"))
            elif "memory" in controllers.split(","):
                base = Path("/sys/fs/cgroup/memory")
                candidates.append(base / path.lstrip("/") / "memory.limit_in_bytes")
    except (OSError, ValueError):
        pass
    candidates += [
        Path("/sys/fs/cgroup/memory.max"),
        Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    ]
    for candidate in candidates:
        try:
            text = candidate.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            limit = int(text)
            # cgroup v1 says "no limit" with a huge number (a page-rounded 2^63)
            return limit if limit < 1 << 60 else None
        if text == "max":
            return None
    return None
