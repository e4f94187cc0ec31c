"""`amqp-lite ctl` against a live broker's management API: rabbitmqctl 3.10.8's output (banner,
header row, tab-separated rows, -q, --no-table-headers, --formatter json) and exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pika
import pytest

from amqp_lite import ThreadedBroker, run_in_thread
from amqp_lite.ctl import main


@attrs.frozen
class Run:
    status: int
    out: str
    err: str


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with run_in_thread(management=True, vhosts=("/", "other")) as running:
        yield running


@pytest.fixture
def ctl(broker: ThreadedBroker, capsys: pytest.CaptureFixture[str]):
    def run(*args: str) -> Run:
        assert broker.management_url is not None
        status = main(["--url", broker.management_url, *args])
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return run


def lines(text: str) -> list[str]:
    return text.splitlines()


def _publish(broker: ThreadedBroker, queue: str, count: int, **declare: bool) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    channel.queue_declare(queue, **declare)
    for _ in range(count):
        channel.basic_publish("", queue, b"x")
    connection.close()


def test_list_queues_prints_as_rabbitmqctl(broker: ThreadedBroker, ctl) -> None:
    _publish(broker, "alpha", 2, durable=True)
    _publish(broker, "beta", 0)
    assert lines(ctl("list_queues").out) == [
        "Timeout: 60.0 seconds ...",
        "Listing queues for vhost / ...",
        "name\tmessages",
        "alpha\t2",
        "beta\t0",
    ]
    assert lines(ctl("-q", "list_queues", "name", "durable", "arguments").out) == [
        "name\tdurable\targuments",
        "alpha\ttrue\t[]",
        "beta\tfalse\t[]",
    ]
    # Options after the verb too, columns separated by commas too.
    assert lines(ctl("list_queues", "--no-table-headers", "-q", "name,messages_ready").out) == [
        "alpha\t2",
        "beta\t0",
    ]
    assert ctl("list_queues", "--formatter", "json", "name", "messages").out == (
        '[\n{"name":"alpha","messages":2}\n,{"name":"beta","messages":0}\n]\n'
    )
    # No rows, no header row; a vhost that is not there lists nothing, as rabbitmqctl.
    assert lines(ctl("list_queues", "-p", "other").out) == [
        "Timeout: 60.0 seconds ...",
        "Listing queues for vhost other ...",
    ]
    assert ctl("-q", "list_queues", "-p", "missing").out == ""
    assert ctl("-q", "list_queues", "-p", "missing", "--formatter", "json").out == "[\n]\n"


def test_an_unknown_column_is_a_usage_error(ctl) -> None:
    run = ctl("list_queues", "name", "bogus")
    assert (run.status, run.out, run.err) == (
        64,
        "",
        "Error: Info key(s) bogus are not supported\n",
    )


def test_exchanges_and_bindings(broker: ThreadedBroker, ctl) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    channel.exchange_declare("orders", "topic", arguments={"alternate-exchange": "lost"})
    channel.queue_declare("q")
    channel.queue_bind("q", "orders", "order.#")
    connection.close()
    run = ctl("list_exchanges", "name", "type", "internal", "arguments")
    assert lines(run.out) == [
        "Listing exchanges for vhost / ...",
        "name\ttype\tinternal\targuments",
        "\tdirect\tfalse\t[]",
        "amq.direct\tdirect\tfalse\t[]",
        "amq.fanout\tfanout\tfalse\t[]",
        "amq.headers\theaders\tfalse\t[]",
        "amq.match\theaders\tfalse\t[]",
        "amq.rabbitmq.trace\ttopic\ttrue\t[]",
        "amq.topic\ttopic\tfalse\t[]",
        'orders\ttopic\tfalse\t[{"alternate-exchange","lost"}]',
    ]
    assert lines(ctl("list_bindings").out) == [
        "Listing bindings for vhost /...",
        "source_name\tsource_kind\tdestination_name\tdestination_kind\trouting_key\targuments",
        "\texchange\tq\tqueue\tq\t[]",
        "orders\texchange\tq\tqueue\torder.#\t[]",
    ]


def test_connections_channels_and_consumers(broker: ThreadedBroker, ctl) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    connection.channel()
    consuming = connection.channel()
    consuming.basic_qos(prefetch_count=7)
    consuming.queue_declare("work")
    consuming.basic_consume("work", lambda *a: None, consumer_tag="tag-1")
    consuming.basic_consume(
        "work", lambda *a: None, auto_ack=True, consumer_tag="tag-2", arguments={"x-priority": 3}
    )
    local_port = connection._impl.params.port  # the broker's port; the peer port is ours
    assert local_port == broker.port
    [row] = lines(ctl("-q", "list_connections", "--no-table-headers").out)
    user, peer_host, peer_port, state = row.split("\t")
    assert (user, peer_host, state) == ("guest", "127.0.0.1", "running")
    name = f"127.0.0.1:{peer_port} -> 127.0.0.1:{broker.port}"
    assert lines(ctl("list_channels").out) == [
        "Listing channels ...",
        "pid\tuser\tconsumer_count\tmessages_unacknowledged",
        f"{name} (1)\tguest\t0\t0",
        f"{name} (2)\tguest\t2\t0",
    ]
    assert lines(ctl("list_consumers").out) == [
        "Listing consumers in vhost / ...",
        "queue_name\tchannel_pid\tconsumer_tag\tack_required\tprefetch_count\tactive\targuments",
        f"work\t{name} (2)\ttag-1\ttrue\t7\ttrue\t[]",
        f'work\t{name} (2)\ttag-2\tfalse\t7\ttrue\t[{{"x-priority",3}}]',
    ]
    consumers = json.loads(ctl("list_consumers", "--formatter", "json").out)
    assert consumers[1]["arguments"] == [["x-priority", "signedint", 3]]
    assert ctl("-q", "list_connections", "protocol").out == "protocol\n{0,9,1}\n"

    run = ctl("close_connection", name, "go away")
    assert (run.status, run.out) == (0, f"Closing connection {name}, reason: go away...\n")
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        connection.process_data_events(time_limit=2)
    assert (closed.value.reply_code, closed.value.reply_text) == (
        320,
        "CONNECTION_FORCED - go away",
    )
    run = ctl("close_connection", name, "again")
    assert (run.status, run.err) == (69, f"Error: no connection named '{name}'\n")


def test_users_and_permissions(broker: ThreadedBroker, ctl) -> None:
    run = ctl("add_user", "ann", "secret")
    assert (run.status, lines(run.out)) == (
        0,
        [
            'Adding user "ann" ...',
            "Done. Don't forget to grant the user permissions to some virtual hosts! "
            "See 'amqp-lite ctl set_permissions --help' to learn more.",
        ],
    )
    assert (ctl("add_user", "ann", "x").status, ctl("add_user", "ann", "x").err) == (
        70,
        'Error: User "ann" already exists\n',
    )
    run = ctl("set_user_tags", "ann", "administrator", "monitoring")
    assert run.out == 'Setting tags for user "ann" to [administrator, monitoring] ...\n'
    run = ctl("set_permissions", "-p", "other", "ann", "^ann-.*", ".*", ".*")
    assert (run.status, run.out) == (
        0,
        'Setting permissions for user "ann" in vhost "other" ...\n',
    )
    permissions = {(p.user, p.vhost, p.configure) for p in broker.admin.permissions()}
    assert ("ann", "other", "^ann-.*") in permissions
    assert ctl("change_password", "ann", "better").status == 0
    url = broker.vhost_url("other").replace("guest:guest", "ann:better")
    pika.BlockingConnection(pika.URLParameters(url)).close()
    assert lines(ctl("-q", "list_users").out) == [
        "user\ttags",
        "ann\t[administrator, monitoring]",
        "guest\t[administrator]",
    ]
    for args, status, err in [
        (("change_password", "nobody", "x"), 67, 'Error: User "nobody" does not exist\n'),
        (("set_user_tags", "nobody", "x"), 67, 'Error: User "nobody" does not exist\n'),
        (
            ("set_permissions", "-p", "nov", "ann", ".*", ".*", ".*"),
            69,
            "Error: Virtual host nov does not exist\n",
        ),
        (
            ("set_permissions", "nobody", ".*", ".*", ".*"),
            67,
            "Error: User nobody does not exist\n",
        ),
    ]:
        run = ctl(*args)
        assert (run.status, run.err) == (status, err), args
    assert ctl("-q", "delete_user", "ann").out == ""
    run = ctl("delete_user", "ann")
    assert (run.status, run.err) == (67, 'Error: User "ann" does not exist\n')


def test_vhosts(broker: ThreadedBroker, ctl) -> None:
    assert ctl("add_vhost", "shop").out == 'Adding vhost "shop" ...\n'
    assert ctl("add_vhost", "shop").status == 0  # as rabbitmqctl: already there is fine
    assert "shop" in [v.name for v in broker.admin.vhosts()]
    assert ctl("-q", "list_vhosts", "name", "tracing").out == (
        "name\ttracing\n/\tfalse\nother\tfalse\nshop\tfalse\n"
    )
    assert ctl("delete_vhost", "shop").out == 'Deleting vhost "shop" ...\n'
    run = ctl("delete_vhost", "shop")
    assert (run.status, run.err) == (65, "Error: Virtual host 'shop' does not exist\n")


def test_policies(broker: ThreadedBroker, ctl) -> None:
    run = ctl(
        "set_policy",
        *("-p", "other", "ttl", r"^t\.", '{"message-ttl":1000}'),
        *("--apply-to", "queues", "--priority", "2"),
    )
    assert (run.status, run.out) == (
        0,
        'Setting policy "ttl" for pattern "^t\\." to "{"message-ttl":1000}" with priority "2" '
        'for vhost "other" ...\n',
    )
    [policy] = broker.admin.policies("other")
    assert (policy.name, policy.apply_to, policy.priority) == ("ttl", "queues", 2)
    assert ctl("-q", "list_policies", "-p", "other").out == (
        "vhost\tname\tpattern\tapply-to\tdefinition\tpriority\n"
        'other\tttl\t^t\\.\tqueues\t{"message-ttl":1000}\t2\n'
    )
    run = ctl("set_policy", "bad", ".*", '{"message-ttl":"x"}')
    assert (run.status, run.err) == (
        69,
        'Error: Validation failed: <<"x">> is not a valid message TTL\n',
    )
    run = ctl("set_policy", "bad", ".*", "notjson")
    assert run.status == 69 and run.err.startswith("Error: JSON decoding error.")
    assert ctl("clear_policy", "-p", "other", "ttl").out == (
        'Clearing policy "ttl" on vhost "other" ...\n'
    )
    run = ctl("clear_policy", "-p", "other", "ttl")
    assert (run.status, run.err) == (69, "Error: Parameter does not exist\n")


def test_purge_and_delete_queues(broker: ThreadedBroker, ctl) -> None:
    _publish(broker, "full", 4)
    _publish(broker, "doomed", 3)
    run = ctl("purge_queue", "full")
    assert (run.status, run.out) == (0, "Purging queue 'full' in vhost '/' ...\n")
    assert broker.admin.queue("/", "full").messages == 0
    run = ctl("delete_queue", "--if-empty", "doomed")
    assert (run.status, run.out, run.err) == (
        64,
        "Deleting queue 'doomed' on vhost '/' if queue is empty ...\n",
        "Error: Queue is not empty\n",
    )
    run = ctl("delete_queue", "-u", "doomed")
    assert lines(run.out) == [
        "Deleting queue 'doomed' on vhost '/' if queue is unused ...",
        "Queue was successfully deleted with 3 ready messages",
    ]
    for args, status, err in [
        (("delete_queue", "doomed"), 64, "Error: Queue not found\n"),
        (("purge_queue", "doomed"), 69, "Error: not_found\n"),
    ]:
        run = ctl(*args)
        assert (run.status, run.err) == (status, err)


def test_definitions_round_trip(broker: ThreadedBroker, ctl, tmp_path: Path) -> None:
    _publish(broker, "kept", 0, durable=True)
    path = tmp_path / "defs.json"
    run = ctl("export_definitions", str(path))
    assert run.out == f'Exporting definitions in JSON to a file at "{path}" ...\n'
    definitions = json.loads(path.read_text())
    assert [q["name"] for q in definitions["queues"]] == ["kept"]
    assert json.loads(ctl("export_definitions", "-").out) == definitions
    broker.admin.delete_queue("/", "kept")
    definitions["vhosts"].append({"name": "imported"})
    path.write_text(json.dumps(definitions))
    run = ctl("import_definitions", str(path))
    assert (run.status, lines(run.out)[0]) == (
        0,
        f'Importing definitions in JSON from a file at "{path}" ...',
    )
    assert [q.name for q in broker.admin.queues("/")] == ["kept"]
    assert "imported" in [v.name for v in broker.admin.vhosts()]
    run = ctl("import_definitions", str(tmp_path / "missing.json"))
    assert (run.status, run.err) == (
        65,
        f"Error: Bad argument: File {tmp_path / 'missing.json'} does not exist\n",
    )
    (tmp_path / "bad.json").write_text('{"bad')
    run = ctl("import_definitions", str(tmp_path / "bad.json"))
    assert run.status == 65 and run.err.startswith("Error: Failed to deserialise input")


def test_trace_on_and_off(broker: ThreadedBroker, ctl) -> None:
    run = ctl("trace_on", "-p", "other")
    assert lines(run.out) == [
        'Starting tracing for vhost "other" ...',
        "Trace enabled for vhost other",
    ]
    assert broker.admin.tracing("other") is True
    assert broker.admin.tracing("/") is False
    assert ctl("-q", "trace_off", "-p", "other").out == "Trace disabled for vhost other\n"
    assert broker.admin.tracing("other") is False
    outcome = json.loads(ctl("trace_on", "--formatter", "json").out)
    assert outcome == {
        "node": broker.node.cluster_name,
        "result": "ok",
        "value": "Trace enabled for vhost /",
    }
    run = ctl("trace_on", "-p", "missing")
    assert (run.status, run.err) == (65, "Error: Virtual host 'missing' does not exist\n")
    assert "missing" not in [v.name for v in broker.admin.vhosts()]


def test_status(broker: ThreadedBroker, ctl) -> None:
    out = lines(ctl("status").out)
    assert out[0] == f"Status of node {broker.node.cluster_name} ..."
    assert "RabbitMQ version: 3.10.8" in out
    assert "Virtual host count: 2" in out
    assert f"Interface: 127.0.0.1, port: {broker.port}, protocol: amqp, purpose: AMQP 0-9-1" in out
    report = json.loads(ctl("status", "--formatter", "json").out)
    assert report["totals"] == {"virtual_host_count": 2, "connection_count": 0, "queue_count": 0}
    assert report["alarms"] == []


def test_errors_are_one_line_and_exit_non_zero(broker: ThreadedBroker, capsys) -> None:
    assert broker.management_url is not None
    port = broker.management_url.rstrip("/").rsplit(":", 1)[1]
    assert main(["--port", port, "--password", "wrong", "list_vhosts"]) == 77
    assert capsys.readouterr().err == (
        "Error: the management API refused user 'guest': Login failed\n"
    )
    assert main(["--port", str(broker.port), "list_vhosts"]) == 69  # AMQP, not HTTP
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1
    assert main(["--port", port, "frobnicate"]) == 64
    assert capsys.readouterr().err.startswith("Error: unknown verb 'frobnicate'")
    assert main(["--port", port, "add_user", "onlyname"]) == 64
    assert capsys.readouterr().err.count("\n") == 1


def test_the_command_line_runs_ctl() -> None:
    with run_in_thread(management=True) as broker:
        assert broker.management_url is not None
        done = subprocess.run(
            [
                *(sys.executable, "-m", "amqp_lite", "ctl", "-q"),
                *("--url", broker.management_url, "list_vhosts"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert (done.returncode, done.stdout, done.stderr) == (0, "name\n/\n", "")
