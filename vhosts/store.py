"""The durable store: SQLite in WAL mode, written in batches so many publishers share one fsync.

The domain records what must persist by appending operations (`save_queue`, `enqueue`,
`ack`...) to the pending batch; that is cheap and synchronous. Whoever drives the store (the
server's store task) calls `take_batch()`, writes it with `write_batch()` in a worker thread (one
transaction, one fsync), then `batch_written()`. `durable_upto` then says which operations are
on disk, which is what a publisher confirm for a persistent message waits for.

The store keeps no wire formats of its own: arguments and properties are serialised by functions
the protocol layer passes in (`Codec`), and stored as opaque bytes.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

STORE_FILE = "amqp-lite.sqlite3"  # the store's one file, in its data directory
SCHEMA_VERSION = 6  # 2: queue_messages.expires_at; 3: policies, messages.bcc; 4: topic_permissions
# 5: vhosts.default_queue_type; 6: limits

# Bytes of message content the store may hold for the disk before publishers are paused.
BACKLOG_LIMIT = 64 * 2**20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vhosts (name TEXT PRIMARY KEY, default_queue_type TEXT);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, algorithm TEXT NOT NULL, tags TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS permissions (
    user TEXT NOT NULL, vhost TEXT NOT NULL, configure TEXT NOT NULL, write TEXT NOT NULL,
    read TEXT NOT NULL, PRIMARY KEY (user, vhost)
);
CREATE TABLE IF NOT EXISTS topic_permissions (
    user TEXT NOT NULL, vhost TEXT NOT NULL, exchange TEXT NOT NULL, write TEXT NOT NULL,
    read TEXT NOT NULL, PRIMARY KEY (user, vhost, exchange)
);
CREATE TABLE IF NOT EXISTS exchanges (
    vhost TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, auto_delete INTEGER NOT NULL,
    internal INTEGER NOT NULL, arguments BLOB NOT NULL, PRIMARY KEY (vhost, name)
);
CREATE TABLE IF NOT EXISTS queues (
    vhost TEXT NOT NULL, name TEXT NOT NULL, auto_delete INTEGER NOT NULL,
    arguments BLOB NOT NULL, PRIMARY KEY (vhost, name)
);
CREATE TABLE IF NOT EXISTS bindings (
    vhost TEXT NOT NULL, source TEXT NOT NULL, destination_kind TEXT NOT NULL,
    destination TEXT NOT NULL, routing_key TEXT NOT NULL, arguments BLOB NOT NULL,
    PRIMARY KEY (vhost, source, destination_kind, destination, routing_key, arguments)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY, exchange TEXT NOT NULL, routing_key TEXT NOT NULL,
    properties BLOB NOT NULL, body BLOB NOT NULL, bcc TEXT
);
CREATE TABLE IF NOT EXISTS held_messages (
    id INTEGER PRIMARY KEY, vhost TEXT NOT NULL, exchange TEXT NOT NULL,
    release_at REAL NOT NULL, message INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (
    vhost TEXT NOT NULL, name TEXT NOT NULL, pattern TEXT NOT NULL, apply_to TEXT NOT NULL,
    priority TEXT NOT NULL, definition TEXT NOT NULL, PRIMARY KEY (vhost, name)
);
CREATE TABLE IF NOT EXISTS limits (
    kind TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (kind, owner, name)
);
CREATE TABLE IF NOT EXISTS queue_messages (
    vhost TEXT NOT NULL, queue TEXT NOT NULL, seq INTEGER NOT NULL, message INTEGER NOT NULL,
    redelivered INTEGER NOT NULL DEFAULT 0, expires_at REAL, PRIMARY KEY (vhost, queue, seq)
) WITHOUT ROWID;
"""

