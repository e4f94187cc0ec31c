"""Smoke test of `amqp-lite bench` against an in-process broker (figures only checked > 0)."""

from __future__ import annotations

import re

import pytest

from amqp_lite import ThreadedBroker
from amqp_lite.bench import run_bench


def test_bench_reports_positive_rates(
    broker: ThreadedBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_bench(broker.url, messages=200, latency_messages=50, timeout=60) == 0
    out = capsys.readouterr().out
    rates = re.findall(r"(?:confirmed publish|consume):\s+([\d,]+) msg/s", out)
    assert len(rates) == 2 and all(float(r.replace(",", "")) > 0 for r in rates), out
    assert "0 nacked" in out and "200 in" in out
    median, p99 = map(int, re.search(r"median (\d+) us, p99 (\d+) us", out).groups())
    assert 0 < median <= p99
    assert broker.url.split("@")[1] in out and "guest:guest" not in out  # no password shown
