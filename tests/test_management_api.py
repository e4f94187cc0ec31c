"""The management HTTP API over HTTP, with pika making the traffic it reports.

Status codes, error bodies and the 401 texts for each user tag were checked against RabbitMQ
3.10.8 with its management plugin.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pika
import pytest
from pika.exceptions import ConnectionClosedByBroker

from amqp_lite import Clock, ThreadedBroker, run_in_thread
from tests.management_client import Api

FROZEN_AT = 1_700_000_000.0


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[ThreadedBroker]:
    clock = Clock(frozen_at=FROZEN_AT) if request.node.get_closest_marker("frozen_clock") else None
    with run_in_thread(vhosts=("/", "shop"), management=True, clock=clock) as running:
        yield running


@pytest.fixture
def api(broker: ThreadedBroker) -> Api:
    assert broker.management_url is not None
    return Api(broker.management_url)


def _channel(broker: ThreadedBroker, vhost: str = "/", **client_properties: str):
    params = pika.URLParameters(broker.vhost_url(vhost))
    params.client_properties = client_properties or None
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


# -- authentication and tags ----------------------------------------------------------------------


def test_without_credentials_the_answer_is_a_basic_auth_challenge(api: Api) -> None:
    answer = api.call("GET", "/api/overview", auth=False)
    assert answer.status == 401 and answer.body is None
    assert answer.headers["www-authenticate"] == 'Basic realm="RabbitMQ Management"'
    wrong = api.as_user("guest", "nope").call("GET", "/api/overview")
    assert (wrong.status, wrong.body) == (
        401,
        {"error": "not_authorized", "reason": "Login failed"},
    )


def test_each_tag_sees_and_does_what_rabbitmq_lets_it(api: Api, broker: ThreadedBroker) -> None:
    for name, tags in (
        ("mg", "management"),
        ("mo", "monitoring"),
        ("po", "policymaker"),
        ("nt", ""),
    ):
        assert api.put(f"/api/users/{name}", {"password": "pw", "tags": tags}).status == 201
    for name in ("mg", "po"):
        api.put(f"/api/permissions/shop/{name}", {"configure": ".*", "write": ".*", "read": ".*"})

    def status(user: str, method: str, path: str, body: object = None) -> tuple[int, object]:
        answer = api.as_user(user, "pw").call(method, path, body)
        return answer.status, (answer.body or {}).get("reason") if answer.status >= 400 else None

    refused_vhost = (401, "User not authorised to access virtual host")
    assert status("nt", "GET", "/api/overview") == (401, "Not management user")
    assert status("mg", "GET", "/api/overview") == (200, None)
    assert status("mg", "GET", "/api/users") == (401, "Not administrator user")
    assert status("mg", "GET", "/api/nodes") == (401, "Not monitor user")
    assert status("mo", "GET", "/api/nodes") == (200, None)
    assert status("mg", "GET", "/api/queues/shop") == (200, None)
    assert status("mo", "GET", "/api/queues/shop") == refused_vhost  # no permissions there
    assert status("mg", "GET", "/api/queues/%2F") == refused_vhost
    policy = {"pattern": "^a", "definition": {"max-length": 1}}
    assert status("mg", "PUT", "/api/policies/shop/p", policy) == (
        401,
        "User not authorised to access object",
    )
    assert status("po", "PUT", "/api/policies/shop/p", policy) == (201, None)
    assert status("mg", "GET", "/api/definitions") == (401, "Not administrator user")
    assert [v["name"] for v in api.as_user("mo", "pw").get("/api/vhosts")] == ["/", "shop"]
    assert [v["name"] for v in api.as_user("mg", "pw").get("/api/vhosts")] == ["shop"]
    assert api.as_user("mg", "pw").get("/api/whoami") == {"name": "mg", "tags": ["management"]}


def test_a_management_user_sees_only_its_own_connections(api: Api, broker: ThreadedBroker) -> None:
    api.put("/api/users/mg", {"password": "pw", "tags": "management"})
    api.put("/api/permissions/%2F/mg", {"configure": ".*", "write": ".*", "read": ".*"})
    guests, _ = _channel(broker)
    mine = pika.BlockingConnection(pika.URLParameters(broker.url.replace("guest:guest", "mg:pw")))
    assert len(api.get("/api/connections")) == 2
    assert [c["user"] for c in api.as_user("mg", "pw").get("/api/connections")] == ["mg"]
    mine.close()
    guests.close()


# -- errors ---------------------------------------------------------------------------------------


def test_bad_requests_get_rabbitmqs_400_with_a_reason(api: Api) -> None:
    bad_json = api.call("PUT", "/api/users/x", raw=b"{bad")
    assert (bad_json.status, bad_json.body) == (400, {"error": "bad_request", "reason": "not_json"})
    assert api.call("PUT", "/api/users/x", raw=b"[1, 2]").body["reason"] == "not_json"
    assert api.put("/api/users/x", {"password": "p"}).body["reason"] == "tags_not_present"
    for number in (b"Infinity", b"-Infinity", b"NaN", b"1e999"):  # not JSON to RabbitMQ
        publish = b'{"properties": {"headers": {"n": %s}}, "routing_key": "q", "payload": "",'
        publish += b' "payload_encoding": "string"}'
        answer = api.call("POST", "/api/exchanges/shop/amq.default/publish", raw=publish % number)
        assert (answer.status, answer.body["reason"]) == (400, "not_json"), number
    not_boolean = api.put("/api/queues/shop/q", {"durable": "yes"})
    assert (not_boolean.status, not_boolean.body["reason"]) == (400, ["not_boolean", "yes"])
    invalid = api.put("/api/policies/shop/p", {"pattern": "^a", "definition": {"max-length": -1}})
    assert invalid.body["reason"] == "Validation failed\n\n-1 is not a valid maximum length\n"
    assert api.put("/api/policies/shop/p", {"pattern": "^a"}).body["reason"] == (
        "[{key_missing,definition}]"
    )
    assert api.put("/api/queues/shop/q", {"durable": True}).status == 201
    inequivalent = api.put("/api/queues/shop/q", {"durable": False})
    assert inequivalent.body == {
        "error": "bad_request",
        "reason": "inequivalent arg 'durable' for queue 'q' in vhost 'shop': "
        "received 'false' but current is 'true'",
    }
    unknown_type = api.put("/api/exchanges/shop/e", {"type": "nosuch"})
    assert unknown_type.body["reason"] == "unknown exchange type 'nosuch'"
    reserved = api.put("/api/exchanges/shop/amq.foo", {"type": "direct"})
    assert (reserved.status, reserved.body["reason"]) == (401, "Access refused.")


def test_missing_things_and_methods(api: Api) -> None:
    not_found = {"error": "Object Not Found", "reason": "Not Found"}
    for path in ("/api/nosuch", "/api/queues/nowhere", "/api/queues/shop/nothing", "/api/users/x"):
        answer = api.call("GET", path)
        assert (answer.status, answer.body) == (404, not_found), path
    assert api.delete("/api/vhosts/nowhere").status == 404
    patch = api.call("PATCH", "/api/overview")
    assert patch.status == 405 and patch.headers["allow"] == "GET, HEAD, OPTIONS"


def test_bad_input_on_the_http_port_never_disturbs_the_broker(
    api: Api, broker: ThreadedBroker
) -> None:
    connection, channel = _channel(broker)
    channel.queue_declare("still-here")
    assert broker.management_url is not None
    port = int(broker.management_url.rsplit(":", 1)[1].strip("/"))
    garbage = [
        b"\x00\x01\x02 not http at all\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 100_000 + b"\r\n\r\n",
        b"POST /api/definitions HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n",
        b"GET /api/overview HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    ]
    for data in garbage:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(data)
            reply = sock.recv(200)
            assert reply.startswith(b"HTTP/1.1 4"), (data[:30], reply)
    # A client that sends half a request and waits holds only its own connection.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
        slow.sendall(b"GET /api/overview HTTP/1.1\r\nHo")
        assert api.get("/api/whoami")["name"] == "guest"
        channel.basic_publish("", "still-here", b"fine")
        assert api.get("/api/queues/%2F/still-here")["messages"] == 1
    connection.close()


# -- vhosts, users, permissions -------------------------------------------------------------------


def test_vhosts_users_and_permissions(api: Api, broker: ThreadedBroker) -> None:
    assert api.put("/api/vhosts/new", {"description": "a new one", "tags": "a,b"}).status == 201
    assert api.put("/api/vhosts/new").status == 204
    vhost = api.get("/api/vhosts/new")
    assert (vhost["description"], vhost["tags"], vhost["messages"]) == ("a new one", ["a", "b"], 0)
    assert {"user": "guest", "vhost": "new", "configure": ".*", "write": ".*", "read": ".*"} in (
        api.get("/api/permissions")
    )
    assert api.put("/api/users/ann", {"password": "secret", "tags": "monitoring"}).status == 201
    permission = {"configure": "^ann", "write": ".*", "read": ".*"}
    assert api.put("/api/permissions/new/ann", permission).status == 201
    assert api.get("/api/permissions/new/ann") == {"user": "ann", "vhost": "new", **permission}
    assert api.get("/api/users/ann")["tags"] == ["monitoring"]
    assert [p["vhost"] for p in api.get("/api/users/ann/permissions")] == ["new"]
    connection = pika.BlockingConnection(
        pika.URLParameters(broker.vhost_url("new").replace("guest:guest", "ann:secret"))
    )
    connection.channel().queue_declare("ann.q")
    assert api.delete("/api/permissions/new/ann").status == 204
    assert api.delete("/api/users/ann").status == 204
    with pytest.raises(ConnectionClosedByBroker):
        connection.channel()
    assert api.delete("/api/vhosts/new").status == 204
    assert api.call("GET", "/api/vhosts/new").status == 404


# -- exchanges, queues, bindings ------------------------------------------------------------------


def test_queues_exchanges_and_bindings_through_the_api(api: Api, broker: ThreadedBroker) -> None:
    assert api.put("/api/exchanges/shop/orders", {"type": "topic", "durable": True}).status == 201
    assert api.put("/api/queues/shop/orders.new", {"durable": True}).status == 201
    created = api.post("/api/bindings/shop/e/orders/q/orders.new", {"routing_key": "order.#"})
    assert created.status == 201 and created.headers["location"] == "order.%23"
    [binding] = api.get("/api/bindings/shop/e/orders/q/orders.new")
    assert binding["properties_key"] == "order.%23"
    assert [b["source"] for b in api.get("/api/queues/shop/orders.new/bindings")] == ["", "orders"]
    assert len(api.get("/api/exchanges/shop/orders/bindings/source")) == 1

    published = {"properties": {"delivery_mode": 2}, "routing_key": "order.created"}
    answer = api.post(
        "/api/exchanges/shop/orders/publish",
        {**published, "payload": "one", "payload_encoding": "string"},
    )
    assert answer.body == {"routed": True}
    unrouted = api.post(
        "/api/exchanges/shop/orders/publish",
        {**published, "routing_key": "x", "payload": "", "payload_encoding": "string"},
    )
    assert unrouted.body == {"routed": False}
    api.post(
        "/api/exchanges/shop/amq.default/publish",
        {
            "properties": {},
            "routing_key": "orders.new",
            "payload": "//4=",
            "payload_encoding": "base64",
        },
    )
    queue = api.get("/api/queues/shop/orders.new")
    assert (queue["messages"], queue["messages_ready"], queue["durable"]) == (2, 2, True)

    taken = api.post(
        "/api/queues/shop/orders.new/get",
        {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 2},
    ).body
    assert [(m["payload"], m["payload_encoding"], m["payload_bytes"]) for m in taken] == [
        ("on", "string", 3),
        ("//4=", "base64", 2),
    ]
    assert taken[0]["properties"] == {"delivery_mode": 2} and taken[0]["message_count"] == 1
    again = api.post(
        "/api/queues/shop/orders.new/get",
        {"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64"},
    ).body
    assert again[0]["redelivered"] and again[0]["payload"] == "b25l"
    assert api.get("/api/queues/shop/orders.new")["messages"] == 1
    assert api.delete("/api/queues/shop/orders.new/contents").status == 204
    assert api.get("/api/queues/shop/orders.new")["messages"] == 0

    assert api.delete("/api/bindings/shop/e/orders/q/orders.new/order.%23").status == 204
    assert api.get("/api/bindings/shop/e/orders/q/orders.new") == []
    assert api.delete("/api/queues/shop/orders.new").status == 204
    assert api.delete("/api/exchanges/shop/orders").status == 204
    assert api.call("DELETE", "/api/exchanges/shop/amq.direct").status == 401


def test_get_shows_what_basic_get_sends_a_quorum_queues_delivery_count(api: Api) -> None:
    """RabbitMQ's API gets through an AMQP channel, so it shows x-delivery-count as it goes."""
    api.put("/api/queues/shop/votes", {"durable": True, "arguments": {"x-queue-type": "quorum"}})
    api.post(
        "/api/exchanges/shop/amq.default/publish",
        {"properties": {}, "routing_key": "votes", "payload": "x", "payload_encoding": "string"},
    )
    get = {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}
    counts = []
    for _ in range(2):
        [taken] = api.post("/api/queues/shop/votes/get", get).body
        counts.append((taken["redelivered"], taken["properties"]))
    assert counts == [
        (False, {"headers": {"x-delivery-count": 0}}),
        (True, {"headers": {"x-delivery-count": 1}}),
    ]


