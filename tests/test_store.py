"""The durable store on its own: batches, recovery into a Node, damaged files."""

from __future__ import annotations

from pathlib import Path

import pytest

from amqp_lite.storage import open_store
from amqp_lite.wire import Properties
from amqp_lite.wire.properties import encode_properties
from vhosts import Message, Node
from vhosts.policies import Policy
from vhosts.store import StoreError

PERSISTENT = Properties(delivery_mode=2, headers={"k": "v"})
TRANSIENT = Properties(delivery_mode=1)


def message(body: bytes, properties: Properties = PERSISTENT) -> Message:
    return Message("", "q", properties, body, encode_properties(properties))


def restart(directory: Path, node: Node) -> Node:
    assert node.store is not None
    node.store.flush()
    node.store.close()
    return Node(store=open_store(directory))


def bodies(node: Node, queue: str, vhost: str = "/") -> list[bytes]:
    return [entry.message.body for entry in node.vhosts[vhost].queues[queue].ready]


def test_durable_topology_and_persistent_messages_survive(tmp_path: Path) -> None:
    node = Node(("/", "extra"), store=open_store(tmp_path))
    vhost = node.vhosts["/"]
    exchange = vhost.declare_exchange("events", "topic", durable=True, arguments={"x": 1})
    durable = vhost.declare_queue("durable", None, durable=True, arguments={"x-max-length": 5})
    transient_queue = vhost.declare_queue("transient", None)
    vhost.bind(exchange, durable, "a.#", {})
    vhost.bind(exchange, transient_queue, "a.#", {})
    for queue in (durable, transient_queue):
        queue.enqueue(message(b"kept"))
        queue.enqueue(message(b"not persistent", TRANSIENT))

    node = restart(tmp_path, node)

    assert set(node.vhosts) == {"/", "extra"}
    vhost = node.vhosts["/"]
    assert vhost.exchanges["events"].type_name == "topic"
    assert vhost.exchanges["events"].arguments == {"x": 1}
    assert set(vhost.queues) == {"durable"}
    assert vhost.queues["durable"].arguments == {"x-max-length": 5}
    assert bodies(node, "durable") == [b"kept"]
    assert [q.name for q in vhost.route(vhost.exchanges["events"], "a.b", None)] == ["durable"]
    recovered = vhost.queues["durable"].ready[0].message
    assert recovered.properties.headers == {"k": "v"}
    assert node.users.authenticate("guest", "guest") is not None


def test_acked_messages_are_gone_and_delivered_ones_come_back_redelivered(tmp_path: Path) -> None:
    node = Node(store=open_store(tmp_path))
    queue = node.vhosts["/"].declare_queue("q", None, durable=True)
    for body in (b"1", b"2", b"3", b"4"):
        queue.enqueue(message(body))
    acked = queue.get(no_ack=False)
    delivered = queue.get(no_ack=False)
    assert acked is not None and delivered is not None
    queue.ack(acked)  # '2' stays delivered and unacked when the broker stops

    node = restart(tmp_path, node)

    ready = node.vhosts["/"].queues["q"].ready
    assert [(e.message.body, e.redelivered) for e in ready] == [
        (b"2", True),
        (b"3", False),
        (b"4", False),
    ]


def test_a_message_in_several_queues_is_stored_once(tmp_path: Path) -> None:
    node = Node(store=open_store(tmp_path))
    vhost = node.vhosts["/"]
    queues = [vhost.declare_queue(name, None, durable=True) for name in ("a", "b")]
    shared = message(b"shared")
    for queue in queues:
        queue.enqueue(shared)
    assert node.store is not None
    node.store.flush()
    (count,) = node.store._db.execute("SELECT COUNT(*) FROM messages").fetchone()
    assert count == 1
    entry = queues[0].get(no_ack=True)  # settled in one queue: the content stays for the other
    assert entry is not None

    node = restart(tmp_path, node)

    assert bodies(node, "a") == []
    assert bodies(node, "b") == [b"shared"]
    assert node.vhosts["/"].queues["b"].ready[0].message.store_refs == 1


