"""What the broker tells Prometheus, under rabbitmq_prometheus's names, types and HELP texts.

Every family here is one RabbitMQ 3.10.8 exposes, with its name, type, help text and (per
object) label names, so Grafana dashboards and alerts written for RabbitMQ find their series.
Families about Erlang itself (reductions, mnesia, Raft, the Erlang VM) have no counterpart and
are left out rather than reported as zeros.

As RabbitMQ does by default, `/metrics` sums the per-object families (queues, channels,
connections) over all objects, and `/metrics/per-object` gives one sample per object.
"""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from amqp_lite.identity import RABBITMQ_VERSION
from amqp_lite.prometheus.text import Family, Labels
from amqp_lite.resources import resident_memory
from amqp_lite.version import __version__
from vhosts.counters import MessageCounts
from vhosts.queue import Queue
from vhosts.queue_types import QUEUE_TYPES
from vhosts.vhost import VirtualHost

if TYPE_CHECKING:
    from amqp_lite.admin import Admin
    from amqp_lite.management.stats import Stats

COUNTER, GAUGE, UNTYPED = "counter", "gauge", "untyped"

# name: (type, help), RabbitMQ 3.10.8's.
SPECS: dict[str, tuple[str, str]] = {
    "process_start_time_seconds": (GAUGE, "Start time of the process since unix epoch in seconds."),
    "rabbitmq_alarms_file_descriptor_limit": (
        UNTYPED,
        "is 1 if file descriptor limit alarm is in effect",
    ),
    "rabbitmq_alarms_free_disk_space_watermark": (
        UNTYPED,
        "is 1 if free disk space watermark alarm is in effect",
    ),
    "rabbitmq_alarms_memory_used_watermark": (
        UNTYPED,
        "is 1 if VM memory watermark alarm is in effect",
    ),
    "rabbitmq_connections_opened_total": (COUNTER, "Total number of connections opened"),
    "rabbitmq_connections_closed_total": (
        COUNTER,
        "Total number of connections closed or terminated",
    ),
    "rabbitmq_channels_opened_total": (COUNTER, "Total number of channels opened"),
    "rabbitmq_channels_closed_total": (COUNTER, "Total number of channels closed"),
    "rabbitmq_queues_declared_total": (COUNTER, "Total number of queues declared"),
    "rabbitmq_queues_created_total": (COUNTER, "Total number of queues created"),
    "rabbitmq_queues_deleted_total": (COUNTER, "Total number of queues deleted"),
    "rabbitmq_process_open_fds": (GAUGE, "Open file descriptors"),
    "rabbitmq_process_open_tcp_sockets": (GAUGE, "Open TCP sockets"),
    "rabbitmq_process_resident_memory_bytes": (GAUGE, "Memory used in bytes"),
    "rabbitmq_disk_space_available_bytes": (GAUGE, "Disk space available in bytes"),
    "rabbitmq_process_max_fds": (GAUGE, "Open file descriptors limit"),
    "rabbitmq_process_max_tcp_sockets": (GAUGE, "Open TCP sockets limit"),
    "rabbitmq_resident_memory_limit_bytes": (GAUGE, "Memory high watermark in bytes"),
    "rabbitmq_disk_space_available_limit_bytes": (
        GAUGE,
        "Free disk space low watermark in bytes",
    ),
    "rabbitmq_queue_messages_ready": (GAUGE, "Messages ready to be delivered to consumers"),
    "rabbitmq_queue_messages_unacked": (
        GAUGE,
        "Messages delivered to consumers but not yet acknowledged",
    ),
    "rabbitmq_queue_messages": (
        GAUGE,
        "Sum of ready and unacknowledged messages - total queue depth",
    ),
    "rabbitmq_queue_consumers": (GAUGE, "Consumers on a queue"),
    "rabbitmq_queue_messages_ram": (GAUGE, "Ready and unacknowledged messages stored in memory"),
    "rabbitmq_queue_messages_ram_bytes": (
        GAUGE,
        "Size of ready and unacknowledged messages stored in memory",
    ),
    "rabbitmq_queue_messages_ready_ram": (GAUGE, "Ready messages stored in memory"),
    "rabbitmq_queue_messages_paged_out": (GAUGE, "Messages paged out to disk"),
    "rabbitmq_queue_messages_paged_out_bytes": (
        GAUGE,
        "Size in bytes of messages paged out to disk",
    ),
    "rabbitmq_queue_messages_unacked_ram": (GAUGE, "Unacknowledged messages stored in memory"),
    "rabbitmq_queue_messages_bytes": (
        GAUGE,
        "Size in bytes of ready and unacknowledged messages",
    ),
    "rabbitmq_queue_messages_ready_bytes": (GAUGE, "Size in bytes of ready messages"),
    "rabbitmq_queue_messages_unacked_bytes": (
        GAUGE,
        "Size in bytes of all unacknowledged messages",
    ),
    "rabbitmq_channel_consumers": (GAUGE, "Consumers on a channel"),
    "rabbitmq_channel_messages_unacked": (GAUGE, "Delivered but not yet acknowledged messages"),
    "rabbitmq_channel_messages_unconfirmed": (GAUGE, "Published but not yet confirmed messages"),
    "rabbitmq_channel_messages_uncommitted": (
        GAUGE,
        "Messages received in a transaction but not yet committed",
    ),
    "rabbitmq_channel_acks_uncommitted": (
        GAUGE,
        "Message acknowledgements in a transaction not yet committed",
    ),
    "rabbitmq_consumer_prefetch": (GAUGE, "Limit of unacknowledged messages for each consumer"),
    "rabbitmq_channel_prefetch": (
        GAUGE,
        "Total limit of unacknowledged messages for all consumers on a channel",
    ),
    "rabbitmq_channel_messages_published_total": (
        COUNTER,
        "Total number of messages published into an exchange on a channel",
    ),
    "rabbitmq_channel_messages_confirmed_total": (
        COUNTER,
        "Total number of messages published into an exchange and confirmed on the channel",
    ),
    "rabbitmq_channel_messages_unroutable_returned_total": (
        COUNTER,
        "Total number of messages published as mandatory into an exchange and returned to the "
        "publisher as unroutable",
    ),
    "rabbitmq_channel_messages_unroutable_dropped_total": (
        COUNTER,
        "Total number of messages published as non-mandatory into an exchange and dropped as "
        "unroutable",
    ),
    "rabbitmq_channel_get_ack_total": (
        COUNTER,
        "Total number of messages fetched with basic.get in manual acknowledgement mode",
    ),
    "rabbitmq_channel_get_total": (
        COUNTER,
        "Total number of messages fetched with basic.get in automatic acknowledgement mode",
    ),
    "rabbitmq_channel_messages_delivered_ack_total": (
        COUNTER,
        "Total number of messages delivered to consumers in manual acknowledgement mode",
    ),
    "rabbitmq_channel_messages_delivered_total": (
        COUNTER,
        "Total number of messages delivered to consumers in automatic acknowledgement mode",
    ),
    "rabbitmq_channel_messages_redelivered_total": (
        COUNTER,
        "Total number of messages redelivered to consumers",
    ),
    "rabbitmq_channel_messages_acked_total": (
        COUNTER,
        "Total number of messages acknowledged by consumers",
    ),
    "rabbitmq_channel_get_empty_total": (
        COUNTER,
        "Total number of times basic.get operations fetched no message",
    ),
    "rabbitmq_connection_incoming_bytes_total": (
        COUNTER,
        "Total number of bytes received on a connection",
    ),
    "rabbitmq_connection_outgoing_bytes_total": (
        COUNTER,
        "Total number of bytes sent on a connection",
    ),
    "rabbitmq_connection_incoming_packets_total": (
        COUNTER,
        "Total number of packets received on a connection",
    ),
    "rabbitmq_connection_outgoing_packets_total": (
        COUNTER,
        "Total number of packets sent on a connection",
    ),
    "rabbitmq_connection_channels": (GAUGE, "Channels on a connection"),
    "rabbitmq_queue_messages_published_total": (
        COUNTER,
        "Total number of messages published to queues",
    ),
    "rabbitmq_connections": (GAUGE, "Connections currently open"),
    "rabbitmq_channels": (GAUGE, "Channels currently open"),
    "rabbitmq_consumers": (GAUGE, "Consumers currently connected"),
    "rabbitmq_queues": (GAUGE, "Queues available"),
    "rabbitmq_build_info": (UNTYPED, "RabbitMQ & Erlang/OTP version info"),
    "rabbitmq_identity_info": (UNTYPED, "RabbitMQ node & cluster identity info"),
    "rabbitmq_global_consumers": (GAUGE, "Current number of consumers"),
    "rabbitmq_global_messages_acknowledged_total": (
        COUNTER,
        "Total number of messages acknowledged by consumers",
    ),
    "rabbitmq_global_messages_confirmed_total": (
        COUNTER,
        "Total number of messages confirmed to publishers",
    ),
    "rabbitmq_global_messages_delivered_consume_auto_ack_total": (
        COUNTER,
        "Total number of messages delivered to consumers using basic.consume with automatic "
        "acknowledgment",
    ),
    "rabbitmq_global_messages_delivered_consume_manual_ack_total": (
        COUNTER,
        "Total number of messages delivered to consumers using basic.consume with manual "
        "acknowledgment",
    ),
    "rabbitmq_global_messages_delivered_get_auto_ack_total": (
        COUNTER,
        "Total number of messages delivered to consumers using basic.get with automatic "
        "acknowledgment",
    ),
    "rabbitmq_global_messages_delivered_get_manual_ack_total": (
        COUNTER,
        "Total number of messages delivered to consumers using basic.get with manual "
        "acknowledgment",
    ),
    "rabbitmq_global_messages_delivered_total": (
        COUNTER,
        "Total number of messages delivered to consumers",
    ),
    "rabbitmq_global_messages_get_empty_total": (
        COUNTER,
        "Total number of times basic.get operations fetched no message",
    ),
    "rabbitmq_global_messages_received_confirm_total": (
        COUNTER,
        "Total number of messages received from publishers expecting confirmations",
    ),
    "rabbitmq_global_messages_received_total": (
        COUNTER,
        "Total number of messages received from publishers",
    ),
    "rabbitmq_global_messages_redelivered_total": (
        COUNTER,
        "Total number of messages redelivered to consumers",
    ),
    "rabbitmq_global_messages_routed_total": (
        COUNTER,
        "Total number of messages routed to queues or streams",
    ),
    "rabbitmq_global_messages_unroutable_dropped_total": (
        COUNTER,
        "Total number of messages published as non-mandatory into an exchange and dropped as "
        "unroutable",
    ),
    "rabbitmq_global_messages_unroutable_returned_total": (
        COUNTER,
        "Total number of messages published as mandatory into an exchange and returned to the "
        "publisher as unroutable",
    ),
    "rabbitmq_global_publishers": (GAUGE, "Current number of publishers"),
}

