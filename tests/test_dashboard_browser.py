"""The dashboard in a real browser: Debian's headless chromium, driven by Playwright, against a
broker started here. Each page loads without console errors and its actions really act on the
broker; the topology's highlight is where the broker really routes.

Screenshots of every page, wide and narrow, go to .artifacts/dashboard/ (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from pika.exceptions import ConnectionClosedByBroker

from amqp_lite import Clock, ThreadedBroker, run_in_thread
from tests.management_client import Api

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
from playwright.sync_api import ConsoleMessage, Page, expect  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"no {CHROMIUM}: the browser tests need Debian's chromium (.ci/run installs it)",
)
# A browser that talks to nothing but the broker under test.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1360, "height": 900}
NARROW = {"width": 400, "height": 860}
ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts" / "dashboard"
FROZEN_AT = 1_700_000_000.0
TIMEOUT_MS = 10_000  # generous: the machine may be busy; a passing test never waits it out


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    # A frozen clock: message rates move only when a test advances it, so they are exact.
    with run_in_thread(
        vhosts=("/", "shop"), management=True, clock=Clock(frozen_at=FROZEN_AT)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def api(broker: ThreadedBroker) -> Api:
    assert broker.management_url is not None
    return Api(broker.management_url)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport=WIDE,
        )
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        yield context
        context.close()


class Dashboard:
    """One tab on the dashboard, remembering what its console said."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.errors: list[str] = []
        self.expected: list[str] = []  # console errors a test provokes on purpose
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("dialog", lambda dialog: dialog.accept())  # "Are you sure?": yes

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")

    def login(self, user: str = "guest", password: str = "guest") -> None:
        self.page.goto(self.url)
        self.page.get_by_label("Username").fill(user)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.locator("#user-name")).to_have_text(user)

    def open(self, hash_path: str) -> None:
        """Show a page and wait until it has its first answer from the broker."""
        self.page.evaluate("path => { location.hash = path }", f"#/{hash_path}")
        self.wait_until_shown(f"#/{hash_path}")

    def wait_until_shown(self, route: str | None = None) -> None:
        self.page.wait_for_function(
            """route => {
                const main = document.getElementById("main");
                return (route === null || main.dataset.route === route)
                    && main.getAttribute("aria-busy") === "false";
            }""",
            arg=route,
        )

    def refresh(self) -> None:
        self.page.get_by_role("button", name="Refresh now").click()

    def fold(self, title: str) -> Any:
        """A collapsible section, opened."""
        section = self.page.locator("details", has=self.page.locator("summary", has_text=title))
        if section.get_attribute("open") is None:
            section.locator("summary").click()
        return section

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(text in e for text in self.expected)]


@pytest.fixture
def dashboard(browser: Any, broker: ThreadedBroker) -> Iterator[Dashboard]:
    page = browser.new_page()  # a new tab: its own sessionStorage, so logged out
    assert broker.management_url is not None
    board = Dashboard(page, broker.management_url)
    yield board
    page.close()
    assert board.unexpected_errors() == []


def _connect(broker: ThreadedBroker, vhost: str = "shop", name: str | None = None) -> Any:
    params = pika.URLParameters(broker.vhost_url(vhost))
    if name:
        params.client_properties = {"connection_name": name}
    return pika.BlockingConnection(params)


def _messages(api: Api, vhost: str, queue: str) -> int:
    return int(api.get(f"/api/queues/{vhost}/{queue}")["messages"])


# -- logging in, the overview ----------------------------------------------------------------------


def test_login_overview_totals_and_live_rates(
    dashboard: Dashboard, api: Api, broker: ThreadedBroker
) -> None:
    page = dashboard.page
    page.goto(dashboard.url)
    page.get_by_label("Username").fill("guest")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".login .error")).to_contain_text("Login failed")
    dashboard.expected.append("status of 401")  # the browser logs the refused request
    assert page.evaluate("sessionStorage.getItem('amqp-lite.credentials')") is None

    dashboard.login()
    token = page.evaluate("JSON.parse(sessionStorage.getItem('amqp-lite.credentials')).token")
    assert token == "Z3Vlc3Q6Z3Vlc3Q="  # base64 of guest:guest, kept for this tab only
    api.put("/api/queues/shop/overview-q", {})
    connection = _connect(broker)
    channel = connection.channel()
    channel.confirm_delivery()
    broker.advance(5)  # a statistics sample: what earlier tests did is behind it
    for _ in range(10):
        channel.basic_publish("", "overview-q", b"m")
    broker.advance(5)  # the next: 10 publishes over 5 s
    dashboard.refresh()
    totals = api.get("/api/overview")
    card = page.locator(".card", has_text="Queues")
    expect(card.locator(".card-value")).to_have_text(str(totals["object_totals"]["queues"]))
    expect(page.locator(".card", has_text="Connections").locator(".card-value")).to_have_text(
        str(totals["object_totals"]["connections"])
    )
    rates = page.locator(".chart", has_text="Message rates")
    expect(rates.locator(".legend li", has_text="Publish").first).to_contain_text("2/s")
    dashboard.refresh()  # a second sample: the lines are drawn
    expect(rates.locator("path.line")).to_have_count(8)
    queued = page.locator(".chart", has_text="Queued messages")
    expect(queued.locator(".legend li", has_text="Ready")).to_contain_text(
        f"{totals['queue_totals']['messages_ready']:,}"
    )
    dashboard.shot("action-overview-rates")
    connection.close()

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('amqp-lite.credentials')") is None


