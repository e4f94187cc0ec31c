"""`amqp-lite serve` in a subprocess, for what only a real process shows: kill -9, file limits."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

STARTUP_TIMEOUT = 30.0


class BrokerProcess:
    """A broker process on a free port; `data_dir=None` keeps nothing on disk.

    Its log lines are kept in `log` (the pipe is always drained, so logging never blocks).
    """

    def __init__(self, data_dir: Path | None, *options: str) -> None:
        """`options` are more `amqp-lite serve` options."""
        store = ("--data-dir", str(data_dir)) if data_dir is not None else ("--transient",)
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "amqp_lite", "serve", "--port", "0", "--heartbeat", "0"),
                *(
                    *store,
                    "--log-level",
                    "info",
                    "--management-port",
                    "0",
                    "--prometheus-port",
                    "0",
                    *options,
                ),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._logged = threading.Condition()
        ready = threading.Event()
        self.url = ""
        threading.Thread(target=self._read_log, args=(ready,), daemon=True).start()
        if not ready.wait(STARTUP_TIMEOUT) or not self.url:
            self.process.kill()
            self.process.wait()
            raise RuntimeError("the broker exited before it was ready:\n" + "".join(self.log))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def _read_log(self, ready: threading.Event) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._logged:
                self.log.append(line)
                self._logged.notify_all()
            if not ready.is_set() and "ready on " in line:
                self.url = line.split("ready on ", 1)[1].strip()
                ready.set()
        ready.set()  # it exited

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """The first log line containing `text`, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        with self._logged:
            while True:
                for line in self.log:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"no log line with {text!r}:\n" + "".join(self.log))
                self._logged.wait(left)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)
