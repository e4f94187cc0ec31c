"""Loading a RabbitMQ definitions file: parsing with line numbers, all-or-nothing, the result
over the wire, and `amqp-lite serve --definitions`.

tests/fixtures/rabbitmq-definitions.json was exported from RabbitMQ 3.10.8 with
`rabbitmqctl export_definitions`, after building vhost "defs-test" there:
* rabbitmqctl: add_user app-user app-secret, monitor monitor-secret, nopass (then clear_password),
  set_user_tags (management, monitoring), set_permissions in defs-test for all four users,
  set_topic_permissions, set_vhost_limits max-connections 100, and four policies: orders-dlx
  (^orders\\., queues, priority 10: dead-letter-exchange dlx, message-ttl 60000), limited
  (^limited$, queues, 5: max-length 100, overflow reject-publish), events-ae (^events$, exchanges,
  1: alternate-exchange unrouted), catch-all (.*, all, 0: max-length-bytes 1048576).
* pika: durable exchanges dlx (direct), events (headers), unrouted (fanout), orders (topic, with
  alternate-exchange unrouted), audit (fanout), scratch (direct, auto-delete), transient-ex;
  queues with x- arguments (priority, dead-lettering, ttl, lengths, overflow, expires), a
  transient, an auto-delete and an exclusive queue; topic, headers (x-match all/any), standard
  exchange and exchange-to-exchange (orders -> audit) bindings.
The export was then cut down to the vhosts "/" and "defs-test" (other work shared that node) and
kept compact, as exported: the whole file is line 1.

What RabbitMQ 3.10.8 showed doing this: the export leaves out exclusive queues and internal
exchanges (but keeps the bindings to and from them; audit is therefore not internal here),
names no "internal" field, writes tags as a list and a cleared password as "" with an algorithm.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ProbableAuthenticationError

from amqp_lite import ThreadedBroker, run_in_thread
from tests.processes import BrokerProcess
from vhosts import Node
from vhosts.definitions import DefinitionsError, load, parse
from vhosts.users import hash_password, password_matches

FIXTURE = Path(__file__).parent / "fixtures" / "rabbitmq-definitions.json"
VHOST = "defs-test"


def _text(*lines: str) -> str:
    return "\n".join(lines)


def _error(text: str) -> str:
    with pytest.raises(DefinitionsError) as caught:
        parse(text, "defs.json")
    return str(caught.value)


VHOST_LINE = '"vhosts": [{"name": "v"}],'


# -- passwords as RabbitMQ hashes them -----------------------------------------------------------


def test_exported_sha256_hash_admits_its_password() -> None:
    app_user = next(u for u in load(FIXTURE).users if u.name == "app-user")
    assert app_user.hashing_algorithm == "rabbit_password_hashing_sha256"
    assert password_matches(app_user.password_hash, "app-secret", app_user.hashing_algorithm)
    assert not password_matches(app_user.password_hash, "app-secre", app_user.hashing_algorithm)


def test_sha512_and_md5_hashes_match_rabbitmq() -> None:
    # sha512: rabbit_password:salted_hash(rabbit_password_hashing_sha512, <<1,2,3,4>>, "s3cret")
    # evaluated on RabbitMQ 3.10.8; md5: RabbitMQ's long-published example, which it accepts.
    sha512 = (
        "AQIDBJI2yQQ1Neg30pob+8hkYUM1v4PXKNj0SQsACOdiROtY9rg4njiC"
        "t+kxn20grZ0gqjljOZFdD6T+LR1KKztwlAY="
    )
    assert hash_password("s3cret", bytes([1, 2, 3, 4]), "rabbit_password_hashing_sha512") == sha512
    assert password_matches(sha512, "s3cret", "rabbit_password_hashing_sha512")
    assert password_matches("ytUIm8s3AnKsXQjptplKFytfVxI=", "simon", "rabbit_password_hashing_md5")
    assert not password_matches("ytUIm8s3AnKsXQjptplKFytfVxI=", "simon")  # not sha256


def test_an_empty_hash_admits_no_password() -> None:
    assert not password_matches("", "")
    assert not password_matches("", "anything")


def test_old_exports_without_an_algorithm_mean_md5() -> None:
    # RabbitMQ 3.10 assumes MD5 for files from before 3.6 and reads tags as "a,b" there.
    definitions = parse(
        '{"rabbit_version": "3.5.7", "users": [{"name": "old", "tags": "administrator,management",'
        ' "password_hash": "ytUIm8s3AnKsXQjptplKFytfVxI="}]}'
    )
    (user,) = definitions.users
    assert user.hashing_algorithm == "rabbit_password_hashing_md5"
    assert user.tags == ["administrator", "management"]
    node = Node(vhost_names=(), guest=False)
    definitions.apply_to(node)
    assert node.users.authenticate("old", "simon") is not None


# -- parse errors, at the line of the offending object -------------------------------------------


def test_invalid_json_reports_its_line() -> None:
    text = _text("{", '  "vhosts": [', '    {"name": "v"}', '    {"name": "w"}', "  ]", "}")
    assert _error(text).startswith("defs.json:4: invalid JSON: Expecting ',' delimiter")


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_numbers_json_does_not_have_are_invalid_json_at_their_line(number: str) -> None:
    """Python's JSON decoder takes them (1e999 as infinity); RabbitMQ's refuses the file."""
    text = _text(
        "{",
        VHOST_LINE,
        '"queues": [',
        '  {"vhost": "v", "name": "q", "durable": true, "auto_delete": false,',
        f'   "arguments": {{"x-note": {number}}}}}',
        "]}",
    )
    assert _error(text) == f"defs.json:5: invalid JSON: {number} is not a finite number (column 28)"


def test_queue_with_an_invalid_argument() -> None:
    text = _text(
        "{",
        VHOST_LINE,
        '"queues": [',
        '  {"vhost": "v", "name": "fine", "durable": true, "auto_delete": false, "arguments": {}},',
        '  {"vhost": "v", "name": "bad", "durable": true, "auto_delete": false,',
        '   "arguments": {"x-max-length": "ten"}}',
        "]}",
    )
    message = _error(text)
    assert message.startswith("defs.json:5: queues[1]: ")
    assert "invalid arg 'x-max-length' for queue 'bad' in vhost 'v'" in message


def test_binding_to_a_missing_queue() -> None:
    text = _text(
        "{",
        VHOST_LINE,
        '"bindings": [',
        '  {"vhost": "v", "source": "amq.direct", "destination": "nowhere",',
        '   "destination_type": "queue", "routing_key": "k", "arguments": {}}',
        "]}",
    )
    assert _error(text) == (
        "defs.json:4: bindings[0]: no queue 'nowhere' in vhost 'v' (not in the file)"
    )


def test_binding_from_a_missing_exchange_hints_at_internal_exchanges() -> None:
    text = _text(
        "{",
        VHOST_LINE,
        '"queues": [{"vhost": "v", "name": "q"}],',
        '"bindings": [',
        '  {"vhost": "v", "source": "audit", "destination": "q", "destination_type": "queue"}',
        "]}",
    )
    message = _error(text)
    assert message.startswith("defs.json:5: bindings[0]: no exchange 'audit' in vhost 'v'")
    assert "internal exchanges" in message


def test_bindings_may_come_before_what_they_bind_and_use_standard_exchanges() -> None:
    definitions = parse(
        _text(
            "{",
            '"bindings": [{"vhost": "v", "source": "x", "destination": "q",',
            '              "destination_type": "queue", "routing_key": "k"},',
            '             {"vhost": "v", "source": "amq.topic", "destination": "x",',
            '              "destination_type": "exchange", "routing_key": "#"}],',
            '"queues": [{"vhost": "v", "name": "q"}],',
            '"exchanges": [{"vhost": "v", "name": "x", "type": "direct"}],',
            VHOST_LINE.rstrip(","),
            "}",
        )
    )
    node = Node(vhost_names=(), guest=False)
    definitions.apply_to(node)
    vhost = node.vhost("v")
    assert list(vhost.route(vhost.exchanges["amq.topic"], "k", None)) == [vhost.queues["q"]]


def test_unknown_exchange_type() -> None:
    text = _text(
        "{",
        VHOST_LINE,
        '"exchanges": [',
        '  {"vhost": "v", "name": "x", "type": "nonesuch", "durable": true,',
        '   "auto_delete": false, "internal": false, "arguments": {}}',
        "]}",
    )
    assert _error(text) == "defs.json:4: exchanges[0]: unknown exchange type 'nonesuch'"


def test_policy_with_an_unknown_key() -> None:
    text = _text(
        "{",
        VHOST_LINE,
        '"policies": [',
        '  {"vhost": "v", "name": "p", "pattern": ".*", "apply-to": "queues", "priority": 0,',
        '   "definition": {"message-tll": 5}}',
        "]}",
    )
    message = _error(text)
    assert message.startswith("defs.json:4: policies[0]: policy 'p': ")
    assert "message-tll" in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            '{"user": "nobody", "vhost": "v", "configure": "", "write": "", "read": ""}',
            "permissions[0]: no user 'nobody' (not in the file)",
        ),
        (
            '{"user": "u", "vhost": "elsewhere", "configure": "", "write": "", "read": ""}',
            "permissions[0]: vhost elsewhere not found",
        ),
        (
            '{"user": "u", "vhost": "v", "configure": "(", "write": "", "read": ""}',
            "permissions[0]: configure is not a regular expression",
        ),
        (
            '{"user": "u", "vhost": "v", "write": "", "read": ""}',
            'permissions[0]: missing "configure"',
        ),
    ],
)
def test_bad_permissions(entry: str, expected: str) -> None:
    text = _text(
        "{",
        VHOST_LINE,
        '"users": [{"name": "u", "password_hash": "", "tags": []}],',
        '"permissions": [',
        f"  {entry}",
        "]}",
    )
    assert _error(text).startswith(f"defs.json:5: {expected}")


def test_wrong_field_types_and_unknown_algorithms() -> None:
    assert _error('{"queues": [{"vhost": "v", "name": "q", "durable": "yes"}]}') == (
        'defs.json:1: queues[0]: "durable" must be true or false, not "yes"'
    )
    assert _error('{"users": [{"name": "u", "password_hash": "", "hashing_algorithm": "x"}]}') == (
        "defs.json:1: users[0]: unknown hashing_algorithm 'x' (known: "
        "rabbit_password_hashing_sha256, rabbit_password_hashing_sha512, "
        "rabbit_password_hashing_md5)"
    )
    assert _error('{"queues": {}}') == 'defs.json:1: top level: "queues" must be a list'
    assert _error("[]") == "defs.json:1: a definitions file is one JSON object"


def test_what_amqp_lite_has_no_feature_for_is_listed_as_ignored() -> None:
    assert load(FIXTURE).ignored == []  # its one parameter is a vhost's limits
    text = json.dumps(
        {
            "vhosts": [{"name": "/"}],
            "parameters": [
                {"component": "vhost-limits", "name": "limits", "vhost": "/", "value": {}},
                {"component": "shovel", "name": "s", "vhost": "/", "value": {}},
            ],
        }
    )
    assert parse(text, "defs.json").ignored == [
        "defs.json:1: parameters: 1 ignored (shovel): amqp-lite has no runtime parameters"
    ]


def test_the_limits_of_vhosts_and_users_are_applied() -> None:
    node = Node(vhost_names=(), guest=False)
    load(FIXTURE).apply_to(node)
    assert node.vhosts["defs-test"].limits == {"max-connections": 100}


# -- applying: all or nothing, idempotent ---------------------------------------------------------


def test_a_conflict_with_the_node_changes_nothing() -> None:
    node = Node()
    node.vhost("/").declare_queue("work", None, durable=False)
    definitions = parse(
        _text(
            "{",
            '"vhosts": [{"name": "/"}, {"name": "new"}],',
            '"users": [{"name": "guest", "password_hash": "", "tags": []},',
            '          {"name": "someone", "password_hash": "", "tags": []}],',
            '"permissions": [{"user": "someone", "vhost": "new",',
            '                 "configure": ".*", "write": ".*", "read": ".*"}],',
            '"exchanges": [{"vhost": "/", "name": "fresh", "type": "fanout"}],',
            '"queues": [{"vhost": "/", "name": "work", "durable": true}]',
            "}",
        ),
        "defs.json",
    )
    with pytest.raises(DefinitionsError) as caught:
        definitions.apply_to(node)
    assert str(caught.value) == (
        "defs.json:8: queues[0]: inequivalent arg 'durable' for queue 'work' in vhost '/': "
        "received 'true' but current is 'false'"
    )
    assert sorted(node.vhosts) == ["/"]
    assert [user.name for user in node.users] == ["guest"]
    assert node.users.authenticate("guest", "guest") is not None
    assert "fresh" not in node.vhost("/").exchanges


def test_loading_twice_changes_nothing_the_second_time() -> None:
    definitions = load(FIXTURE)
    node = Node(vhost_names=(), guest=False)
    definitions.apply_to(node)
    vhost = node.vhost(VHOST)
    before = (dict(vhost.queues), dict(vhost.exchanges))
    definitions.apply_to(node)
    assert (vhost.queues, vhost.exchanges) == before
    assert sorted(vhost.queues) == [
        "audit.log",
        "autodel-q",
        "events.alerts",
        "events.eu",
        "limited",
        "orders.created",
        "orders.dead",
        "transient-q",
        "unrouted.all",
    ]


def test_a_user_in_the_file_keeps_permissions_the_file_does_not_mention() -> None:
    node = Node(vhost_names=("/", "mine"))
    definitions = parse('{"users": [{"name": "guest", "password": "new", "tags": []}]}')
    definitions.apply_to(node)
    guest = node.users.get("guest")
    assert guest is not None and sorted(guest.permissions) == ["/", "mine"]
    assert node.users.authenticate("guest", "new") is not None
    assert node.users.authenticate("guest", "guest") is None


# -- over the wire -------------------------------------------------------------------------------


@pytest.fixture
def loaded() -> Iterator[ThreadedBroker]:
    """A broker whose node started blank, as RabbitMQ's does when it loads a file at boot."""
    node = Node(vhost_names=(), guest=False)
    load(FIXTURE).apply_to(node)
    with run_in_thread(node=node) as running:
        yield running