# -- queues ----------------------------------------------------------------------------------------


def test_queue_page_publishes_gets_purges_and_deletes(dashboard: Dashboard, api: Api) -> None:
    page = dashboard.page
    dashboard.login()
    dashboard.open("queues")
    add = dashboard.fold("Add a new queue")
    add.get_by_label("Virtual host").select_option("shop")
    add.get_by_label("Name").fill("work")
    add.locator(".kv-key").first.fill("x-max-length")
    add.locator(".kv-value").first.fill("100")
    add.locator(".kv-row select").first.select_option("number")
    add.get_by_role("button", name="Add queue").click()
    expect(add.locator(".status")).to_contain_text("declared")
    assert api.get("/api/queues/shop/work")["arguments"] == {"x-max-length": 100}
    page.get_by_role("link", name="work", exact=True).click()
    expect(page.locator("h1")).to_contain_text("work")

    publish = dashboard.fold("Publish message")
    for body in ("first", "second"):
        publish.get_by_label("Payload").fill(body)
        publish.get_by_role("button", name="Publish message").click()
        expect(publish.locator(".status")).to_have_text("Message published.")
    assert _messages(api, "shop", "work") == 2
    expect(page.locator("#queue-ready")).to_have_text("2")

    get = dashboard.fold("Get messages")
    get.get_by_label("Messages").fill("1")
    get.get_by_role("button", name="Get message(s)").click()
    expect(get.locator(".payload")).to_have_text("first")
    assert _messages(api, "shop", "work") == 2  # requeued, as "Nack message requeue true" says
    get.get_by_label("Ack mode").select_option("ack_requeue_false")
    get.get_by_role("button", name="Get message(s)").click()
    expect(get.locator(".message dt:has-text('Redelivered') + dd")).to_have_text("yes")
    assert _messages(api, "shop", "work") == 1

    danger = dashboard.fold("Delete or purge")
    danger.get_by_role("button", name="Purge messages").click()
    expect(danger.locator(".status")).to_have_text("Queue purged.")
    assert _messages(api, "shop", "work") == 0
    expect(page.locator("#queue-ready")).to_have_text("0")
    dashboard.shot("action-queue-after-purge")

    danger.get_by_role("button", name="Delete queue").click()
    expect(page.locator("h1")).to_have_text("Queues")
    assert api.call("GET", "/api/queues/shop/work").status == 404


# -- exchanges and bindings ------------------------------------------------------------------------


def test_exchange_page_binds_publishes_unbinds_and_deletes(dashboard: Dashboard, api: Api) -> None:
    page = dashboard.page
    api.put("/api/queues/shop/ex-target", {})
    dashboard.login()
    dashboard.open("exchanges")
    add = dashboard.fold("Add a new exchange")
    add.get_by_label("Virtual host").select_option("shop")
    add.get_by_label("Name").fill("prices")
    add.get_by_label("Type").select_option("topic")
    add.get_by_role("button", name="Add exchange").click()
    expect(add.locator(".status")).to_contain_text("declared")
    assert api.get("/api/exchanges/shop/prices")["type"] == "topic"

    page.get_by_role("link", name="prices", exact=True).click()
    bindings = dashboard.fold("Bindings")
    bindings.get_by_label("Name").fill("ex-target")
    bindings.get_by_label("Routing key").fill("price.*.usd")
    bindings.get_by_role("button", name="Bind").click()
    expect(bindings.locator("table")).to_contain_text("price.*.usd")
    assert [b["routing_key"] for b in api.get("/api/exchanges/shop/prices/bindings/source")] == [
        "price.*.usd"
    ]

    publish = dashboard.fold("Publish message")
    publish.get_by_label("Routing key").fill("price.gold.usd")
    publish.get_by_label("Payload").fill("1900")
    publish.get_by_role("button", name="Publish message").click()
    expect(publish.locator(".status")).to_have_text("Message published.")
    assert _messages(api, "shop", "ex-target") == 1
    publish.get_by_label("Routing key").fill("price.gold.eur")
    publish.get_by_role("button", name="Publish message").click()
    expect(publish.locator(".status")).to_have_text("Message published, but not routed.")
    assert _messages(api, "shop", "ex-target") == 1
    dashboard.shot("action-exchange-published")

    bindings.get_by_role("button", name="Unbind").click()
    expect(bindings.locator(".empty").first).to_have_text("No bindings from this exchange.")
    assert api.get("/api/exchanges/shop/prices/bindings/source") == []
    dashboard.fold("Delete this exchange").get_by_role("button", name="Delete exchange").click()
    expect(page.locator("h1")).to_have_text("Exchanges")
    assert api.call("GET", "/api/exchanges/shop/prices").status == 404


