"""How the broker introduces itself in connection.start: its server properties.

Clients branch on `product` and `version`: kombu (and so Celery) takes RabbitMQ 3.3 to 3.x to
mean basic.qos global=true is per channel and global=false per consumer, and anything else to
follow the spec, where it then raises a per-consumer prefetch that an existing consumer never
sees. amqp-lite implements RabbitMQ 3.10.8's semantics, so it names that product and version;
`platform` and `information` say what is really answering. The README says more.
"""

from __future__ import annotations

import platform
from typing import Any

from amqp_lite.version import __version__

# The RabbitMQ release whose behaviour amqp-lite follows, frames and texts alike.
RABBITMQ_VERSION = "3.10.8"

# What RabbitMQ 3.10.8 advertises, in its order; clients (rabbitpy, py-amqp, pika) look these up.
CAPABILITIES: dict[str, bool] = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}


def server_properties(cluster_name: str) -> dict[str, Any]:
    return {
        "capabilities": dict(CAPABILITIES),
        "cluster_name": cluster_name,
        "copyright": "Copyright (c) the amqp-lite authors",
        "information": (
            f"amqp-lite {__version__}, an AMQP 0-9-1 broker that behaves as RabbitMQ "
            f"{RABBITMQ_VERSION}. Licensed under the MIT license."
        ),
        "platform": f"amqp-lite {__version__} on Python {platform.python_version()}",
        "product": "RabbitMQ",
        "version": RABBITMQ_VERSION,
    }
