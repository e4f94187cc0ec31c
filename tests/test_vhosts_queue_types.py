"""The queue-type registry (vhosts.queue_types): how a declaration picks its class, and that a
type plugs in by its class alone, as the module's docstring says.

The texts are RabbitMQ 3.10.8's (checked on it for classic and quorum queues).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest

from vhosts import Node
from vhosts.classic_queue import ClassicQueue, PriorityQueue
from vhosts.errors import PreconditionFailed
from vhosts.policies import Policy
from vhosts.queue import Queue
from vhosts.queue_types import QUEUE_TYPES, queue_class

OWNER = object()


class LogQueue(Queue):
    """A made-up type: takes x-max-age and x-max-length-bytes only, never server-named,
    durable only, and a policy with max-length keeps off it."""

    type_name = "log"
    rabbit_module = "rabbit_log_queue"
    declare_arguments = ("x-max-length-bytes", "x-queue-type", "x-max-age")
    consume_arguments = ("x-stream-offset",)
    unsupported_policies = frozenset({"max-length"})
    server_named = False
    made: ClassVar[list[LogQueue]] = []

    @classmethod
    def check_properties(
        cls, *, durable: bool, exclusive: bool, auto_delete: bool, description: str
    ) -> None:
        if not durable:
            raise PreconditionFailed(f"invalid property 'non-durable' for {description}")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        LogQueue.made.append(self)


@pytest.fixture
def log_type() -> Iterator[type[LogQueue]]:
    QUEUE_TYPES[LogQueue.type_name] = LogQueue
    LogQueue.made.clear()
    yield LogQueue
    del QUEUE_TYPES[LogQueue.type_name]


def refusal(declare: Any) -> str:
    with pytest.raises(PreconditionFailed) as caught:
        declare()
    return caught.value.text


def test_no_type_is_classic_and_max_priority_makes_the_priority_variant() -> None:
    vhost = Node().vhost("/")
    assert type(vhost.declare_queue("plain", OWNER)) is ClassicQueue
    assert type(vhost.declare_queue("named", OWNER, arguments={"x-queue-type": "classic"})) is (
        ClassicQueue
    )
    assert type(vhost.declare_queue("p", OWNER, arguments={"x-max-priority": 5})) is PriorityQueue
    assert queue_class({}) is ClassicQueue


@pytest.mark.parametrize(
    ("value", "reason"),
    [("bogus", "\"unsupported queue type 'bogus'\""), (5, "{unacceptable_type,signedint}")],
)
def test_an_unknown_type_is_refused(value: Any, reason: str) -> None:
    vhost = Node().vhost("/")
    text = refusal(lambda: vhost.declare_queue("q", OWNER, arguments={"x-queue-type": value}))
    assert text == f"invalid arg 'x-queue-type' for queue 'q' in vhost '/': {reason}"


def test_a_type_plugs_in_by_its_class(log_type: type[LogQueue]) -> None:
    vhost = Node().vhost("/")
    queue = vhost.declare_queue("log", OWNER, durable=True, arguments={"x-queue-type": "log"})
    assert type(queue) is log_type and log_type.made == [queue]
    # Its checks: the arguments it takes pass, other types' are refused with its module's name.
    vhost.declare_queue("sized", OWNER, durable=True, arguments={"x-queue-type": "log"})
    text = refusal(
        lambda: vhost.declare_queue(
            "q", OWNER, durable=True, arguments={"x-queue-type": "log", "x-max-priority": 1}
        )
    )
    assert text == (
        "invalid arg 'x-max-priority' for queue 'q' in vhost '/' of queue type rabbit_log_queue"
    )
    text = refusal(lambda: vhost.declare_queue("q", OWNER, arguments={"x-queue-type": "log"}))
    assert text == "invalid property 'non-durable' for queue 'q' in vhost '/'"
    text = refusal(lambda: vhost.check_server_named("amq.gen-1", {"x-queue-type": "log"}, **_FLAGS))
    assert text == "Cannot declare a server-named queue for type rabbit_log_queue"
    # A redeclare compares what it takes, in its order.
    text = refusal(
        lambda: vhost.declare_queue(
            "log", OWNER, durable=True, arguments={"x-queue-type": "log", "x-max-age": "1D"}
        )
    )
    assert text.startswith("inequivalent arg 'x-max-age' for queue 'log' in vhost '/'")
    # Its consumers' arguments: its own pass, other types' are refused.
    assert queue.validate_consume_arguments({"x-stream-offset": "first"}) == 0
    text = refusal(lambda: queue.validate_consume_arguments({"x-priority": 1}))
    assert (
        text
        == "invalid arg 'x-priority' for queue 'log' in vhost '/' of queue type rabbit_log_queue"
    )


_FLAGS: Mapping[str, bool] = {"durable": True, "exclusive": False, "auto_delete": False}


def test_a_policy_with_a_key_the_type_cannot_take_keeps_off_its_queues(
    log_type: type[LogQueue],
) -> None:
    node = Node()
    node.set_policy(Policy("/", "capped", ".*", "queues", 0, {"max-length": 1}))
    vhost = node.vhost("/")
    classic = vhost.declare_queue("c", OWNER)
    log = vhost.declare_queue("l", OWNER, durable=True, arguments={"x-queue-type": "log"})
    assert classic.settings.max_length == 1 and vhost.policy_for("queue", "c") is not None
    assert log.settings.max_length is None and vhost.policy_for("queue", "l") is None