def test_deleted_and_purged_queues_leave_nothing(tmp_path: Path) -> None:
    node = Node(store=open_store(tmp_path))
    vhost = node.vhosts["/"]
    for name in ("deleted", "purged"):
        vhost.declare_queue(name, None, durable=True).enqueue(message(name.encode()))
    vhost.delete_queue("deleted", None)
    vhost.purge_queue("purged", None)

    node = restart(tmp_path, node)

    assert set(node.vhosts["/"].queues) == {"purged"}
    assert bodies(node, "purged") == []
    assert node.store is not None
    assert node.store._db.execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)


def test_requeued_order_survives(tmp_path: Path) -> None:
    node = Node(store=open_store(tmp_path))
    queue = node.vhosts["/"].declare_queue("q", None, durable=True)
    for body in (b"1", b"2", b"3"):
        queue.enqueue(message(body))
    first, second = queue.get(no_ack=False), queue.get(no_ack=False)
    queue.requeue([second, first])  # type: ignore[list-item]

    node = restart(tmp_path, node)

    assert bodies(node, "q") == [b"1", b"2", b"3"]


def test_a_junk_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "amqp-lite.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable amqp-lite store"):
        open_store(tmp_path)


def test_a_torn_last_write_recovers_to_the_last_commit(tmp_path: Path) -> None:
    node = Node(store=open_store(tmp_path))
    node.vhosts["/"].declare_queue("q", None, durable=True).enqueue(message(b"committed"))
    assert node.store is not None
    node.store.flush()
    wal = tmp_path / "amqp-lite.sqlite3-wal"
    assert wal.exists()
    # A crash mid-append leaves a partial frame at the end of the write-ahead log.
    with wal.open("ab") as log:
        log.write(b"\x00\x17half a frame" * 7)

    recovered = Node(store=open_store(tmp_path))

    assert bodies(recovered, "q") == [b"committed"]