# -- connections and channels ----------------------------------------------------------------------


def test_closing_a_connection_closes_the_client_with_the_reason(
    dashboard: Dashboard, broker: ThreadedBroker, api: Api
) -> None:
    page = dashboard.page
    connection = _connect(broker, name="billing-worker")
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_qos(prefetch_count=7)
    named = [c for c in api.get("/api/connections") if c["user_provided_name"] == "billing-worker"]
    dashboard.login()
    dashboard.open("channels")
    row = page.locator("tbody tr", has_text=f"{named[0]['name']} (1)")
    expect(row.locator("td.num").nth(1)).to_have_text("7")  # its prefetch
    expect(row.locator("abbr", has_text="C")).to_be_visible()  # confirm mode
    dashboard.shot("action-channels-prefetch")

    dashboard.open("connections")
    row = page.locator("tbody tr", has_text="billing-worker")
    expect(row).to_contain_text("Pika")
    row.locator("td.name a").click()
    expect(page.locator(".facts").first).to_contain_text("shop")
    dashboard.shot("action-connection-detail")
    close = dashboard.fold("Close this connection")
    close.get_by_label("Reason").fill("maintenance window")
    close.get_by_role("button", name="Force close").click()
    expect(page.locator("h1")).to_have_text("Connections")
    with pytest.raises(ConnectionClosedByBroker) as closed:
        connection.process_data_events(time_limit=5)
    assert closed.value.reply_code == 320
    assert closed.value.reply_text == "CONNECTION_FORCED - maintenance window"


# -- admin -----------------------------------------------------------------------------------------


def test_admin_manages_users_vhosts_and_policies(dashboard: Dashboard, api: Api) -> None:
    page = dashboard.page
    dashboard.login()
    dashboard.open("vhosts")
    add_vhost = dashboard.fold("Add a new virtual host")
    add_vhost.get_by_label("Name").fill("staging")
    add_vhost.get_by_label("Description").fill("for trying things")
    add_vhost.get_by_role("button", name="Add virtual host").click()
    expect(page.locator("tbody")).to_contain_text("for trying things")
    assert api.get("/api/vhosts/staging")["description"] == "for trying things"
    expect(page.locator("select[name=vhost]").first).to_contain_text("staging")  # header too
    dashboard.shot("action-vhost-added")

    dashboard.open("users")
    add_user = dashboard.fold("Add a user")
    add_user.get_by_label("Username").fill("ana")
    add_user.get_by_label("Password").fill("s3cret")
    add_user.get_by_role("button", name="monitoring").click()
    add_user.get_by_role("button", name="Add user").click()
    expect(page.locator("tbody")).to_contain_text("ana")
    assert api.get("/api/users/ana")["tags"] == ["monitoring"]
    dashboard.shot("action-user-added")

    page.get_by_role("link", name="ana", exact=True).click()
    permissions = dashboard.fold("Permissions")
    permissions.get_by_label("Virtual host").select_option("staging")
    permissions.get_by_label("Write regexp").fill("^logs$")
    permissions.get_by_role("button", name="Set permission").click()
    expect(permissions.locator("table")).to_contain_text("^logs$")
    assert api.get("/api/permissions/staging/ana")["write"] == "^logs$"
    dashboard.shot("action-user-permissions")
    dashboard.fold("Delete this user").get_by_role("button", name="Delete user").click()
    expect(page.locator("h1")).to_have_text("Admin")
    assert api.call("GET", "/api/users/ana").status == 404

    dashboard.open("policies")
    form = dashboard.fold("Add / update a policy")
    form.get_by_label("Virtual host").select_option("staging")
    form.get_by_label("Name").fill("short-lived")
    form.get_by_label("Pattern").fill("^tmp\\.")
    form.get_by_label("Apply to").select_option("queues")
    form.get_by_role("button", name="Message TTL").click()
    form.locator(".kv-value").first.fill("60000")
    form.get_by_role("button", name="Add / update policy").click()
    expect(page.locator("tbody")).to_contain_text("short-lived")
    policy = api.get("/api/policies/staging/short-lived")
    assert (policy["definition"], policy["apply-to"]) == ({"message-ttl": 60000}, "queues")
    page.locator("tr", has_text="short-lived").get_by_role("button", name="Edit").click()
    expect(form.get_by_label("Name")).to_have_value("short-lived")
    form.get_by_label("Priority").fill("3")
    form.get_by_role("button", name="Add / update policy").click()
    expect(page.locator("tbody")).to_contain_text("3")
    assert api.get("/api/policies/staging/short-lived")["priority"] == 3
    dashboard.shot("action-policy-edited")
    page.locator("tr", has_text="short-lived").get_by_role("button", name="Delete").click()
    expect(page.locator(".list .empty")).to_be_visible()
    assert api.get("/api/policies/staging") == []

    page.get_by_role("link", name="Virtual hosts").click()
    page.get_by_role("link", name="staging", exact=True).click()
    dashboard.fold("Delete this virtual host").get_by_role(
        "button", name="Delete virtual host"
    ).click()
    expect(page.locator("h1")).to_have_text("Admin")
    assert api.call("GET", "/api/vhosts/staging").status == 404


