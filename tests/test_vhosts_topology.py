"""One way to apply a topology: `apply_topology`, under the rules of recovery or of a file.

The definitions loader's rules are tested through its files (test_definitions.py); here, the
rules recovery applies, and that what recovery rebuilds from the store is what was applied.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_lite.storage import open_store
from tests.conftest import examples
from vhosts import Node, Permission
from vhosts.definitions_export import export_definitions
from vhosts.errors import AccessRefused
from vhosts.node import RESTORING
from vhosts.policies import Policy
from vhosts.topology import (
    BindingSpec,
    ExchangeSpec,
    PermissionSpec,
    PolicySpec,
    QueueSpec,
    Rules,
    Topology,
    UserSpec,
    VhostSpec,
    apply_topology,
)


def _blank() -> Node:
    return Node(vhost_names=(), guest=False)


def test_restoring_skips_what_the_store_names_but_no_longer_has() -> None:
    node = _blank()
    topology = Topology(
        vhosts=(VhostSpec("v"),),
        permissions=(PermissionSpec("nobody", "v", Permission()),),
        bindings=(BindingSpec("v", "amq.direct", "gone", "queue", "k", {}),),
    )
    apply_topology(node, topology, RESTORING)
    assert not len(node.vhost("v").exchanges["amq.direct"].router)


def test_restoring_builds_the_server_named_queues_a_declaration_refuses() -> None:
    topology = Topology(
        vhosts=(VhostSpec("v"),), queues=(QueueSpec("v", "amq.gen-abc", True, False, {}),)
    )
    restored = _blank()
    apply_topology(restored, topology, RESTORING)
    assert restored.vhost("v").queues["amq.gen-abc"].durable
    with pytest.raises(AccessRefused):
        apply_topology(_blank(), topology, Rules())


def test_a_restored_vhost_gives_guest_only_the_permissions_it_had() -> None:
    """Vhosts come before users: a vhost guest was kept out of stays closed to it."""
    topology = Topology(
        vhosts=(VhostSpec("/"), VhostSpec("closed")),
        users=(UserSpec("guest", ""),),
        permissions=(PermissionSpec("guest", "/", Permission()),),
    )
    node = _blank()
    apply_topology(node, topology, RESTORING)
    guest = node.users.get("guest")
    assert guest is not None and sorted(guest.permissions) == ["/"]


# -- what recovery rebuilds is what was applied ---------------------------------------------------

VHOSTS = ("v1", "v2")
EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers", "x-consistent-hash")


@st.composite
def durable_topologies(draw: st.DrawFn) -> Topology:
    """Durable things only: those are what the store keeps."""
    users = tuple(
        UserSpec(name, "", tags=draw(st.lists(st.sampled_from(("administrator", "x")))))
        for name in draw(st.sets(st.sampled_from(("ann", "bob")), max_size=2))
    )
    permissions = tuple(
        PermissionSpec(user.name, vhost, Permission(".*", draw(st.sampled_from(("", "^a"))), ""))
        for user in users
        for vhost in draw(st.sets(st.sampled_from(VHOSTS)))
    )
    policies = tuple(
        PolicySpec(Policy(vhost, "p", "^q", "queues", 1, {"max-length": draw(st.integers(1, 9))}))
        for vhost in draw(st.sets(st.sampled_from(VHOSTS)))
    )
    exchanges = []
    for vhost in VHOSTS:
        for name in draw(st.sets(st.sampled_from(("e1", "e2", "e3")))):
            kind = draw(st.sampled_from(EXCHANGE_TYPES))
            arguments: dict[str, Any] = draw(st.sampled_from(({}, {"alternate-exchange": "e1"})))
            exchanges.append(ExchangeSpec(vhost, name, kind, True, False, False, arguments))
    queues = [
        QueueSpec(vhost, name, True, False, draw(st.sampled_from(({}, {"x-max-priority": 5}))))
        for vhost in VHOSTS
        for name in draw(st.sets(st.sampled_from(("q1", "q2", "q3"))))
    ]
    bindings = []
    for e in exchanges:
        key = "1" if e.type == "x-consistent-hash" else draw(st.sampled_from(("", "a", "a.#")))
        arguments = {"x-match": "any", "h": 1} if e.type == "headers" else {}
        targets = [("queue", q.name) for q in queues if q.vhost == e.vhost]
        targets += [("exchange", x.name) for x in exchanges if x.vhost == e.vhost]
        for kind, name in draw(st.lists(st.sampled_from(targets), max_size=2)) if targets else ():
            bindings.append(BindingSpec(e.vhost, e.name, name, kind, key, arguments))
    return Topology(
        tuple(VhostSpec(v) for v in VHOSTS),
        users,
        permissions,
        policies,
        tuple(exchanges),
        tuple(queues),
        tuple(bindings),
    )


@settings(max_examples=examples(25))
@given(topology=durable_topologies())
def test_recovery_rebuilds_the_topology_that_was_applied(topology: Topology) -> None:
    with tempfile.TemporaryDirectory() as directory:
        node = Node(vhost_names=(), guest=False, store=open_store(Path(directory)))
        apply_topology(node, topology, Rules())
        applied = export_definitions(node)
        assert node.store is not None
        node.store.flush()
        node.store.close()
        recovered = Node(vhost_names=(), guest=False, store=open_store(Path(directory)))
        assert recovered.store is not None
        recovered.store.close()
    assert export_definitions(recovered) == applied
