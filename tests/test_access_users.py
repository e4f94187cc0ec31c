"""Users made and changed at runtime, with RabbitMQ 3.10.8's password hashing.

RabbitMQ hashes a password given at runtime with its password_hashing_module (sha256 unless
configured; sha512 may be), keeps the algorithm with the user, and on change_password hashes the
new password with the configured module whatever made the old hash (an md5 user imported from an
old node becomes sha256: observed on 3.10.8). Hashes made here were imported into RabbitMQ
3.10.8 and logged in there (sha512 and md5), and a hash RabbitMQ made logs in here.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pika
import pytest
from pika.exceptions import ProbableAuthenticationError

from amqp_lite import run_in_thread
from amqp_lite.admin import Admin
from amqp_lite.storage import open_store
from vhosts import Node
from vhosts.users import hash_password, password_matches

SHA256 = "rabbit_password_hashing_sha256"
SHA512 = "rabbit_password_hashing_sha512"
MD5 = "rabbit_password_hashing_md5"

# `rabbitmqctl add_user tls-u pw` on RabbitMQ 3.10.8, as its export_definitions wrote it.
RABBITMQ_HASH = "Tq770j1zUET6Gd9F3i7na9tofqRa3iTpt0lwAtD4myfuHQ49"


def _logs_in(broker, user: str, password: str) -> bool:
    url = broker.url.replace("guest:guest", f"{user}:{password}")
    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
    except ProbableAuthenticationError:
        return False
    return True


def _digest_size(password_hash: str) -> int:
    return len(base64.b64decode(password_hash)) - 4  # after the 4-octet salt


def test_a_hash_rabbitmq_made_is_a_hash_we_read() -> None:
    assert password_matches(RABBITMQ_HASH, "pw", SHA256)
    assert not password_matches(RABBITMQ_HASH, "pW", SHA256)


def test_a_user_added_at_runtime_is_hashed_with_sha256_by_default(broker) -> None:
    broker.admin.add_user("alice", "secret", tags=["management"])
    broker.admin.set_permissions("alice", "/")
    [alice] = [u for u in broker.admin.users() if u.name == "alice"]
    assert alice.hashing_algorithm == SHA256 and alice.tags == ("management",)
    assert _digest_size(alice.password_hash) == 32
    assert _logs_in(broker, "alice", "secret") and not _logs_in(broker, "alice", "wrong")


def test_a_broker_may_hash_with_sha512() -> None:
    with run_in_thread(password_hashing="sha512") as broker:
        broker.admin.add_user("alice", "secret")
        broker.admin.set_permissions("alice", "/")
        users = {u.name: u for u in broker.admin.users()}
        assert users["alice"].hashing_algorithm == users["guest"].hashing_algorithm == SHA512
        assert _digest_size(users["alice"].password_hash) == 64
        assert _logs_in(broker, "alice", "secret")
        assert _logs_in(broker, "guest", "guest")


def test_an_unknown_hashing_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown password hashing algorithm 'sha1'"):
        run_in_thread(password_hashing="sha1").__enter__()


def test_a_changed_password_is_hashed_as_the_node_hashes_now(broker) -> None:
    # An md5 user, as an export from RabbitMQ before 3.6 brings one.
    broker.admin.add_user(
        "old", password_hash=hash_password("simon", algorithm=MD5), hashing_algorithm=MD5
    )
    broker.admin.set_permissions("old", "/")
    assert _logs_in(broker, "old", "simon")
    broker.admin.change_password("old", "garfunkel")
    [old] = [u for u in broker.admin.users() if u.name == "old"]
    assert old.hashing_algorithm == SHA256
    assert _logs_in(broker, "old", "garfunkel") and not _logs_in(broker, "old", "simon")


def test_a_cleared_password_logs_in_with_none(broker) -> None:
    broker.admin.add_user("alice", "secret")
    broker.admin.set_permissions("alice", "/")
    broker.admin.clear_password("alice")
    assert not _logs_in(broker, "alice", "secret")
    assert not _logs_in(broker, "alice", "")


def test_users_keep_their_tags_algorithm_and_password_across_restarts(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    admin = Admin(Node(store=store, password_hashing="sha512"))
    admin.add_user("alice", "secret", tags=["administrator", "impersonator"])
    admin.add_user("robot")  # no password: EXTERNAL only
    store.flush()
    store.close()
    store = open_store(tmp_path)
    node = Node(store=store)
    alice, robot = node.users.get("alice"), node.users.get("robot")
    assert alice is not None and robot is not None
    assert (alice.tags, alice.hashing_algorithm) == (["administrator", "impersonator"], SHA512)
    assert alice.check_password("secret")
    assert robot.password_hash == "" and not robot.check_password("")
    store.close()


def test_a_deleted_guest_stays_deleted_across_restarts(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    node = Node(store=store)
    assert node.users.get("guest") is not None  # a new store: the default user is made
    admin = Admin(node)
    admin.add_user("admin", "secret", tags=["administrator"])
    admin.delete_user("guest")
    store.flush()
    store.close()
    store = open_store(tmp_path)
    node = Node(store=store)
    assert node.users.get("guest") is None
    assert node.users.get("admin") is not None
    store.close()