def _connect(port: int, user: str, password: str) -> pika.BlockingConnection:
    credentials = pika.PlainCredentials(user, password)
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, VHOST, credentials))


def test_users_from_the_file_log_in_with_their_passwords(loaded: ThreadedBroker) -> None:
    _connect(loaded.port, "app-user", "app-secret").close()
    _connect(loaded.port, "guest", "guest").close()
    for user, password in [("app-user", "wrong"), ("nopass", ""), ("nopass", "placeholder")]:
        with pytest.raises(ProbableAuthenticationError) as caught:
            _connect(loaded.port, user, password)
        assert "ACCESS_REFUSED" in str(caught.value)


def test_the_file_s_topology_routes(loaded: ThreadedBroker) -> None:
    connection = _connect(loaded.port, "guest", "guest")
    channel = connection.channel()
    channel.basic_publish("orders", "order.created.eu", b"order")
    channel.basic_publish(
        "events", "", b"eu", pika.BasicProperties(headers={"region": "eu", "version": 2})
    )
    channel.basic_publish("events", "", b"alert", pika.BasicProperties(headers={"type": "alert"}))
    channel.basic_publish("amq.direct", "limited", b"limited")

    def get(queue: str) -> bytes | None:
        return channel.basic_get(queue, auto_ack=True)[2]

    assert get("orders.created") == b"order"
    assert get("audit.log") == b"order"  # orders -> audit (exchange) -> audit.log
    assert get("events.eu") == b"eu"
    assert get("events.alerts") == b"alert"
    assert get("limited") == b"limited"
    connection.close()