# Operation kinds, each one SQL statement run with executemany over a run of rows.
_SQL = {
    "vhost": "INSERT OR REPLACE INTO vhosts VALUES (?, ?)",
    "vhost-": "DELETE FROM vhosts WHERE name = ?",
    "vhost-queue-messages-": "DELETE FROM queue_messages WHERE vhost = ?",
    "vhost-queues-": "DELETE FROM queues WHERE vhost = ?",
    "vhost-exchanges-": "DELETE FROM exchanges WHERE vhost = ?",
    "vhost-bindings-": "DELETE FROM bindings WHERE vhost = ?",
    "vhost-permissions-": "DELETE FROM permissions WHERE vhost = ?",
    "vhost-policies-": "DELETE FROM policies WHERE vhost = ?",
    "vhost-topic-permissions-": "DELETE FROM topic_permissions WHERE vhost = ?",
    "limits-": "DELETE FROM limits WHERE kind = ? AND owner = ?",
    "limit": "INSERT OR REPLACE INTO limits VALUES (?, ?, ?, ?)",
    "user": "INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?)",
    "user-": "DELETE FROM users WHERE name = ?",
    "user-permissions-": "DELETE FROM permissions WHERE user = ?",
    "permission": "INSERT OR REPLACE INTO permissions VALUES (?, ?, ?, ?, ?)",
    "permission-": "DELETE FROM permissions WHERE user = ? AND vhost = ?",
    "user-topic-permissions-": "DELETE FROM topic_permissions WHERE user = ?",
    "topic-permission": "INSERT OR REPLACE INTO topic_permissions VALUES (?, ?, ?, ?, ?)",
    "topic-permission-": "DELETE FROM topic_permissions WHERE user = ? AND vhost = ? "
    "AND exchange = ?",
    "policy": "INSERT OR REPLACE INTO policies VALUES (?, ?, ?, ?, ?, ?)",
    "policy-": "DELETE FROM policies WHERE vhost = ? AND name = ?",
    "exchange": "INSERT OR REPLACE INTO exchanges VALUES (?, ?, ?, ?, ?, ?)",
    "exchange-": "DELETE FROM exchanges WHERE vhost = ? AND name = ?",
    "queue": "INSERT OR REPLACE INTO queues VALUES (?, ?, ?, ?)",
    "queue-": "DELETE FROM queues WHERE vhost = ? AND name = ?",
    "queue-messages-": "DELETE FROM queue_messages WHERE vhost = ? AND queue = ?",
    "binding": "INSERT OR IGNORE INTO bindings VALUES (?, ?, ?, ?, ?, ?)",
    "bindings-to-": "DELETE FROM bindings WHERE vhost = ? AND destination_kind = ? "
    "AND destination = ?",
    "bindings-from-": "DELETE FROM bindings WHERE vhost = ? AND source = ?",
    "binding-": "DELETE FROM bindings WHERE vhost = ? AND source = ? AND destination_kind = ? "
    "AND destination = ? AND routing_key = ? AND arguments = ?",
    "message": "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
    "hold": "INSERT INTO held_messages VALUES (?, ?, ?, ?, ?)",
    "release": "DELETE FROM held_messages WHERE id = ?",
    "vhost-held-": "DELETE FROM held_messages WHERE vhost = ?",
    "message-": "DELETE FROM messages WHERE id = ?",
    "enqueue": "INSERT OR REPLACE INTO queue_messages VALUES (?, ?, ?, ?, ?, ?)",
    "delivered": "UPDATE queue_messages SET redelivered = ? "
    "WHERE vhost = ? AND queue = ? AND seq = ?",
    "dequeue": "DELETE FROM queue_messages WHERE vhost = ? AND queue = ? AND seq = ?",
}


class StoreError(Exception):
    """The data directory cannot be used; the message says why and what to do."""


@attrs.frozen
class Codec:
    """How arguments tables and message properties become bytes and back (from the protocol)."""

    encode_table: Callable[[dict[str, Any]], bytes]
    decode_table: Callable[[bytes], dict[str, Any]]
    encode_properties: Callable[[Any], bytes]
    decode_properties: Callable[[bytes], Any]
    # Encoded properties with one more header, an integer (a stream's x-stream-offset), without
    # decoding them; None when it cannot be done so (then they are encoded anew).
    with_long_header: Callable[[bytes, str, int], bytes | None] | None = None


@attrs.frozen
class StoredQueue:
    vhost: str
    name: str
    auto_delete: bool
    arguments: dict[str, Any]


@attrs.frozen
class StoredExchange:
    vhost: str
    name: str
    type: str
    auto_delete: bool
    internal: bool
    arguments: dict[str, Any]


@attrs.frozen
class StoredPolicy:
    vhost: str
    name: str
    pattern: str
    apply_to: str
    priority: int | float
    definition: dict[str, Any]


@attrs.frozen
class StoredBinding:
    vhost: str
    source: str
    destination_kind: str  # "queue" or "exchange"
    destination: str
    routing_key: str
    arguments: dict[str, Any]


