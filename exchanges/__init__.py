"""Pure routing for AMQP exchanges: who gets a message, and why.

Synchronous, I/O-free and independent of the broker: a Router per exchange holds its
bindings and answers ``route`` on every publish.
"""

from exchanges.base import InvalidBinding, Router
from exchanges.consistent_hash import ConsistentHashRouter, InvalidArguments
from exchanges.direct import DirectRouter
from exchanges.explain import BindingVerdict
from exchanges.fanout import FanoutRouter
from exchanges.headers import HeadersRouter
from exchanges.topic import TopicRouter

ROUTERS: dict[str, type[Router]] = {
    router.type_name: router
    for router in (DirectRouter, FanoutRouter, TopicRouter, HeadersRouter, ConsistentHashRouter)
}

__all__ = [
    "ROUTERS",
    "BindingVerdict",
    "ConsistentHashRouter",
    "DirectRouter",
    "FanoutRouter",
    "HeadersRouter",
    "InvalidArguments",
    "InvalidBinding",
    "Router",
    "TopicRouter",
]