def test_tags_limit_what_a_user_sees(dashboard: Dashboard, api: Api) -> None:
    page = dashboard.page
    api.put("/api/users/shopkeeper", {"password": "pw", "tags": "management"})
    api.put("/api/permissions/shop/shopkeeper", {"configure": ".*", "write": ".*", "read": ".*"})
    api.put("/api/queues/%2F/root-only", {})
    api.put("/api/queues/shop/shop-visible", {})
    dashboard.login("shopkeeper", "pw")
    tabs = page.locator("#tabs a")
    expect(tabs).to_have_text(
        ["Overview", "Connections", "Channels", "Exchanges", "Queues", "Topology"]
    )
    dashboard.open("queues")
    expect(page.locator("tbody")).to_contain_text("shop-visible")
    expect(page.locator("tbody")).not_to_contain_text("root-only")
    vhosts = page.locator("#session select[name=vhost] option")
    expect(vhosts).to_have_text(["All virtual hosts", "shop"])
    dashboard.shot("action-management-user-queues")

    api.put("/api/users/shopkeeper", {"tags": "policymaker"})
    page.reload()
    expect(tabs.last).to_have_text("Admin")
    tabs.last.click()
    expect(page.locator(".subnav a")).to_have_text(["Policies"])
    expect(page.get_by_role("button", name="Add / update policy")).to_be_attached()


# -- topology and the explainer --------------------------------------------------------------------


def _learning_topology(api: Api) -> None:
    for path, body in [
        (
            "/api/exchanges/shop/orders",
            {
                "type": "topic",
                "arguments": {"alternate-exchange": "ae"},
            },
        ),
        ("/api/exchanges/shop/ae", {"type": "fanout"}),
        ("/api/exchanges/shop/eu", {"type": "direct"}),
        ("/api/exchanges/shop/dlx", {"type": "fanout"}),
        ("/api/queues/shop/created", {"arguments": {"x-dead-letter-exchange": "dlx"}}),
        ("/api/queues/shop/eu-orders", {}),
        ("/api/queues/shop/unrouted", {}),
        ("/api/queues/shop/dead", {}),
    ]:
        assert api.put(path, body).status in (201, 204)
    for source, kind, destination, key in [
        ("orders", "q", "created", "order.created.*"),
        ("orders", "e", "eu", "order.*.eu"),
        ("eu", "q", "eu-orders", "order.created.eu"),
        ("ae", "q", "unrouted", ""),
        ("dlx", "q", "dead", ""),
    ]:
        path = f"/api/bindings/shop/e/{source}/{kind}/{destination}"
        answer = api.post(path, {"routing_key": key})
        assert answer.status == 201


def _queue_counts(api: Api) -> dict[str, int]:
    return {q["name"]: q["messages"] for q in api.get("/api/queues/shop")}


