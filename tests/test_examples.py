"""Every program in examples/ runs to completion against our broker and prints what it should.

Each example runs as a subprocess, exactly as a reader would run it, with AMQP_URL pointing at
a vhost of its own on one broker for the module, so a leftover of one cannot disturb another.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from amqp_lite import ThreadedBroker, run_in_thread

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Example file -> a line its output must contain when the pattern worked.
EXPECTED = {
    "01_hello_world.py": "received 'Hello, world!' from queue 'hello'",
    "02_work_queues.py": "all 5 tasks done, by two workers",
    "03_publish_subscribe.py": "every subscriber got every headline; nobody got 'too early'",
    "04_routing.py": "pager got ['critical: database unreachable']",
    "05_topics.py": "alerts        got ['eu.payments.failed', 'us.payments.card.failed', "
    "'eu.payments.refunded']",
    "06_headers.py": "fast-lane    got ['Rechnung April', 'outage report']",
    "07_rpc.py": "every request got its answer",
    "08_publisher_confirms.py": "returned: 'lost?' came back with 312 NO_ROUTE",
    "09_retry_with_delay.py": "attempt 3 at 'charge card 4242' succeeded",
    "10_poison_messages.py": "set aside after 3 crashes: 'resize corrupt.jpg' in 'tasks.poison' "
    "(reason delivery_limit, from 'tasks')",
    "11_event_log_stream.py": "the new reader replayed 5 events from the start; the auditor "
    "read 2 since",
}


def test_every_example_is_listed() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with run_in_thread() as running:
        yield running


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example(broker: ThreadedBroker, name: str) -> None:
    vhost = f"examples-{name[:2]}"
    broker.call(broker.node.add_vhost, vhost)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env={**os.environ, "AMQP_URL": broker.vhost_url(vhost)},
        capture_output=True,
        text=True,
        timeout=20,
    )
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    assert EXPECTED[name] in result.stdout, output
