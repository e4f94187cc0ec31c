"""The endpoints beyond RabbitMQ's, for the dashboard: /api/amqp-lite/topology and /explain,
and the dashboard's own files served at / without credentials."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources

import pika
import pytest

from amqp_lite import ThreadedBroker, run_in_thread
from exchanges.trace import render
from tests.management_client import Api
from vhosts.route_explain import explain_route


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with run_in_thread(vhosts=("/", "shop"), management=True) as running:
        yield running


@pytest.fixture
def api(broker: ThreadedBroker) -> Api:
    assert broker.management_url is not None
    return Api(broker.management_url)


def _shop(api: Api) -> None:
    """orders (topic; alternate exchange unrouted) -> queues and exchange eu; dead letters."""
    declared = [
        api.put("/api/exchanges/shop/orders", {"type": "topic", "arguments": {}}),
        api.put("/api/exchanges/shop/unrouted", {"type": "fanout"}),
        api.put("/api/exchanges/shop/eu", {"type": "direct"}),
        api.put("/api/exchanges/shop/dlx", {"type": "fanout"}),
        api.put("/api/exchanges/shop/h", {"type": "headers"}),
        api.put("/api/queues/shop/created", {"arguments": {"x-dead-letter-exchange": "dlx"}}),
        api.put("/api/queues/shop/eu.orders", {}),
        api.put("/api/queues/shop/lost", {}),
        api.put("/api/queues/shop/dead", {}),
        api.post("/api/bindings/shop/e/orders/q/created", {"routing_key": "order.created.*"}),
        api.post("/api/bindings/shop/e/orders/e/eu", {"routing_key": "order.*.eu"}),
        api.post("/api/bindings/shop/e/eu/q/eu.orders", {"routing_key": "order.created.eu"}),
        api.post("/api/bindings/shop/e/unrouted/q/lost", {"routing_key": ""}),
        api.post("/api/bindings/shop/e/dlx/q/dead", {"routing_key": ""}),
        api.post(
            "/api/bindings/shop/e/h/q/dead",
            {"routing_key": "", "arguments": {"x-match": "any", "kind": "refund", "n": 7}},
        ),
        # The alternate exchange from a policy, as RabbitMQ's exchange JSON would not show it.
        api.put(
            "/api/policies/shop/ae",
            {"pattern": "^orders$", "definition": {"alternate-exchange": "unrouted"}},
        ),
    ]
    assert all(answer.status in (201, 204) for answer in declared), declared


# -- topology --------------------------------------------------------------------------------------


def test_topology_is_one_snapshot_with_the_links_policies_set(api: Api) -> None:
    _shop(api)
    topology = api.get("/api/amqp-lite/topology/shop")
    assert topology["vhost"] == "shop"
    exchanges = {e["name"]: e for e in topology["exchanges"]}
    assert exchanges["orders"]["alternate_exchange"] == "unrouted"  # from the policy
    assert exchanges["orders"]["arguments"] == {}
    assert exchanges["eu"]["alternate_exchange"] is None
    assert exchanges[""]["builtin"] and exchanges["amq.topic"]["builtin"]
    assert not exchanges["orders"]["builtin"]
    queues = {q["name"]: q for q in topology["queues"]}
    assert queues["created"]["dead_letter_exchange"] == "dlx"
    assert queues["created"]["dead_letter_routing_key"] is None
    assert queues["lost"]["dead_letter_exchange"] is None
    # The same bindings, in the same shape, as RabbitMQ's /api/bindings/{vhost}.
    assert topology["bindings"] == api.get("/api/bindings/shop")


def test_topology_needs_access_to_the_vhost(api: Api) -> None:
    api.put("/api/users/visitor", {"password": "pw", "tags": "management"})
    api.put("/api/permissions/%2F/visitor", {"configure": ".*", "write": ".*", "read": ".*"})
    visitor = api.as_user("visitor", "pw")
    assert visitor.call("GET", "/api/amqp-lite/topology/%2F").status == 200
    refused = visitor.call("GET", "/api/amqp-lite/topology/shop")
    assert (refused.status, refused.body["reason"]) == (
        401,
        "User not authorised to access virtual host",
    )
    assert api.call("GET", "/api/amqp-lite/topology/nowhere").status == 404
    assert api.call("GET", "/api/amqp-lite/topology/shop", auth=False).status == 401


# -- explain ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routing_key", "headers"),
    [
        ("order.created.eu", None),  # a queue, and an exchange-to-exchange hop
        ("refund.issued", None),  # nothing matches: the alternate exchange from the policy
        ("order.created.us", {"CC": ["order.created.eu"]}),  # CC keys route too
    ],
)
def test_explain_names_the_queues_a_publish_reaches(
    api: Api, broker: ThreadedBroker, routing_key: str, headers: dict[str, object] | None
) -> None:
    _shop(api)
    answer = api.post(
        "/api/amqp-lite/explain/shop/orders", {"routing_key": routing_key, "headers": headers}
    )
    assert answer.status == 200, answer
    explained = answer.body
    # The same trace the explainer records in the domain, rendered the same way.
    node = broker.node
    assert node is not None
    trace = broker.call(
        lambda: explain_route(node.vhosts["shop"], "orders", routing_key, headers or None)
    )
    assert explained["text"] == render(trace)
    assert explained["queues"] == list(trace.queues)
    # And a real publish lands in exactly those queues.
    before = {q["name"]: q["messages"] for q in api.get("/api/queues/shop")}
    connection = pika.BlockingConnection(pika.URLParameters(broker.vhost_url("shop")))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = pika.BasicProperties(headers=headers)
        channel.basic_publish("orders", routing_key, b"x", properties)
    finally:
        connection.close()
    after = {q["name"]: q["messages"] for q in api.get("/api/queues/shop")}
    reached = sorted(name for name in after if after[name] > before[name])
    assert reached == explained["queues"]
    assert explained["routed"] == bool(reached)


def test_explain_gives_each_binding_its_verdict_and_properties_key(api: Api) -> None:
    _shop(api)
    explained = api.post(
        "/api/amqp-lite/explain/shop/orders", {"routing_key": "order.created.eu"}
    ).body
    first = explained["hops"][0]
    assert (first["exchange"], first["type"], first["reached"]["how"]) == (
        "orders",
        "topic",
        "published",
    )
    verdicts = {b["destination"]: b for b in first["trials"][0]["bindings"]}
    assert verdicts["created"]["matched"] and verdicts["eu"]["matched"]
    assert verdicts["created"]["captures"] == [["*", "eu"]]
    assert "matched" in verdicts["created"]["reason"]
    # A verdict names its binding as the topology does, so the picture can highlight it.
    listed = {
        (b["source"], b["destination"], b["properties_key"])
        for b in api.get("/api/amqp-lite/topology/shop")["bindings"]
    }
    for trial in first["trials"]:
        for b in trial["bindings"]:
            assert (b["source"], b["destination"], b["properties_key"]) in listed
    second = explained["hops"][1]
    assert second["reached"] == {"how": "bound", "via": "orders", "binding_keys": ["order.*.eu"]}
    handoff = next(h for h in first["handoffs"] if h["destination"] == "eu")
    assert (handoff["outcome"], handoff["hop"]) == ("visited", 1)

    missed = api.post("/api/amqp-lite/explain/shop/orders", {"routing_key": "refund"}).body
    assert missed["hops"][0]["used_alternate"]
    assert missed["hops"][1]["reached"] == {"how": "alternate", "via": "orders", "binding_keys": []}
    assert missed["queues"] == ["lost"]


def test_explain_takes_typed_headers_and_the_default_exchange(api: Api) -> None:
    _shop(api)
    headers = api.post(
        "/api/amqp-lite/explain/shop/h", {"routing_key": "", "headers": {"n": 7}}
    ).body
    verdict = headers["hops"][0]["trials"][0]["bindings"][0]
    assert verdict["matched"] and verdict["arguments"]["x-match"] == "any"
    as_text = api.post("/api/amqp-lite/explain/shop/h", {"headers": {"n": "7"}}).body
    assert as_text["queues"] == []  # 7 and "7" differ to a headers exchange
    default = api.post("/api/amqp-lite/explain/shop/amq.default", {"routing_key": "lost"}).body
    assert default["exchange"] == "" and default["queues"] == ["lost"]


def test_explain_refuses_what_a_publish_would_refuse(api: Api) -> None:
    _shop(api)
    path = "/api/amqp-lite/explain/shop/orders"
    assert api.post("/api/amqp-lite/explain/shop/missing", {}).status == 404
    assert api.post("/api/amqp-lite/explain/nowhere/orders", {}).status == 404
    bad_cc = api.post(path, {"routing_key": "a", "headers": {"CC": "not-a-list"}})
    assert bad_cc.status == 400 and "CC" in bad_cc.body["reason"]
    unknown = api.post(path, {"routing_key": "a", "mandatory": True})
    assert unknown.body == {"error": "bad_request", "reason": "unknown fields: mandatory"}
    assert api.post(path, {"routing_key": 7}).status == 400
    assert api.post(path, {"headers": []}).status == 400
    assert api.call("POST", path, raw=b"{not json").status == 400
    assert api.call("GET", path).status == 405


# -- the dashboard's files -------------------------------------------------------------------------


def test_the_dashboard_is_served_at_the_root_without_credentials(api: Api) -> None:
    page = api.call("GET", "/", auth=False)
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    html = page.body.decode()
    assert api.call("GET", "/dashboard/index.html", auth=False).body == page.body
    # Everything the page loads is one of our own files, here: nothing from elsewhere.
    for url in re.findall(r'(?:src|href)="([^"#]+)"', html):
        assert url.startswith("/dashboard/"), url
        assert api.call("GET", url, auth=False).status == 200, url
    script = api.call("HEAD", "/dashboard/app.js", auth=False)
    assert script.status == 200 and script.body is None
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    # Other paths and methods are still the API's: its 404 and its authentication.
    assert api.call("GET", "/dashboard/missing.js", auth=False).status == 404
    assert api.call("GET", "/dashboard/../README.md", auth=False).status == 404
    assert api.call("POST", "/", auth=False).status == 404
    assert api.call("GET", "/api/overview", auth=False).status == 401


def test_every_module_the_scripts_import_is_shipped() -> None:
    folder = resources.files("amqp_lite.management") / "dashboard"
    shipped = {entry.name for entry in folder.iterdir()}
    for name in sorted(shipped):
        if not name.endswith(".js"):
            continue
        text = (folder / name).read_text()
        for imported in re.findall(r'from "\./([^"]+)"', text):
            assert imported in shipped, (name, imported)
        # No script, style or font from anywhere else: the dashboard works offline.
        text = text.replace("http://www.w3.org/2000/svg", "")  # a namespace, never fetched
        assert "http://" not in text and "https://" not in text, name