def test_paging_sorting_filtering_and_columns(api: Api) -> None:
    for name in ("b-1", "a-2", "c-3", "a-10"):
        api.put(f"/api/queues/shop/{name}")
    api.post(
        "/api/exchanges/shop/amq.default/publish",
        {"properties": {}, "routing_key": "c-3", "payload": "x", "payload_encoding": "string"},
    )
    names = [q["name"] for q in api.get("/api/queues/shop")]
    assert names == ["a-10", "a-2", "b-1", "c-3"]
    by_messages = api.get("/api/queues/shop?sort=messages&sort_reverse=true&columns=name,messages")
    assert by_messages[0] == {"name": "c-3", "messages": 1}
    page = api.get("/api/queues/shop?page=2&page_size=3&name=-&columns=name")
    assert page == {
        "filtered_count": 4,
        "item_count": 1,
        "items": [{"name": "c-3"}],
        "page": 2,
        "page_count": 2,
        "page_size": 3,
        "total_count": 4,
    }
    regex = api.get("/api/queues/shop?page=1&name=^a-\\d$&use_regex=true&columns=name")
    assert regex["items"] == [{"name": "a-2"}]
    stats = api.get("/api/queues/shop?columns=name,message_stats.publish&sort=name")
    assert stats[3] == {"name": "c-3", "message_stats": {"publish": 1}}
    assert api.call("GET", "/api/queues/shop?page=9").status == 400
    assert api.call("GET", "/api/queues/shop?page=1&page_size=501").status == 400