def test_topology_highlights_the_path_the_broker_routes_by(dashboard: Dashboard, api: Api) -> None:
    page = dashboard.page
    _learning_topology(api)
    dashboard.login()
    dashboard.open("topology/shop/orders")
    svg = page.locator("svg.topology")
    expect(svg.locator(".node.exchange", has_text="orders")).to_be_visible()
    expect(svg.locator(".edge.alternate")).to_have_count(1)
    expect(svg.locator(".edge.dead-letter")).to_have_count(1)
    expect(svg.locator(".edge.binding .edge-label", has_text="order.created.*")).to_be_visible()
    expect(svg.locator(".node", has_text="amq.topic")).to_have_count(0)  # built-ins hidden
    dashboard.shot("action-topology")

    cases = [
        # routing key, headers (name, value, type), the queues it must reach, the links lit
        ("order.created.eu", [], ["created", "eu-orders"], 3),
        ("refund.issued", [], ["unrouted"], 2),  # no binding: the alternate exchange
        ("order.created.us", [("CC", "order.created.eu", "list")], ["created", "eu-orders"], 3),
    ]
    for routing_key, headers, reached, lit in cases:
        page.get_by_label("Routing key").fill(routing_key)
        row = page.locator(".explain-form .kv-row").first
        row.locator(".kv-key").fill(headers[0][0] if headers else "")
        row.locator(".kv-value").fill(headers[0][1] if headers else "")
        row.locator("select").select_option(headers[0][2] if headers else "string")
        page.get_by_label("Payload").fill(f"to {routing_key}")
        before = _queue_counts(api)
        page.get_by_role("button", name="Publish and explain").click()
        expect(page.locator("#publish-outcome")).to_have_text("Published: the broker routed it.")
        after = _queue_counts(api)
        delivered = sorted(q for q in after if after[q] > before[q])
        assert delivered == reached
        # The picture lights exactly the queues the message reached...
        expect(svg.locator(".node.queue.on")).to_have_count(len(reached))
        lit_queues = svg.locator(".node.queue.on .node-name").all_text_contents()
        assert sorted(lit_queues) == reached
        # ...and the links it took, binding by binding.
        expect(svg.locator(".edge.on")).to_have_count(lit)
        expect(page.locator("#explain-summary .reached")).to_have_text(reached)
    dashboard.shot("action-topology-explained")

    # Only asking the explainer publishes nothing.
    page.get_by_label("Routing key").fill("order.created.eu")
    page.locator(".explain-form .kv-row .kv-key").first.fill("")
    before = _queue_counts(api)
    page.get_by_role("button", name="Explain", exact=True).click()
    expect(page.locator("#explain-summary .reached")).to_have_text(["created", "eu-orders"])
    assert _queue_counts(api) == before
    verdicts = page.locator(".hop").first.locator(".verdicts li")
    expect(verdicts.filter(has_text="queue created")).to_contain_text("'*' took 'eu'")
    expect(page.locator("#publish-outcome")).to_have_count(0)
    page.get_by_label("Show the built-in exchanges").check()
    expect(svg.locator(".node", has_text="amq.topic")).to_have_count(1)
    page.get_by_label("Show the built-in exchanges").uncheck()


# -- every page, wide and narrow -------------------------------------------------------------------


PAGES = [
    ("overview", ""),
    ("connections", "connections"),
    ("channels", "channels"),
    ("exchanges", "exchanges"),
    ("exchange", "exchanges/shop/orders"),
    ("queues", "queues"),
    ("queue", "queues/shop/created"),
    ("topology", "topology/shop"),
    ("users", "users"),
    ("user", "users/guest"),
    ("vhosts", "vhosts"),
    ("vhost", "vhosts/shop"),
    ("policies", "policies"),
]


def test_every_page_loads_cleanly_wide_and_narrow(
    dashboard: Dashboard, api: Api, broker: ThreadedBroker
) -> None:
    page = dashboard.page
    _learning_topology(api)  # idempotent: whatever ran before, there is something to show
    api.put("/api/policies/shop/lazy", {"pattern": "^dead$", "definition": {"max-length": 10}})
    connection = _connect(broker, name="screenshots")
    connection.channel().basic_consume("dead", lambda *_: None)
    dashboard.login()
    for viewport, suffix in ((WIDE, "wide"), (NARROW, "narrow")):
        page.set_viewport_size(viewport)
        for name, path in PAGES:
            dashboard.open(path)
            expect(page.locator("#refreshed")).to_contain_text("Updated")
            expect(page.locator(".page h1")).not_to_have_text("Not found")
            if suffix == "narrow":
                # Nothing wider than the window but what scrolls inside its own box.
                overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
                assert overflow <= 0, (name, overflow)
            dashboard.shot(f"{name}-{suffix}")
    page.set_viewport_size(WIDE)
    connection.close()
