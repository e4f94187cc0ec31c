"""How long an in-process broker takes to start, and to stop.

    python tests/bench/startup.py [--runs 50]

Start-up is timed from entering `run_in_thread()` (or `async with Broker()`) to a client's TCP
connect succeeding on `broker.url`'s port; stop from leaving the block to its return. Imports
are paid once per process and reported apart, first, in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

Timings = tuple[list[float], list[float]]  # start-up and stop times, in seconds

IMPORT = (
    "import time; t = time.perf_counter(); import amqp_lite.broker; print(time.perf_counter() - t)"
)


def import_seconds() -> float:
    """`import amqp_lite.broker` (trio, the codec, the domain) in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", IMPORT], capture_output=True, text=True)
    return float(result.stdout)


def threaded(runs: int) -> Timings:
    from amqp_lite import run_in_thread

    starts, stops = [], []
    for _ in range(runs):
        started = time.perf_counter()
        with run_in_thread() as broker:
            socket.create_connection(("127.0.0.1", broker.port)).close()
            starts.append(time.perf_counter() - started)
            stopping = time.perf_counter()
        stops.append(time.perf_counter() - stopping)
    return starts, stops


def in_trio(runs: int) -> Timings:
    import trio

    from amqp_lite import Broker

    starts: list[float] = []
    stops: list[float] = []

    async def main() -> None:
        for _ in range(runs):
            started = time.perf_counter()
            async with Broker() as broker:
                stream = await trio.open_tcp_stream("127.0.0.1", broker.port)
                starts.append(time.perf_counter() - started)
                await stream.aclose()
                stopping = time.perf_counter()
            stops.append(time.perf_counter() - stopping)

    trio.run(main)
    return starts, stops


def report(label: str, measure: Callable[[int], Timings], runs: int) -> None:
    starts, stops = measure(runs)
    print(
        f"{label:<22} start median {statistics.median(starts) * 1000:6.2f} ms "
        f"(first {starts[0] * 1000:.2f} ms, max {max(starts) * 1000:.2f} ms); "
        f"stop median {statistics.median(stops) * 1000:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    runs = parser.parse_args().runs
    print(f"import amqp_lite.broker  {import_seconds() * 1000:6.1f} ms (once per process)")
    report("run_in_thread()", threaded, runs)
    report("async with Broker()", in_trio, runs)


if __name__ == "__main__":
    main()
