"""`amqp-lite explain`: a learner's question about a topology file, answered without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from amqp_lite.cli import main
from amqp_lite.explain import parse_header

FIXTURES = Path(__file__).parent / "fixtures"
TOPOLOGY = str(FIXTURES / "explain-topology.json")


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["explain", "--definitions", TOPOLOGY, "--vhost", "shop", *args])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_topic_captures_and_an_exchange_to_exchange_hop(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = explain(capsys, "--exchange", "orders", "--routing-key", "order.created.eu")
    assert status == 0
    assert out == (
        "message: routing key 'order.created.eu'; no headers\n"
        "exchange 'orders' (topic): published to\n"
        "  ✓ queue 'orders.created': topic 'order.created.*' matched 'order.created.eu': "
        "'*' took 'eu'\n"
        "  ✓ exchange 'eu': topic 'order.*.eu.#' matched 'order.created.eu': "
        "'*' took 'created', '#' took no words\n"
        "  → exchange 'eu' (direct): bound from 'orders' with key 'order.*.eu.#'\n"
        "    ✗ queue 'orders.eu.billing': routing key 'order.created.eu' != "
        "binding key 'order.paid.eu'\n"
        "    no binding matched, and there is no alternate exchange\n"
        "final: queue 'orders.created'\n"
    )


def test_alternate_exchange_fallback(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = explain(capsys, "--exchange", "orders", "--routing-key", "refund.issued")
    assert status == 0
    assert out == (
        "message: routing key 'refund.issued'; no headers\n"
        "exchange 'orders' (topic): published to\n"
        "  ✗ queue 'orders.created': topic 'order.created.*' did not match 'refund.issued': "
        "word 1 is 'refund', not 'order'\n"
        "  ✗ exchange 'eu': topic 'order.*.eu.#' did not match 'refund.issued': "
        "word 1 is 'refund', not 'order'\n"
        "  no binding matched: falling back to alternate exchange 'unrouted'\n"
        "  → exchange 'unrouted' (fanout): alternate exchange of 'orders'\n"
        "    ✓ queue 'lost-and-found': fanout ignores the routing key: "
        "every bound destination gets a copy\n"
        "final: queue 'lost-and-found'\n"
    )


def test_an_e2e_hop_that_routes_nowhere_does_not_use_the_first_exchange_alternate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 'orders' matched a binding (to 'eu'), so its alternate exchange is not used, even though
    # 'eu' itself routes the message nowhere: RabbitMQ's rule, per exchange.
    status, out = explain(capsys, "--exchange", "orders", "--routing-key", "order.paid.eu.cards")
    assert status == 1
    assert "falling back" not in out
    assert out.endswith(
        "unroutable: the message is dropped (returned to the publisher if mandatory)\n"
    )
    assert "'*' took 'paid', '#' took 'cards'" in out


def test_headers_reasons_with_typed_values(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = explain(
        capsys, "--exchange", "alerts", "--header", "severity=high", "--header", "team=dev"
    )
    assert status == 1
    assert out == (
        "message: routing key ''; headers {'severity': 'high', 'team': 'dev'}\n"
        "exchange 'alerts' (headers): published to\n"
        "  ✗ queue 'pager': x-match all: 'team' is 'dev', binding wants 'ops'\n"
        "  no binding matched, and there is no alternate exchange\n"
        "unroutable: the message is dropped (returned to the publisher if mandatory)\n"
    )
    status, out = explain(
        capsys, "--exchange", "alerts", "--header", "severity=high", "--header", "team=ops"
    )
    assert status == 0
    assert out.endswith("final: queue 'pager'\n")


def test_the_exported_rabbitmq_file_explains_too(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "explain",
            "--definitions",
            str(FIXTURES / "rabbitmq-definitions.json"),
            "--vhost",
            "defs-test",
            "--exchange",
            "events",
            "--header",
            "region=eu",
            "--header",
            "version:=2",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "✓ queue 'events.eu': x-match all: every condition held" in out
    assert out.endswith("final: queue 'events.eu'\n")


def test_bad_input_is_refused_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = explain(capsys, "--exchange", "nope")
    assert (status, out) == (2, "amqp-lite explain: no exchange 'nope' in vhost 'shop'\n")
    status, out = explain(capsys, "--exchange", "orders", "--header", "n:=[1,")
    assert status == 2 and "is not JSON" in out
    status = main(["explain", "--definitions", "/nonexistent.json", "--exchange", "x"])
    assert status == 2


def test_header_syntax() -> None:
    assert parse_header("a=b") == ("a", "b")
    assert parse_header("a=b=c") == ("a", "b=c")
    assert parse_header("n:=7") == ("n", 7)
    assert parse_header('CC:=["x", "y"]') == ("CC", ["x", "y"])
    assert parse_header("url=http://x:=y") == ("url", "http://x:=y")
