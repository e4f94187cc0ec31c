"""Prometheus metrics: scraped over HTTP, read by Prometheus's own text parser, and compared with
what RabbitMQ 3.10.8's rabbitmq_prometheus exposes (tests/fixtures/prometheus/)."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from amqp_lite import ThreadedBroker, run_in_thread

parser = pytest.importorskip("prometheus_client.parser", reason="needs the test extras")

FIXTURES = Path(__file__).parent / "fixtures" / "prometheus"
RABBITMQ_METRICS = (FIXTURES / "rabbitmq-3.10.8-metrics.txt").read_text()
RABBITMQ_PER_OBJECT = (FIXTURES / "rabbitmq-3.10.8-per-object.txt").read_text()
DASHBOARD = json.loads((FIXTURES / "grafana-rabbitmq-overview-queries.json").read_text())

# Per-object label sets that differ from RabbitMQ's, and why (the README lists them too):
# message counts are kept per channel, not per channel and exchange or queue, and per queue,
# not per queue, channel and exchange.
FEWER_LABELS = {
    "rabbitmq_channel_messages_published_total": {"exchange"},
    "rabbitmq_channel_messages_confirmed_total": {"exchange"},
    "rabbitmq_channel_messages_unroutable_returned_total": {"exchange"},
    "rabbitmq_channel_messages_unroutable_dropped_total": {"exchange"},
    "rabbitmq_channel_get_ack_total": {"queue"},
    "rabbitmq_channel_get_total": {"queue"},
    "rabbitmq_channel_messages_delivered_ack_total": {"queue"},
    "rabbitmq_channel_messages_delivered_total": {"queue"},
    "rabbitmq_channel_messages_redelivered_total": {"queue"},
    "rabbitmq_channel_messages_acked_total": {"queue"},
    "rabbitmq_channel_get_empty_total": {"queue"},
    "rabbitmq_queue_messages_published_total": {"channel", "exchange_vhost", "exchange"},
}


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with run_in_thread(prometheus=True) as running:
        yield running


def scrape(url: str, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["content-type"] == "text/plain; version=0.0.4"
        body = response.read()
        if response.headers["content-encoding"] == "gzip":
            body = gzip.decompress(body)
        return str(body.decode())


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample by its name, as Prometheus's parser reads the text."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(text: str, name: str, **labels: str) -> float:
    matching = [v for found, v in samples(text)[name] if labels.items() <= found.items()]
    assert len(matching) == 1, (name, labels, matching)
    return matching[0]


def declarations(text: str) -> dict[str, dict[str, str]]:
    """name -> {"TYPE": ..., "HELP": ...}, as written."""
    found: dict[str, dict[str, str]] = {}
    for kind, name, rest in re.findall(r"^# (TYPE|HELP) (\S+) (.*)$", text, re.M):
        found.setdefault(name, {})[kind] = rest
    return found


def label_names(text: str) -> dict[str, set[frozenset[str]]]:
    return {
        name: {frozenset(labels) for labels, _ in found} for name, found in samples(text).items()
    }


def traffic(broker: ThreadedBroker) -> pika.BlockingConnection:
    """What tests/fixtures/prometheus was recorded with: 5 messages left ready, 3 delivered
    unacked to a consumer with prefetch 10, one got and acked, one dropped unroutable."""
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    channel.queue_declare("ops-ready", durable=True)
    channel.queue_declare("ops-consumed")
    channel.confirm_delivery()
    for i in range(5):
        channel.basic_publish("", "ops-ready", b"hello %d" % i)
    for _ in range(3):
        channel.basic_publish("", "ops-consumed", b"x")
    channel.basic_publish("amq.direct", "nowhere", b"dropped")
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=10)
    received: list[bytes] = []
    consumer.basic_consume("ops-consumed", lambda ch, m, p, body: received.append(body))
    while len(received) < 3:
        connection.process_data_events(time_limit=0.05)
    method, _, _ = consumer.basic_get("ops-ready")
    consumer.basic_ack(method.delivery_tag)
    return connection


def test_a_scrape_reads_as_rabbitmqs_does(broker: ThreadedBroker) -> None:
    connection = traffic(broker)
    assert broker.prometheus_url is not None
    ours = scrape(broker.prometheus_url)
    # The same numbers RabbitMQ 3.10.8 exposed after the same traffic.
    for name, labels in [
        ("rabbitmq_queue_messages_ready", {}),
        ("rabbitmq_queue_messages_unacked", {}),
        ("rabbitmq_queue_messages", {}),
        ("rabbitmq_queue_consumers", {}),
        ("rabbitmq_queue_messages_published_total", {}),
        ("rabbitmq_connections", {}),
        ("rabbitmq_channels", {}),
        ("rabbitmq_consumers", {}),
        ("rabbitmq_queues", {}),
        ("rabbitmq_connections_opened_total", {}),
        ("rabbitmq_channels_opened_total", {}),
        ("rabbitmq_queues_created_total", {}),
        ("rabbitmq_channel_consumers", {}),
        ("rabbitmq_channel_messages_unacked", {}),
        ("rabbitmq_channel_messages_published_total", {}),
        ("rabbitmq_channel_messages_confirmed_total", {}),
        ("rabbitmq_channel_messages_unroutable_dropped_total", {}),
        ("rabbitmq_channel_get_ack_total", {}),
        ("rabbitmq_channel_messages_delivered_ack_total", {}),
        ("rabbitmq_channel_messages_acked_total", {}),
        ("rabbitmq_consumer_prefetch", {}),
        ("rabbitmq_connection_channels", {}),
        ("rabbitmq_global_consumers", {}),
        ("rabbitmq_global_publishers", {}),
        ("rabbitmq_global_messages_received_total", {}),
        ("rabbitmq_global_messages_received_confirm_total", {}),
        ("rabbitmq_global_messages_confirmed_total", {}),
        ("rabbitmq_global_messages_routed_total", {}),
        ("rabbitmq_global_messages_unroutable_dropped_total", {}),
        ("rabbitmq_global_messages_unroutable_returned_total", {}),
        ("rabbitmq_global_messages_delivered_total", {"queue_type": "rabbit_classic_queue"}),
        (
            "rabbitmq_global_messages_delivered_consume_manual_ack_total",
            {"queue_type": "rabbit_classic_queue"},
        ),
        (
            "rabbitmq_global_messages_delivered_get_manual_ack_total",
            {"queue_type": "rabbit_classic_queue"},
        ),
        ("rabbitmq_global_messages_acknowledged_total", {"queue_type": "rabbit_classic_queue"}),
        ("rabbitmq_global_messages_delivered_total", {"queue_type": "rabbit_quorum_queue"}),
    ]:
        assert value(ours, name, **labels) == value(RABBITMQ_METRICS, name, **labels), name
    assert value(ours, "rabbitmq_queue_messages_bytes") == 31  # 4 x "hello n" + 3 x "x"
    assert value(ours, "rabbitmq_connection_incoming_bytes_total") > 0
    build = samples(ours)["rabbitmq_build_info"][0][0]
    assert build["rabbitmq_version"] == "3.10.8"
    connection.close()


def test_families_have_rabbitmqs_names_types_and_help(broker: ThreadedBroker) -> None:
    connection = traffic(broker)
    assert broker.prometheus_url is not None
    theirs = declarations(RABBITMQ_PER_OBJECT) | declarations(RABBITMQ_METRICS)
    for url in (broker.prometheus_url, broker.prometheus_url + "/per-object"):
        ours = declarations(scrape(url))
        assert set(ours) <= set(theirs), set(ours) - set(theirs)  # no name of our own
        for name, declared in ours.items():
            assert declared == theirs[name], name
        # The families a node with traffic shows, at least.
        assert len(ours) >= 70
    connection.close()


def test_per_object_samples_carry_rabbitmqs_labels(broker: ThreadedBroker) -> None:
    connection = traffic(broker)
    assert broker.prometheus_url is not None
    text = scrape(broker.prometheus_url + "/per-object")
    ours, theirs = label_names(text), label_names(RABBITMQ_PER_OBJECT)
    for name, label_sets in ours.items():
        expected = {labels - FEWER_LABELS.get(name, set()) for labels in theirs[name]}
        assert label_sets == expected, name
    assert value(text, "rabbitmq_queue_messages_ready", vhost="/", queue="ops-ready") == 4
    assert value(text, "rabbitmq_queue_messages_unacked", vhost="/", queue="ops-consumed") == 3
    channels = samples(text)["rabbitmq_channel_consumers"]
    assert sorted(v for _, v in channels) == [0, 1]
    assert all(re.fullmatch(r"\S+ -> \S+ \(\d+\)", labels["channel"]) for labels, _ in channels)
    connection.close()


def test_grafana_rabbitmq_overview_finds_every_series(broker: ThreadedBroker) -> None:
    connection = traffic(broker)
    assert broker.prometheus_url is not None
    ours = samples(scrape(broker.prometheus_url))
    named = {
        name
        for expr in DASHBOARD["exprs"]
        for name in re.findall(r"\b(rabbitmq_[a-z_]+)\b(?!\s*[=~!])", expr)
    }
    named -= {"rabbitmq_cluster", "rabbitmq_node"}  # label names in group_left(...)
    assert len(named) >= 30
    missing = {name for name in named if not ours.get(name)}
    assert not missing
    # Every panel joins on these labels of rabbitmq_identity_info.
    [(identity, _)] = ours["rabbitmq_identity_info"]
    assert identity["rabbitmq_node"] == identity["rabbitmq_cluster"] != ""
    connection.close()


def test_counters_do_not_fall_when_what_they_count_is_gone(broker: ThreadedBroker) -> None:
    connection = traffic(broker)
    assert broker.prometheus_url is not None
    before = scrape(broker.prometheus_url)
    channel = connection.channel()
    channel.queue_delete("ops-ready")
    channel.queue_delete("ops-consumed")
    connection.close()
    after = scrape(broker.prometheus_url)
    for name, labels in [
        ("rabbitmq_global_messages_received_total", {}),
        ("rabbitmq_global_messages_confirmed_total", {}),
        ("rabbitmq_global_messages_delivered_total", {"queue_type": "rabbit_classic_queue"}),
        ("rabbitmq_global_messages_acknowledged_total", {"queue_type": "rabbit_classic_queue"}),
    ]:
        assert value(after, name, **labels) == value(before, name, **labels) > 0, name
    assert value(after, "rabbitmq_queues_deleted_total") == 2
    assert value(after, "rabbitmq_connections_closed_total") == 1
    assert value(after, "rabbitmq_channels_closed_total") == 3
    assert value(after, "rabbitmq_connections") == 0
    # Summed families with nothing to sum say what they are, with no sample, as RabbitMQ's.
    assert "rabbitmq_queue_messages_ready" not in samples(after)
    assert "# TYPE rabbitmq_queue_messages_ready gauge" in after


def _request(url: str, method: str = "GET", **headers: str) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_http_answers_as_rabbitmqs_endpoint_does(broker: ThreadedBroker) -> None:
    assert broker.prometheus_url is not None
    base = broker.prometheus_url.removesuffix("metrics")
    status, headers, body = _request(base + "metrics", **{"Accept-Encoding": "gzip"})
    assert (status, headers["content-encoding"]) == (200, "gzip")
    assert gzip.decompress(body).startswith(b"# TYPE process_start_time_seconds gauge\n")
    status, headers, body = _request(base + "metrics")
    assert (status, headers["content-encoding"]) == (200, "identity")
    for path in ("", "nope", "metrics/detailed/x"):
        status, headers, body = _request(base + path)
        assert (status, headers["content-type"]) == (404, "application/json")
        assert json.loads(body) == {"error": "Object Not Found", "reason": "Not Found"}
    status, headers, body = _request(base + "metrics", method="POST")
    assert (status, headers["allow"], body) == (405, "HEAD, GET, OPTIONS", b"")
    status, headers, body = _request(base + "metrics", method="HEAD")
    assert (status, body) == (200, b"")


def test_serve_exposes_metrics_where_it_is_told() -> None:
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "amqp_lite", "serve", "--transient", "--port", "0"),
            *("--no-management", "--prometheus-port", "0", "--log-level", "info"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        url = None
        for line in process.stderr:
            found = re.search(r"Prometheus metrics on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None and re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", url)
        assert value(scrape(url), "rabbitmq_queues") == 0
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_metrics_over_https() -> None:
    pytest.importorskip("cryptography", reason="makes the test certificates")
    with run_in_thread(tls=True, prometheus=True, prometheus_tls=True) as broker:
        assert broker.prometheus_url is not None and broker.certificates is not None
        assert broker.prometheus_url.startswith("https://127.0.0.1:")
        context = broker.certificates.client_context()
        with urllib.request.urlopen(broker.prometheus_url, context=context, timeout=10) as answer:
            assert b"\nrabbitmq_queues 0\n" in answer.read()


# -- a real Prometheus server, running the dashboard's queries -----------------------------------

PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus (make prometheus)")
def test_prometheus_answers_every_rabbitmq_overview_query(
    broker: ThreadedBroker, tmp_path: Path
) -> None:
    assert broker.prometheus_url is not None and PROMETHEUS is not None
    target = broker.prometheus_url.removeprefix("http://").removesuffix("/metrics")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 250ms\n  scrape_timeout: 250ms\n"
        "scrape_configs:\n  - job_name: amqp-lite\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        connection = traffic(broker)
        api = f"http://127.0.0.1:{port}/api/v1/query?query="

        def query(expr: str) -> list[Any]:
            try:
                status, _, body = _request(api + urllib.parse.quote(expr))
            except urllib.error.URLError:  # not listening yet
                return []
            answer = json.loads(body) if status == 200 else {}
            return list(answer.get("data", {}).get("result", []))

        # rate(...[60s]) needs two samples: wait for three scrapes.
        deadline = time.monotonic() + 60
        while not query("count_over_time(rabbitmq_queues[1m]) >= 3"):
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)  # polling the server is the only way to learn it has scraped
        cluster = broker.node.cluster_name if broker.node is not None else ""
        unanswered = []
        for expr in DASHBOARD["exprs"]:
            promql = expr.replace("$rabbitmq_cluster", cluster).replace("$namespace", "")
            if not query(promql):
                unanswered.append(expr)
        assert unanswered == []
        connection.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_says_which_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                *(sys.executable, "-m", "amqp_lite", "serve", "--transient", "--port", "0"),
                *("--no-management", "--prometheus-port", str(port)),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    [refusal] = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert refusal.endswith(
        f"cannot serve Prometheus metrics on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in done.stderr