PROTOCOL = (("protocol", "amqp091"),)
# The queue types RabbitMQ 3.10.8 always reports, with the modules that name them.
RABBITMQ_QUEUE_TYPES = ("rabbit_classic_queue", "rabbit_quorum_queue", "rabbit_stream_queue")

Sample = tuple[Labels, float]

_AGGREGATED_ONLY = ("process_start_time_seconds", "rabbitmq_alarms_")


class Metrics:
    """Reads the broker at scrape time; keeps only what outlives the objects it counts."""

    def __init__(self, admin: Admin, stats: Stats) -> None:
        self.admin = admin
        self.stats = stats  # message counts of channels, closed ones included, and churn
        self.started_at = time.time()
        # Deliveries, gets and acks of deleted queues, by queue type: global counters never fall.
        self._retired: defaultdict[str, MessageCounts] = defaultdict(MessageCounts)
        self._unsubscribe = admin.node.events.queue_deleted.subscribe(self._queue_deleted)

    def close(self) -> None:
        self._unsubscribe()

    def _queue_deleted(self, queue: Queue) -> None:
        self._retired[queue.rabbit_module].add(queue.counts)

    def families(self, *, per_object: bool = False) -> list[Family]:
        objects = self._object_families()
        if not per_object:
            objects = [_summed(family) for family in objects]
        node = self._node_families()
        if per_object:  # RabbitMQ's per-object endpoint leaves out these two collectors
            node = (f for f in node if not f.name.startswith(_AGGREGATED_ONLY))
        return [*node, *objects, *self._global_families()]

    # -- the node --------------------------------------------------------------------------------

    def _node_families(self) -> Iterator[Family]:
        figures = self.admin.resources()
        churn = self.stats.churn
        server = self.admin.server
        fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        yield _family("process_start_time_seconds", [((), int(self.started_at))])
        yield _family("rabbitmq_alarms_file_descriptor_limit", [((), 0)])
        disk_alarm, memory_alarm = int(figures.disk_free_alarm), int(figures.mem_alarm)
        yield _family("rabbitmq_alarms_free_disk_space_watermark", [((), disk_alarm)])
        yield _family("rabbitmq_alarms_memory_used_watermark", [((), memory_alarm)])
        for name, event in (
            ("rabbitmq_connections_opened_total", "connection_created"),
            ("rabbitmq_connections_closed_total", "connection_closed"),
            ("rabbitmq_channels_opened_total", "channel_created"),
            ("rabbitmq_channels_closed_total", "channel_closed"),
            ("rabbitmq_queues_declared_total", "queue_created"),
            ("rabbitmq_queues_created_total", "queue_created"),
            ("rabbitmq_queues_deleted_total", "queue_deleted"),
        ):
            yield _family(name, [((), churn[event])])
        yield _family("rabbitmq_process_open_fds", [((), _open_fds())])
        sockets = len(server.connections) if server is not None else 0
        yield _family("rabbitmq_process_open_tcp_sockets", [((), sockets)])
        yield _family("rabbitmq_process_resident_memory_bytes", [((), resident_memory())])
        yield _family("rabbitmq_disk_space_available_bytes", [((), figures.disk_free)])
        yield _family("rabbitmq_process_max_fds", [((), fd_limit)])
        yield _family("rabbitmq_process_max_tcp_sockets", [((), fd_limit)])
        yield _family("rabbitmq_resident_memory_limit_bytes", [((), figures.mem_limit)])
        limit = figures.disk_free_limit
        yield _family("rabbitmq_disk_space_available_limit_bytes", [((), limit)])

    # -- queues, channels, connections -----------------------------------------------------------

    def _object_families(self) -> list[Family]:
        queues = [q for v in self._vhosts() for q in v.queues.values()]
        labelled = [((("vhost", q.vhost_name), ("queue", q.name)), q) for q in queues]

        def per_queue(name: str, value: Callable[[Queue], float]) -> Family:
            return _family(name, [(labels, value(q)) for labels, q in labelled])

        channels = list(self.stats.channels())
        channel_labels = [
            ((("channel", f"{connection.name} ({channel.number})"),), connection, channel)
            for connection, channel in channels
        ]

        def per_channel(name: str, value: Callable[..., float]) -> Family:
            return _family(name, [(labels, value(ch)) for labels, _, ch in channel_labels])

        def per_channel_in_vhost(name: str, count: str) -> Family:
            return _family(
                name,
                [
                    ((*labels, ("vhost", ch.vhost_name)), getattr(ch.counts, count))
                    for labels, _, ch in channel_labels
                ],
            )

        connections = self.admin.connections()

        def per_connection(name: str, value: Callable[..., float]) -> Family:
            # RabbitMQ labels connection metrics "channel" too.
            return _family(name, [((("channel", c.name),), value(c)) for c in connections])

        published = [
            ((("queue_vhost", q.vhost_name), ("queue", q.name)), q.counts.publish) for q in queues
        ]
        consumers = sum(q.consumer_count for q in queues)
        return [
            per_queue("rabbitmq_queue_messages_ready", lambda q: q.message_count),
            per_queue("rabbitmq_queue_messages_unacked", lambda q: q.unacked_count),
            per_queue("rabbitmq_queue_messages", lambda q: q.message_count + q.unacked_count),
            per_queue("rabbitmq_queue_consumers", lambda q: q.consumer_count),
            # In memory: all but what a classic queue paged out (the store is a copy on disk).
            per_queue(
                "rabbitmq_queue_messages_ram",
                lambda q: q.message_count - q.paged_count + q.unacked_count,
            ),
            per_queue(
                "rabbitmq_queue_messages_ram_bytes",
                lambda q: q.ready_bytes - q.paged_bytes + q.unacked_bytes,
            ),
            per_queue(
                "rabbitmq_queue_messages_ready_ram", lambda q: q.message_count - q.paged_count
            ),
            per_queue("rabbitmq_queue_messages_paged_out", lambda q: q.paged_count),
            per_queue("rabbitmq_queue_messages_paged_out_bytes", lambda q: q.paged_bytes),
            per_queue("rabbitmq_queue_messages_unacked_ram", lambda q: q.unacked_count),
            per_queue("rabbitmq_queue_messages_bytes", lambda q: q.ready_bytes + q.unacked_bytes),
            per_queue("rabbitmq_queue_messages_ready_bytes", lambda q: q.ready_bytes),
            per_queue("rabbitmq_queue_messages_unacked_bytes", lambda q: q.unacked_bytes),
            per_channel("rabbitmq_channel_consumers", lambda ch: len(ch.consumers.by_tag)),
            per_channel("rabbitmq_channel_messages_unacked", lambda ch: ch.unacked_count),
            per_channel(
                "rabbitmq_channel_messages_unconfirmed", lambda ch: ch.confirms.unconfirmed
            ),
            per_channel(
                "rabbitmq_channel_messages_uncommitted", lambda ch: len(ch.transaction.publishes)
            ),
            per_channel(
                "rabbitmq_channel_acks_uncommitted", lambda ch: len(ch.transaction.settlements)
            ),
            per_channel("rabbitmq_consumer_prefetch", lambda ch: ch.prefetch_count),
            per_channel("rabbitmq_channel_prefetch", lambda ch: ch.global_prefetch_count),
            per_channel_in_vhost("rabbitmq_channel_messages_published_total", "publish"),
            per_channel_in_vhost("rabbitmq_channel_messages_confirmed_total", "confirm"),
            per_channel_in_vhost(
                "rabbitmq_channel_messages_unroutable_returned_total", "return_unroutable"
            ),
            per_channel_in_vhost(
                "rabbitmq_channel_messages_unroutable_dropped_total", "drop_unroutable"
            ),
            per_channel_in_vhost("rabbitmq_channel_get_ack_total", "get"),
            per_channel_in_vhost("rabbitmq_channel_get_total", "get_no_ack"),
            per_channel_in_vhost("rabbitmq_channel_messages_delivered_ack_total", "deliver"),
            per_channel_in_vhost("rabbitmq_channel_messages_delivered_total", "deliver_no_ack"),
            per_channel_in_vhost("rabbitmq_channel_messages_redelivered_total", "redeliver"),
            per_channel_in_vhost("rabbitmq_channel_messages_acked_total", "ack"),
            per_channel_in_vhost("rabbitmq_channel_get_empty_total", "get_empty"),
            per_connection(
                "rabbitmq_connection_incoming_bytes_total", lambda c: c.connection.recv_oct
            ),
            per_connection(
                "rabbitmq_connection_outgoing_bytes_total", lambda c: c.connection.send_oct
            ),
            per_connection(
                "rabbitmq_connection_incoming_packets_total", lambda c: c.connection.recv_cnt
            ),
            per_connection(
                "rabbitmq_connection_outgoing_packets_total", lambda c: c.connection.send_cnt
            ),
            per_connection("rabbitmq_connection_channels", lambda c: c.channels),
            _family("rabbitmq_queue_messages_published_total", published),
            # Totals: the same in both forms.
            _family("rabbitmq_connections", [((), len(connections))]),
            _family("rabbitmq_channels", [((), len(channels))]),
            _family("rabbitmq_consumers", [((), consumers)]),
            _family("rabbitmq_queues", [((), len(queues))]),
        ]

    # -- identity and the global counters ---------------------------------------------------------

    def _global_families(self) -> Iterator[Family]:
        node = self.admin.node.cluster_name
        yield _family(
            "rabbitmq_build_info",
            [
                (
                    (
                        ("rabbitmq_version", RABBITMQ_VERSION),
                        ("prometheus_plugin_version", RABBITMQ_VERSION),
                        ("prometheus_client_version", f"amqp-lite {__version__}"),
                        ("erlang_version", f"Python {platform.python_version()}"),
                    ),
                    1,
                )
            ],
        )
        permanent_id = hashlib.sha256(node.encode()).hexdigest()[:22]
        yield _family(
            "rabbitmq_identity_info",
            [
                (
                    (
                        ("rabbitmq_node", node),
                        ("rabbitmq_cluster", node),
                        ("rabbitmq_cluster_permanent_id", f"rabbitmq-cluster-id-{permanent_id}"),
                    ),
                    1,
                )
            ],
        )
        channels = [channel for _, channel in self.stats.channels()]
        consumers = sum(len(channel.consumers.by_tag) for channel in channels)
        publishers = sum(1 for channel in channels if channel.counts.publish)
        sent = self.stats.node_counts()  # what channels counted, closed ones included
        by_type = self._queue_counts()

        def per_type(name: str, value: Callable[[MessageCounts], int]) -> Family:
            return _family(
                name,
                [((*PROTOCOL, ("queue_type", kind)), value(c)) for kind, c in by_type.items()],
            )

        routed = sent.publish - sent.return_unroutable - sent.drop_unroutable
        yield _family("rabbitmq_global_consumers", [(PROTOCOL, consumers)])
        yield per_type("rabbitmq_global_messages_acknowledged_total", lambda c: c.ack)
        yield _family("rabbitmq_global_messages_confirmed_total", [(PROTOCOL, sent.confirm)])
        yield per_type(
            "rabbitmq_global_messages_delivered_consume_auto_ack_total", lambda c: c.deliver_no_ack
        )
        yield per_type(
            "rabbitmq_global_messages_delivered_consume_manual_ack_total", lambda c: c.deliver
        )
        yield per_type(
            "rabbitmq_global_messages_delivered_get_auto_ack_total", lambda c: c.get_no_ack
        )
        yield per_type("rabbitmq_global_messages_delivered_get_manual_ack_total", lambda c: c.get)
        yield per_type(
            "rabbitmq_global_messages_delivered_total",
            lambda c: c.deliver + c.deliver_no_ack + c.get + c.get_no_ack,
        )
        yield per_type("rabbitmq_global_messages_get_empty_total", lambda c: c.get_empty)
        yield _family(
            "rabbitmq_global_messages_received_confirm_total",
            [(PROTOCOL, sent.received_confirm)],
        )
        yield _family("rabbitmq_global_messages_received_total", [(PROTOCOL, sent.publish)])
        yield per_type("rabbitmq_global_messages_redelivered_total", lambda c: c.redeliver)
        yield _family("rabbitmq_global_messages_routed_total", [(PROTOCOL, routed)])
        yield _family(
            "rabbitmq_global_messages_unroutable_dropped_total",
            [(PROTOCOL, sent.drop_unroutable)],
        )
        yield _family(
            "rabbitmq_global_messages_unroutable_returned_total",
            [(PROTOCOL, sent.return_unroutable)],
        )
        yield _family("rabbitmq_global_publishers", [(PROTOCOL, publishers)])

    def _queue_counts(self) -> dict[str, MessageCounts]:
        """Deliveries, gets and acks by queue type, deleted queues' included."""
        kinds = [*RABBITMQ_QUEUE_TYPES]
        kinds += sorted({c.rabbit_module for c in QUEUE_TYPES.values()} - set(kinds))
        totals = {kind: MessageCounts() for kind in kinds}
        for kind, counts in self._retired.items():
            totals.setdefault(kind, MessageCounts()).add(counts)
        for vhost in self._vhosts():
            for queue in vhost.queues.values():
                totals.setdefault(queue.rabbit_module, MessageCounts()).add(queue.counts)
        return totals

    def _vhosts(self) -> list[VirtualHost]:
        node = self.admin.node
        return [node.vhosts[name] for name in sorted(node.vhosts)]


def _family(name: str, samples: Iterable[Sample]) -> Family:
    kind, text = SPECS[name]
    return Family(name, kind, text, tuple(samples))


def _summed(family: Family) -> Family:
    """RabbitMQ's aggregated form: one unlabelled sample, the sum; none when nothing is there."""
    if not family.samples or all(not labels for labels, _ in family.samples):
        return family
    total = sum(value for _, value in family.samples)
    return Family(family.name, family.type, family.help, (((), total),))


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0