def test_a_policy_from_the_file_takes_effect(loaded: ThreadedBroker) -> None:
    # events-ae gives the headers exchange "events" an alternate exchange by policy alone.
    connection = _connect(loaded.port, "guest", "guest")
    channel = connection.channel()
    channel.basic_publish("events", "", b"stray", pika.BasicProperties(headers={"region": "us"}))
    assert channel.basic_get("unrouted.all", auto_ack=True)[2] == b"stray"
    connection.close()


def test_permissions_from_the_file_restrict_users(loaded: ThreadedBroker) -> None:
    connection = _connect(loaded.port, "monitor", "monitor-secret")
    channel = connection.channel()
    channel.queue_declare("orders.created", passive=True)
    assert channel.basic_get("orders.created", auto_ack=True) == (None, None, None)
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.basic_get("limited")
    assert caught.value.reply_text == (
        "ACCESS_REFUSED - access to queue 'limited' in vhost 'defs-test' refused for user 'monitor'"
    )
    connection.close()

    connection = _connect(loaded.port, "app-user", "app-secret")
    channel = connection.channel()
    channel.queue_declare("app.scratch", exclusive=True)
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.queue_declare("elsewhere")
    assert caught.value.reply_code == 403
    connection.close()


# -- amqp-lite serve --definitions ---------------------------------------------------------------


def _serve(definitions: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "amqp_lite", "serve", "--transient", "--port", "0"),
            *("--definitions", os.fspath(definitions), "--no-management", "--no-prometheus"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_loads_a_definitions_file() -> None:
    process = BrokerProcess(None, "--definitions", os.fspath(FIXTURE), "--no-management")
    try:
        connection = _connect(process.port, "app-user", "app-secret")
        channel = connection.channel()
        assert channel.queue_declare("orders.created", passive=True).method.message_count == 0
        connection.close()
    finally:
        process.stop()


def test_serve_refuses_a_bad_file_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    exchange = '{"vhost": "v", "name": "x", "type": "?"}'
    bad.write_text(_text("{", VHOST_LINE, f'"exchanges": [{exchange}]}}'))
    server = _serve(bad)
    _, stderr = server.communicate(timeout=15)
    assert server.returncode != 0
    assert f"{bad}:3: exchanges[0]: unknown exchange type '?'" in stderr