def test_confirm_waits_for_the_batch_that_holds_the_message(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    node = Node(store=store)
    queue = node.vhosts["/"].declare_queue("q", None, durable=True)
    queue.enqueue(message(b"x"))
    needed = store.last_op
    assert store.durable_upto < needed
    batch, upto = store.take_batch()
    queue.enqueue(message(b"y"))  # arrives while the first batch is being written
    store.write_batch(batch)
    store.batch_written(upto)
    assert store.durable_upto >= needed
    assert store.durable_upto < store.last_op


def test_a_deleted_vhost_takes_its_permissions_with_it(tmp_path: Path) -> None:
    node = Node(("/", "gone"), store=open_store(tmp_path))
    node.add_user("alice", "secret")
    alice = node.users.get("alice")
    assert alice is not None
    node.set_permission(alice, "gone", node.users.get("guest").permissions["/"])  # type: ignore[union-attr]
    node.delete_vhost("gone")
    node = restart(tmp_path, node)
    assert "gone" not in node.vhosts
    for name in ("alice", "guest"):
        user = node.users.get(name)
        assert user is not None and "gone" not in user.permissions


def test_bcc_keys_are_kept_so_a_recovered_dead_letter_still_routes_by_them(tmp_path: Path) -> None:
    node = Node(store=open_store(tmp_path))
    vhost = node.vhosts["/"]
    dlx = vhost.declare_exchange("dlx", "direct", durable=True)
    arguments = {"x-dead-letter-exchange": "dlx"}
    vhost.declare_queue("work", None, durable=True, arguments=arguments)
    vhost.bind(dlx, vhost.declare_queue("hidden", None, durable=True), "secret", {})
    properties = Properties(delivery_mode=2, headers={"BCC": ["secret"]})
    vhost.publish(vhost.exchanges[""], Message("", "work", properties, b"m"))

    node = restart(tmp_path, node)
    work = node.vhosts["/"].queues["work"]
    entry = work.get(no_ack=False)
    assert entry is not None and entry.message.bcc == ("secret",)
    assert entry.message.properties.headers == {}  # still hidden from every receiver
    work.discard(entry)  # rejected: dead-lettered by "work" and its BCC key
    assert bodies(node, "hidden") == [b"m"]


def test_policies_are_kept_and_go_with_their_vhost(tmp_path: Path) -> None:
    node = Node(("/", "gone"), store=open_store(tmp_path))
    definition = {"max-length": 1, "ha-params": {"any": ["json", 1.5]}}
    node.vhosts["/"].set_policy(Policy("/", "short", "^q$", "queues", 2.5, definition))
    node.vhosts["/"].set_policy(Policy("/", "dropped", ".*", "all", 0, {"expires": 5}))
    node.vhosts["/"].delete_policy("dropped")
    node.vhosts["gone"].set_policy(Policy("gone", "p", ".*", "all", 0, {"expires": 5}))
    node.delete_vhost("gone")
    node = restart(tmp_path, node)
    policies = node.vhosts["/"].policies
    assert policies is not None
    assert list(policies) == [Policy("/", "short", "^q$", "queues", 2.5, definition)]
    assert "gone" not in node.vhosts
    # Queues recovered after the policies are declared under them.
    queue = node.vhosts["/"].declare_queue("q", None, durable=True)
    assert queue.settings.max_length == 1


def test_a_store_of_schema_1_is_migrated_and_keeps_its_messages(tmp_path: Path) -> None:
    """Stores written before message expiry was kept (schema 1) open as they are, upgraded."""
    import sqlite3

    db = sqlite3.connect(tmp_path / "amqp-lite.sqlite3")
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE vhosts (name TEXT PRIMARY KEY);
        CREATE TABLE queues (vhost TEXT NOT NULL, name TEXT NOT NULL, auto_delete INTEGER NOT NULL,
            arguments BLOB NOT NULL, PRIMARY KEY (vhost, name));
        CREATE TABLE messages (id INTEGER PRIMARY KEY, exchange TEXT NOT NULL,
            routing_key TEXT NOT NULL, properties BLOB NOT NULL, body BLOB NOT NULL);
        CREATE TABLE queue_messages (vhost TEXT NOT NULL, queue TEXT NOT NULL,
            seq INTEGER NOT NULL, message INTEGER NOT NULL,
            redelivered INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (vhost, queue, seq)) WITHOUT ROWID;
        INSERT INTO meta VALUES ('schema', '1');
        INSERT INTO vhosts VALUES ('/');
        """
    )
    db.execute("INSERT INTO queues VALUES ('/', 'old', 0, ?)", (b"\x00\x00\x00\x00",))
    db.execute(
        "INSERT INTO messages VALUES (1, '', 'old', ?, ?)",
        (encode_properties(PERSISTENT), b"from schema 1"),
    )
    db.execute("INSERT INTO queue_messages VALUES ('/', 'old', 0, 1, 0)")
    db.commit()
    db.close()

    node = Node(store=open_store(tmp_path))
    assert bodies(node, "old") == [b"from schema 1"]
    node.vhosts["/"].queues["old"].enqueue(message(b"new"))
    node = restart(tmp_path, node)
    assert bodies(node, "old") == [b"from schema 1", b"new"]


@pytest.mark.parametrize("settle", ["ack", "discard", "requeue"])
def test_a_deleted_queues_delivery_settled_later_touches_no_row_of_its_successor(
    tmp_path: Path, settle: str
) -> None:
    node = Node(store=open_store(tmp_path))
    vhost = node.vhosts["/"]
    old = vhost.declare_queue("q", None, durable=True)
    old.enqueue(message(b"old"))
    held = old.get(no_ack=False)
    assert held is not None
    vhost.delete_queue("q", None)
    vhost.declare_queue("q", None, durable=True).enqueue(message(b"new"))  # same position, 0
    if settle == "requeue":
        old.requeue([held])
    else:
        getattr(old, settle)(held)
    # The old content goes with its last holder, not only when the next start tidies up.
    assert node.store is not None
    node.store.flush()
    assert node.store._db.execute("SELECT body FROM messages").fetchall() == [(b"new",)]
    node = restart(tmp_path, node)
    assert bodies(node, "q") == [b"new"]