# -- connections, channels, consumers -------------------------------------------------------------


def test_connections_channels_and_consumers(api: Api, broker: ThreadedBroker) -> None:
    connection, channel = _channel(broker, "shop", connection_name="shop-app")
    channel.queue_declare("work")
    channel.basic_qos(prefetch_count=3)
    channel.basic_consume("work", lambda *args: None, consumer_tag="ctag-1")
    [listed] = api.get("/api/connections")
    assert (listed["user"], listed["vhost"], listed["user_provided_name"]) == (
        "guest",
        "shop",
        "shop-app",
    )
    assert listed["channels"] == 1 and listed["protocol"] == "AMQP 0-9-1"
    name = listed["name"]
    quoted = name.replace(" ", "%20").replace(">", "%3E")
    assert api.get(f"/api/connections/{quoted}")["peer_port"] == listed["peer_port"]
    [channel_info] = api.get(f"/api/connections/{quoted}/channels")
    assert channel_info["name"] == f"{name} (1)" and channel_info["confirm"]
    assert channel_info["consumer_count"] == 1 and channel_info["prefetch_count"] == 3
    [consumer] = api.get("/api/consumers/shop")
    assert consumer["consumer_tag"] == "ctag-1" and consumer["queue"] == {
        "name": "work",
        "vhost": "shop",
    }
    assert consumer["channel_details"]["connection_name"] == name
    assert api.get("/api/queues/shop/work")["consumer_details"][0]["consumer_tag"] == "ctag-1"
    assert len(api.get("/api/vhosts/shop/channels")) == 1

    closed = api.delete(f"/api/connections/{quoted}", headers={"X-Reason": "maintenance"})
    assert closed.status == 204
    with pytest.raises(ConnectionClosedByBroker) as error:
        connection.channel()
    assert (error.value.reply_code, error.value.reply_text) == (
        320,
        "CONNECTION_FORCED - maintenance",
    )
    assert api.get("/api/connections") == []