@attrs.frozen
class StoredMessage:
    vhost: str
    queue: str
    seq: int
    message_id: int
    exchange: str
    routing_key: str
    properties: bytes
    body: bytes
    redelivered: bool


class Store:
    def __init__(self, directory: str | os.PathLike[str], codec: Codec) -> None:
        self.directory = Path(directory)
        self.codec = codec
        self.path = self.directory / STORE_FILE
        self._db = _open(self.path)
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        # Called when a first operation lands in an empty batch: the store's driver wakes up.
        self.on_pending: Callable[[], None] = _ignore
        # Message content recorded and not yet on disk: pending, and taken by the writer. While
        # it is over `backlog_limit` the store is `behind`, and publishers are paused.
        self.backlog_limit = BACKLOG_LIMIT
        self._pending_bytes = 0
        self._writing_bytes = 0
        self._op_seq = 0  # operations recorded so far
        self._taken_upto = 0  # operations handed to a writer
        self.durable_upto = 0  # operations known to be on disk
        self._next_message_id: int = (
            1 + (self._db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0])
        )
        self._next_held_id: int = (
            1 + self._db.execute("SELECT COALESCE(MAX(id), 0) FROM held_messages").fetchone()[0]
        )
        self.holders: dict[int, int] = {}  # see count_holders

    def close(self) -> None:
        self._db.close()

    # -- recording (synchronous, cheap) ----------------------------------------------------------

    def _record(self, kind: str, row: tuple[Any, ...]) -> int:
        if self._op_seq == self._taken_upto:
            self.on_pending()
        self._pending.append((kind, row))
        self._op_seq += 1
        return self._op_seq

    def mark(self) -> int:
        """An operation another writer carries out in this store's write cycle (a stream's
        log, written beside the batch): numbered like ours, so that whatever waits for
        `durable_upto` to reach it waits for that write too."""
        if self._op_seq == self._taken_upto:
            self.on_pending()
        self._op_seq += 1
        return self._op_seq

    def count_unwritten(self, size: int) -> None:
        """Message content another writer holds for this cycle (a stream's records): it counts
        towards `behind`, as the store's own does, until the cycle is written."""
        self._pending_bytes += size

    @property
    def last_op(self) -> int:
        return self._op_seq

    @property
    def unwritten_bytes(self) -> int:
        """Bytes of message content recorded and not yet on disk."""
        return self._pending_bytes + self._writing_bytes

    @property
    def behind(self) -> bool:
        """More message content waits for the disk than `backlog_limit`: publishers should
        wait (RabbitMQ's flow control does the same for its message store)."""
        return self._pending_bytes + self._writing_bytes >= self.backlog_limit

    @property
    def has_pending(self) -> bool:
        return self._op_seq > self._taken_upto

    def save_vhost(self, name: str, default_queue_type: str | None = None) -> None:
        self._record("vhost", (name, default_queue_type))

    def delete_vhost(self, name: str) -> None:
        for kind in (
            "vhost-queue-messages-",
            "vhost-queues-",
            "vhost-exchanges-",
            "vhost-bindings-",
            "vhost-permissions-",  # as RabbitMQ: a vhost made again later starts with none
            "vhost-policies-",
            "vhost-topic-permissions-",
            "vhost-held-",
        ):
            self._record(kind, (name,))
        self._record("limits-", ("vhost", name))
        self._record("vhost-", (name,))

    def save_user(self, name: str, password_hash: str, algorithm: str, tags: list[str]) -> None:
        self._record("user", (name, password_hash, algorithm, ",".join(tags)))

    def delete_user(self, name: str) -> None:
        self._record("user-permissions-", (name,))
        self._record("user-topic-permissions-", (name,))
        self._record("limits-", ("user", name))
        self._record("user-", (name,))

    def save_limits(self, kind: str, owner: str, limits: dict[str, int]) -> None:
        """The whole set of limits of a vhost or a user (`kind`), replacing what was kept."""
        self._record("limits-", (kind, owner))
        for name, value in limits.items():
            self._record("limit", (kind, owner, name, value))

    def save_permission(self, user: str, vhost: str, configure: str, write: str, read: str) -> None:
        self._record("permission", (user, vhost, configure, write, read))

    def delete_permission(self, user: str, vhost: str) -> None:
        self._record("permission-", (user, vhost))

    def save_topic_permission(
        self, user: str, vhost: str, exchange: str, write: str, read: str
    ) -> None:
        self._record("topic-permission", (user, vhost, exchange, write, read))

    def delete_topic_permission(self, user: str, vhost: str, exchange: str) -> None:
        self._record("topic-permission-", (user, vhost, exchange))

    def save_policy(
        self,
        vhost: str,
        name: str,
        pattern: str,
        apply_to: str,
        priority: int | float,
        definition: dict[str, Any],
    ) -> None:
        # JSON, as definitions files hold them: a policy's values are JSON values.
        row = (vhost, name, pattern, apply_to, json.dumps(priority), json.dumps(definition))
        self._record("policy", row)

    def delete_policy(self, vhost: str, name: str) -> None:
        self._record("policy-", (vhost, name))

    def save_exchange(
        self,
        vhost: str,
        name: str,
        type_name: str,
        auto_delete: bool,
        internal: bool,
        arguments: dict[str, Any],
    ) -> None:
        encoded = self.codec.encode_table(arguments)
        self._record("exchange", (vhost, name, type_name, auto_delete, internal, encoded))

    def delete_exchange(self, vhost: str, name: str) -> None:
        self._record("bindings-from-", (vhost, name))
        self._record("bindings-to-", (vhost, "exchange", name))
        self._record("exchange-", (vhost, name))

    def save_queue(
        self, vhost: str, name: str, auto_delete: bool, arguments: dict[str, Any]
    ) -> None:
        self._record("queue", (vhost, name, auto_delete, self.codec.encode_table(arguments)))

    def delete_queue(self, vhost: str, name: str) -> None:
        self._record("bindings-to-", (vhost, "queue", name))
        self._record("queue-messages-", (vhost, name))
        self._record("queue-", (vhost, name))

    def save_binding(
        self, vhost: str, source: str, kind: str, destination: str, key: str, args: dict[str, Any]
    ) -> None:
        self._record(
            "binding", (vhost, source, kind, destination, key, self.codec.encode_table(args))
        )

    def delete_binding(
        self, vhost: str, source: str, kind: str, destination: str, key: str, args: dict[str, Any]
    ) -> None:
        self._record(
            "binding-", (vhost, source, kind, destination, key, self.codec.encode_table(args))
        )

    def save_message(
        self,
        exchange: str,
        routing_key: str,
        properties: bytes,
        body: bytes,
        bcc: tuple[str, ...] = (),
    ) -> int:
        """Store a message's content once, however many queues hold it; returns its id.

        `bcc`: the keys of a BCC header, which is gone from the properties but still routes the
        message if it is dead-lettered.
        """
        message_id = self._next_message_id
        self._next_message_id += 1
        keys = json.dumps(list(bcc)) if bcc else None
        row = (message_id, _text(exchange), _text(routing_key), properties, body, keys)
        self._record("message", row)
        self._pending_bytes += len(properties) + len(body)
        return message_id

    def delete_message(self, message_id: int) -> None:
        self._record("message-", (message_id,))

    # Holders of stored content are counted on its `Message` object, except for content that
    # a queue paged out while others held it too: its count moves here (see Message.paged_out).

    def count_holders(self, message_id: int, holders: int) -> None:
        self.holders[message_id] = holders

    def add_holder(self, message_id: int) -> None:
        self.holders[message_id] += 1

    def drop_holder(self, message_id: int) -> None:
        """One holder fewer; the content goes with the last."""
        left = self.holders[message_id] - 1
        if left:
            self.holders[message_id] = left
        else:
            del self.holders[message_id]
            self.delete_message(message_id)

    def hold(self, vhost: str, exchange: str, release_at: float, message_id: int) -> int:
        """A delayed-message exchange holds a stored message until `release_at`; returns its id."""
        held_id = self._next_held_id
        self._next_held_id += 1
        self._record("hold", (held_id, vhost, exchange, release_at, message_id))
        return held_id

    def release(self, held_id: int) -> None:
        self._record("release", (held_id,))

    def enqueue(
        self,
        vhost: str,
        queue: str,
        seq: int,
        message_id: int,
        expires_at: float | None = None,
        delivered: int = 0,
    ) -> int:
        """A queue holds a stored message at position `seq`; `delivered`: how often it was
        delivered before (the queue's type decides whether that is a count or a flag)."""
        return self._record("enqueue", (vhost, queue, seq, message_id, delivered, expires_at))

    def mark_delivered(self, vhost: str, queue: str, seq: int, delivered: int = 1) -> None:
        """The entry at `seq` was delivered: after a restart it counts as `delivered` times."""
        self._record("delivered", (delivered, vhost, queue, seq))

    def dequeue(self, vhost: str, queue: str, seq: int) -> None:
        self._record("dequeue", (vhost, queue, seq))

    # -- writing (a worker thread; one batch at a time) ------------------------------------------

    def take_batch(self) -> tuple[list[tuple[str, tuple[Any, ...]]], int]:
        """The operations recorded since the last take, and the sequence number of the last."""
        batch, self._pending = self._pending, []
        self._taken_upto = self._op_seq
        self._writing_bytes += self._pending_bytes
        self._pending_bytes = 0
        return batch, self._op_seq

    def write_batch(self, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        """One transaction, one fsync. Safe to run in a thread: nothing else touches the db then."""
        if not batch:
            return
        db = self._db
        with db:  # commits, or rolls back on error
            for kind, rows in _runs(batch):
                db.executemany(_SQL[kind], rows)

    def batch_written(self, upto: int) -> None:
        self.durable_upto = max(self.durable_upto, upto)
        self._writing_bytes = 0

    def batch_failed(self, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        """The batch could not be written (the transaction was rolled back): it is pending again,
        ahead of what was recorded since, for the next write to try. Nothing that waits for it
        is told it is on disk meanwhile."""
        self._pending = batch + self._pending
        self._taken_upto = self.durable_upto
        self._pending_bytes += self._writing_bytes
        self._writing_bytes = 0

    def flush(self) -> None:
        """Write everything pending now, in this thread (start-up, shutdown, tests)."""
        batch, upto = self.take_batch()
        self.write_batch(batch)
        self.batch_written(upto)

    # -- recovery --------------------------------------------------------------------------------

    def vhosts(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT name FROM vhosts ORDER BY name")]

    def default_queue_types(self) -> dict[str, str]:
        """The vhosts that have a default queue type, and theirs."""
        rows = self._db.execute("SELECT name, default_queue_type FROM vhosts")
        return {name: kind for name, kind in rows if kind is not None}

    def users(self) -> list[tuple[str, str, str, list[str]]]:
        rows = self._db.execute("SELECT name, password_hash, algorithm, tags FROM users")
        return [(n, h, a, [t for t in tags.split(",") if t]) for n, h, a, tags in rows]

    def permissions(self) -> list[tuple[str, str, str, str, str]]:
        return list(self._db.execute("SELECT * FROM permissions"))

    def limits(self, kind: str) -> dict[str, dict[str, int]]:
        """The limits kept for vhosts or users (`kind`), by owner."""
        kept: dict[str, dict[str, int]] = {}
        rows = self._db.execute("SELECT owner, name, value FROM limits WHERE kind = ?", (kind,))
        for owner, name, value in rows:
            kept.setdefault(owner, {})[name] = value
        return kept

    def topic_permissions(self) -> list[tuple[str, str, str, str, str]]:
        """(user, vhost, exchange, write, read)."""
        return list(self._db.execute("SELECT * FROM topic_permissions"))

    def policies(self) -> list[StoredPolicy]:
        return [
            StoredPolicy(v, n, pattern, apply_to, json.loads(priority), json.loads(definition))
            for v, n, pattern, apply_to, priority, definition in self._db.execute(
                "SELECT * FROM policies ORDER BY vhost, name"
            )
        ]

    def exchanges(self) -> list[StoredExchange]:
        decode = self.codec.decode_table
        return [
            StoredExchange(v, n, t, bool(ad), bool(i), decode(a))
            for v, n, t, ad, i, a in self._db.execute("SELECT * FROM exchanges")
        ]

    def queues(self) -> list[StoredQueue]:
        decode = self.codec.decode_table
        return [
            StoredQueue(v, n, bool(ad), decode(a))
            for v, n, ad, a in self._db.execute("SELECT * FROM queues")
        ]

    def bindings(self) -> list[StoredBinding]:
        decode = self.codec.decode_table
        return [
            StoredBinding(v, s, kind, d, k, decode(a))
            for v, s, kind, d, k, a in self._db.execute("SELECT * FROM bindings")
        ]

    def queue_messages(
        self,
    ) -> Iterator[tuple[str, str, int, int, float | None, int, str, str, bytes, bytes, str | None]]:
        """Every stored queue entry in queue order, joined with its message's content."""
        for row in self._db.execute(
            "SELECT q.vhost, q.queue, q.seq, q.redelivered, q.expires_at, m.id, m.exchange, "
            "m.routing_key, "
            "m.properties, m.body, m.bcc FROM queue_messages q JOIN messages m ON m.id = q.message "
            "ORDER BY q.vhost, q.queue, q.seq"
        ):
            if type(row[7]) is not str or type(row[6]) is not str:
                row = (*row[:6], _from_text(row[6]), _from_text(row[7]), *row[8:])
            yield row

    def shared_contents(self) -> dict[int, int]:
        """Stored content that more than one queue entry or delayed hold holds, and how many."""
        return dict(
            self._db.execute(
                "SELECT message, COUNT(*) FROM (SELECT message FROM queue_messages "
                "UNION ALL SELECT message FROM held_messages) GROUP BY message HAVING COUNT(*) > 1"
            )
        )

    def held_messages(
        self,
    ) -> list[tuple[int, str, str, float, int, str, str, bytes, bytes, str | None]]:
        """Messages delayed-message exchanges hold, with their content, by release time."""
        return [
            (*row[:5], _from_text(row[5]), _from_text(row[6]), *row[7:])
            for row in self._db.execute(
                "SELECT h.id, h.vhost, h.exchange, h.release_at, m.id, m.exchange, m.routing_key, "
                "m.properties, m.body, m.bcc "
                "FROM held_messages h JOIN messages m ON m.id = h.message "
                "ORDER BY h.release_at, h.id"
            )
        ]

    def drop_orphans(self) -> None:
        """Messages no queue or exchange holds any more (their last queue was deleted) can go."""
        with self._db:
            self._db.execute(
                "DELETE FROM messages WHERE id NOT IN (SELECT message FROM queue_messages) "
                "AND id NOT IN (SELECT message FROM held_messages)"
            )


def stored_bcc(keys: str | None) -> tuple[str, ...]:
    """The BCC keys `save_message` kept (NULL for none)."""
    return tuple(json.loads(keys)) if keys else ()


def _ignore() -> None:
    pass


def _text(text: str) -> str | bytes:
    """A string for a TEXT column. SQLite takes only UTF-8 there, and a routing key may hold any
    octets (those that are not UTF-8 as surrogate escapes): such a key is stored as the BLOB of
    its octets, which `_from_text` turns back into the same string."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def _from_text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def _runs(batch: list[tuple[str, tuple[Any, ...]]]) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Consecutive operations of one kind, so each run is a single executemany."""
    for kind, ops in itertools.groupby(batch, key=lambda op: op[0]):
        yield kind, [row for _, row in ops]


# What brings a store of each older schema up to the next one (new tables come from _SCHEMA).
_MIGRATIONS = {
    1: ("ALTER TABLE queue_messages ADD COLUMN expires_at REAL",),
    2: ("ALTER TABLE messages ADD COLUMN bcc TEXT",),  # and the new policies table
    3: (),  # the new topic_permissions table
    4: ("ALTER TABLE vhosts ADD COLUMN default_queue_type TEXT",),
    5: (),  # the new limits table
}


def _migrate(db: sqlite3.Connection, path: Path, version: int) -> None:
    if version > SCHEMA_VERSION or any(
        v not in _MIGRATIONS for v in range(version, SCHEMA_VERSION)
    ):
        raise StoreError(f"{path} has schema {version}; this amqp-lite reads {SCHEMA_VERSION}")
    with db:  # one transaction: a store is migrated completely or not at all
        for step in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[step]:
                db.execute(statement)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.isolation_level = "DEFERRED"
        # WAL: a torn last write is rolled back on open; FULL: every commit is fsynced, so a
        # confirm sent after a commit means the message is on disk.
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{path}: SQLite refused WAL mode (got {mode!r})")
        db.execute("PRAGMA synchronous=FULL")
        problems = db.execute("PRAGMA quick_check").fetchall()
        if problems != [("ok",)]:
            raise StoreError(
                f"{path} is damaged ({problems[0][0]}); move it away to start empty, "
                "or restore a backup"
            )
        # One transaction: a new store costs one fsync, not one per table and index.
        db.executescript(f"BEGIN; {_SCHEMA} COMMIT;")
        version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if version is None:
            with db:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        else:
            _migrate(db, path, int(version[0]))
    except sqlite3.DatabaseError as error:
        raise StoreError(
            f"{path} is not a usable amqp-lite store ({error}); move it away to start empty"
        ) from None
    return db
