"""Smoke test of `amqp-lite bench` against an in-process broker (figures only checked > 0)."""

from __future__ import annotations

import re

import pytest

from amqp_lite import ThreadedBroker
from amqp_lite.bench import run_backlog, run_bench


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


def test_bench_on_quorum_queues(broker: ThreadedBroker, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_bench(broker.url, messages=200, latency_messages=20, queue_type="quorum") == 0
    out = capsys.readouterr().out
    assert "(transient, quorum queue)" in out and "0 nacked" in out and "200 in" in out
    assert broker.admin.queues("/") == []  # deleted afterwards


def test_bench_on_streams(broker: ThreadedBroker, capsys: pytest.CaptureFixture[str]) -> None:
    """A stream is read from its first offset, and its round-trip consumer acks."""
    assert run_bench(broker.url, messages=200, latency_messages=20, queue_type="stream") == 0
    out = capsys.readouterr().out
    assert "(transient, stream queue)" in out and "0 nacked" in out and "200 in" in out
    assert "acking consumer" in out
    assert run_backlog(broker.url, 300, arguments={"x-queue-type": "stream"}) == 0
    out = capsys.readouterr().out
    assert "queue arguments: x-queue-type=stream" in out and "300 in" in out
    assert broker.admin.queues("/") == []  # deleted afterwards


def test_bench_over_tls_and_timing_connections(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cryptography", reason="generated certificates need amqp-lite[tls]")
    from amqp_lite import run_in_thread

    with run_in_thread(port=None, tls=True) as broker:
        assert broker.certificates is not None
        context = broker.certificates.client_context()
        assert (
            run_bench(
                broker.url,
                messages=200,
                latency_messages=20,
                ssl_context=context,
                connections=20,
                timeout=60,
            )
            == 0
        )
    out = capsys.readouterr().out
    assert out.startswith("amqp-lite bench  amqps://127.0.0.1:")
    assert "0 nacked" in out and "200 in" in out
    assert re.search(r"connections: +20 opened in [\d.]+ s", out), out


def test_bench_over_tls_refuses_an_untrusted_broker(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cryptography", reason="generated certificates need amqp-lite[tls]")
    from amqp_lite import run_in_thread

    with run_in_thread(port=None, tls=True) as broker:
        assert run_bench(broker.url, messages=10, latency_messages=0, timeout=60) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