# -- definitions and health -----------------------------------------------------------------------


def test_definitions_go_out_and_come_back_through_the_loader(api: Api) -> None:
    api.put("/api/queues/shop/kept", {"durable": True})
    exported = api.get("/api/definitions")
    assert exported["rabbitmq_version"] == "3.10.8"
    assert {"name": "kept", "vhost": "shop"}.items() <= exported["queues"][0].items()
    upload = {
        "vhosts": [{"name": "imported"}],
        "queues": [
            {
                "name": "q",
                "vhost": "imported",
                "durable": True,
                "auto_delete": False,
                "arguments": {},
            }
        ],
    }
    assert api.post("/api/definitions", upload).status == 204
    assert api.get("/api/queues/imported/q")["durable"] is True
    bad = api.post("/api/definitions", {"queues": [{"name": 7}]})
    assert bad.status == 400 and bad.body["reason"].startswith("<upload>:1: ")
    assert [q["name"] for q in api.get("/api/definitions/shop")["queues"]] == ["kept"]


def test_health_checks(api: Api, broker: ThreadedBroker) -> None:
    assert api.get("/api/aliveness-test/shop") == {"status": "ok"}
    assert api.get("/api/health/checks/alarms") == {"status": "ok"}
    broker.call(broker.node.set_alarm, "memory")
    failed = api.call("GET", "/api/health/checks/local-alarms")
    assert failed.status == 503 and failed.body["status"] == "failed"
    assert failed.body["alarms"][0]["resource"] == "memory"
    broker.call(broker.node.clear_alarm, "memory")
    assert api.get("/api/health/checks/alarms") == {"status": "ok"}
    assert api.get(f"/api/health/checks/port-listener/{broker.port}")["status"] == "ok"


# -- rates ----------------------------------------------------------------------------------------


@pytest.mark.frozen_clock
def test_message_rates_are_sampled_on_the_brokers_clock(api: Api, broker: ThreadedBroker) -> None:
    connection, channel = _channel(broker, "shop")
    channel.queue_declare("q")
    broker.advance(5)  # a first sample with the queue in it
    for _ in range(10):
        channel.basic_publish("", "q", b"m")
    for _ in range(4):
        method, _, _ = channel.basic_get("q")
        channel.basic_ack(method.delivery_tag)
    channel.queue_declare("q", passive=True)  # a round trip: the acks have arrived
    broker.advance(5)
    overview = api.get("/api/overview")["message_stats"]
    assert (overview["publish"], overview["publish_details"]) == (10, {"rate": 2.0})
    assert (overview["ack"], overview["ack_details"]) == (4, {"rate": 0.8})
    assert overview["confirm"] == 10 and overview["get"] == 4
    queue = api.get("/api/queues/shop/q")
    assert queue["message_stats"]["publish_details"] == {"rate": 2.0}
    assert queue["messages_details"] == {"rate": 1.2}
    vhost = api.get("/api/vhosts/shop")["message_stats"]
    assert vhost["deliver_get"] == 4 and vhost["deliver_get_details"] == {"rate": 0.8}
    exchange = api.get("/api/exchanges/shop/amq.default")["message_stats"]
    assert exchange["publish_in"] == 10 and exchange["publish_in_details"] == {"rate": 2.0}
    connection.close()  # what the channel counted stays in the totals
    broker.advance(5)
    overview = api.get("/api/overview")["message_stats"]
    assert overview["publish"] == 10 and overview["publish_details"] == {"rate": 0.0}
    assert api.get("/api/overview")["churn_rates"]["connection_closed"] == 1


# -- where it listens -----------------------------------------------------------------------------


def test_the_management_api_is_off_unless_asked_for() -> None:
    with run_in_thread() as broker:
        assert broker.management_url is None


def test_the_pytest_fixture_serves_the_session_brokers_api(
    amqp_management_url: str, amqp_vhost
) -> None:
    api = Api(amqp_management_url)
    quoted = amqp_vhost.name
    assert api.get(f"/api/vhosts/{quoted}")["name"] == amqp_vhost.name


def test_many_clients_at_once(api: Api) -> None:
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(20):
                api.get("/api/overview")
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_amqp_lite_serve_serves_the_api_where_it_is_told(tmp_path) -> None:
    import re
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "amqp_lite", "serve", "--transient", "--port", "0"),
            *("--management-port", "0", "--prometheus-port", "0", "--log-level", "info"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        url = None
        for line in process.stderr:
            found = re.search(r"management API on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None and url.startswith("http://127.0.0.1:")
        assert Api(url).get("/api/overview")["product_name"] == "amqp-lite"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_an_argument_of_octets_that_are_not_utf8_is_listed_not_a_failure(
    api: Api, broker: ThreadedBroker
) -> None:
    """A longstr argument may hold any octets (RabbitMQ takes them); JSON shows them as U+FFFD."""
    broker.call(
        lambda: broker.node.vhosts["/"].declare_queue(
            "odd", None, arguments={"x-note": "caf\udcc3"}
        )
    )
    [queue] = [q for q in api.get("/api/queues/%2F") if q["name"] == "odd"]
    assert queue["arguments"] == {"x-note": "caf\ufffd"}
