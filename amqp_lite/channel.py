"""One AMQP channel: the parts that do its jobs, and the table that sends each method to one.

Sans-IO: a channel turns decoded methods into calls on the domain (`vhosts`) and into frames
appended to its connection's output. Each job has its own part:

  channel_output.ChannelOutput  frames in the order the methods asked for them
  content.ContentAssembler      basic.publish + header + body frames -> one complete publish
  publishing.Publisher          a complete publish -> routed message, returns, confirm counting
  confirms.Confirms             publisher confirms
  delivery.Deliveries           delivery tags, credit (prefetch, flow), the unacked ledger
  settlement.Settlements        basic.ack / nack / reject / recover
  consuming.Consumers           basic.qos / consume / cancel / get, direct reply-to
  transaction.Transaction       publishes and settlements held until tx.commit
  topology.Topology             exchange.* and queue.* methods

Errors are raised as `BrokerError`s; the connection decides whether they close this channel or
the whole connection.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, Protocol, cast, get_args

from amqp_lite.channel_output import ChannelOutput
from amqp_lite.confirms import Confirms
from amqp_lite.consuming import Consumers
from amqp_lite.content import ContentAssembler
from amqp_lite.delivery import Deliveries
from amqp_lite.errors import CommandInvalid
from amqp_lite.limits import Limits
from amqp_lite.publishing import Publisher
from amqp_lite.settlement import Settlements
from amqp_lite.topology import NamingAQueue, Topology
from amqp_lite.tracing import ChannelTracer
from amqp_lite.transaction import Transaction
from amqp_lite.wire import methods
from amqp_lite.wire.frames import BodyFrame, HeaderFrame
from amqp_lite.wire.methods import Method
from vhosts import Node, Queue, User, VirtualHost
from vhosts.counters import MessageCounts
from vhosts.errors import PreconditionFailed


class ChannelHost(Protocol):
    """What a channel needs of its connection."""

    name: str  # "peer_host:peer_port -> host:port"
    node: Node
    frame_max: int
    limits: Limits

    def send(self, data: bytes) -> None: ...

    def send_method(self, channel: int, method: Method) -> None: ...

    def has_output_room(self) -> bool: ...

    def confirms_pending(self, channel: Channel) -> None:
        """`channel` has confirms or stored replies to flush once this read is done."""
        ...

    def notify(self, channel: Channel, method: Method) -> None:
        """A method the server starts on `channel` (basic.cancel), after any reply due."""
        ...

    def notifying_after_reply(self) -> AbstractContextManager[None]: ...

    def client_supports(self, capability: str) -> bool: ...

    def claim_exclusive(self, queue: Queue) -> None: ...


class Channel:
    def __init__(self, host: ChannelHost, number: int, vhost: VirtualHost, user: User) -> None:
        self.number = number
        self.vhost_name = vhost.name
        self.user_name = user.name
        pending = partial(host.confirms_pending, self)
        self.output = output = ChannelOutput(host, number, vhost.store, pending=pending)
        send = output.reply
        tracer = ChannelTracer(
            vhost,
            connection=host.name,
            channel=number,
            user=user.name,
            node=host.node.cluster_name,
        )
        self.deliveries = Deliveries(output, number, tracer)
        self.transaction = Transaction()
        # Acks go straight out: a publish made while a reply waits has its ack wait too.
        self.confirms = Confirms(
            partial(host.send_method, number), vhost.store, output, pending=pending
        )
        self.consumers = Consumers(
            vhost,
            user,
            self.deliveries,
            owner=host,
            send=send,
            notify=partial(host.notify, self),
            cancel_notify=partial(host.client_supports, "consumer_cancel_notify"),
        )
        self.settlements = Settlements(
            self.deliveries, self.transaction, send=send, credit_returned=self.consumers.resume
        )
        self.publisher = Publisher(
            vhost,
            user,
            deliveries=self.deliveries,
            confirms=self.confirms,
            transaction=self.transaction,
            reply_address=self._reply_address,
            tracer=tracer,
        )
        self.content = ContentAssembler(self.publisher.publish, host.limits)
        # Content header and body frames go straight to the part that assembles them.
        self.handle_header: Callable[[HeaderFrame], None] = self.content.header
        self.handle_body: Callable[[BodyFrame], None] = self.content.body
        self._topology = topology = Topology(
            vhost, user, host, send=send, reply_when_stored=output.reply_when_stored
        )
        self._send = send
        self._handlers: dict[type[Method], Callable[[Any], None]] = {
            methods.BasicPublish: self.content.start,
            methods.BasicAck: self.settlements.basic_ack,
            methods.BasicNack: self.settlements.basic_nack,
            methods.BasicReject: self.settlements.basic_reject,
            methods.BasicRecover: self.settlements.basic_recover,
            methods.BasicRecoverAsync: self.settlements.basic_recover,
            methods.BasicQos: self.consumers.basic_qos,
            methods.BasicConsume: self.consumers.basic_consume,
            methods.BasicCancel: self.consumers.basic_cancel,
            methods.BasicGet: self.consumers.basic_get,
            methods.ExchangeDeclare: topology.exchange_declare,
            methods.ExchangeDelete: topology.exchange_delete,
            methods.ExchangeBind: topology.exchange_bind,
            methods.ExchangeUnbind: topology.exchange_unbind,
            methods.QueueDeclare: topology.queue_declare,
            methods.QueueBind: topology.queue_bind,
            methods.QueueUnbind: topology.queue_unbind,
            methods.QueuePurge: topology.queue_purge,
            methods.QueueDelete: topology.queue_delete,
            methods.ConfirmSelect: self._confirm_select,
            methods.TxSelect: self._tx_select,
            methods.TxCommit: self._tx_commit,
            methods.TxRollback: self._tx_rollback,
            methods.ChannelFlow: self._channel_flow,
            methods.ChannelFlowOk: self._channel_flow_ok,
        }

    # -- what listings show ----------------------------------------------------------------------

    @property
    def counts(self) -> MessageCounts:
        """What this channel published, delivered and had acked, for message_stats: a copy of
        what its parts counted, with what their sequence numbers tell."""
        counts = self.deliveries.counted()
        self.confirms.add_counts(counts)
        return counts

    @property
    def prefetch_count(self) -> int:
        """basic.qos global=false: the limit of each consumer made from now on (0: none)."""
        return self.deliveries.consumer_prefetch

    @property
    def global_prefetch_count(self) -> int:
        """basic.qos global=true: the limit over the whole channel (0: none)."""
        return self.deliveries.channel_prefetch

    @property
    def unacked_count(self) -> int:
        return len(self.deliveries.unacked)

    @property
    def flow_active(self) -> bool:
        return self.deliveries.flow_active

    @property
    def confirming(self) -> bool:
        return self.confirms.active

    @property
    def transactional(self) -> bool:
        return self.transaction.active

    # -- frames in -------------------------------------------------------------------------------

    def handle_method(self, method: Method) -> None:
        if self.content.method is not None:
            raise self.content.content_expected()
        handler = self._handlers.get(type(method))
        if handler is None:
            raise CommandInvalid(f"unexpected method {method.NAME} on a channel")
        if type(method) in _NAMING_A_QUEUE:
            self._topology.expand_shortcuts(cast(NamingAQueue, method))
        handler(method)

    # -- for the connection ----------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """The channel is going: it delivers nothing more."""
        return self.deliveries.closing

    @closing.setter
    def closing(self, value: bool) -> None:
        self.deliveries.closing = value

    def resume_consumers(self) -> None:
        """The client read its backlog: deliver again."""
        self.consumers.resume()

    def send_after_replies(self, method: Method) -> bool:
        """A method the server starts (basic.cancel, channel.close), behind waiting replies.

        Returns True when it waits too.
        """
        return self.output.send_after_replies(method)

    def flush_confirms(self) -> bool:
        """Send replies the store has written, then one basic.ack for every publish confirmed
        since the last flush. Returns True while something still waits for the store."""
        output = self.output
        if output.waiting and output.flush_stored():
            self.consumers.resume()  # deliveries waited behind the replies
        if self.deliveries.closing:  # a closed channel owes only the replies sent before its close
            return output.waiting
        return self.confirms.flush() or output.waiting

    def release(self) -> None:
        """The channel is gone (closed by either side, or its connection is): undo its claims.

        Then, as RabbitMQ does when a channel goes, each queue it consumed from runs again, so
        a single active consumer's successor is served (with the requeued messages first).
        """
        self.deliveries.closing = True
        consumed = self.consumers.release()
        self.deliveries.restore(self.transaction.discard())
        self.settlements.requeue_all(channel_closed=True)
        for queue in consumed:
            queue.dispatch()

    def _reply_address(self) -> str | None:
        reply_queue = self.consumers.reply_queue
        return None if reply_queue is None else reply_queue.name

    # -- modes -----------------------------------------------------------------------------------

    def _confirm_select(self, method: methods.ConfirmSelect) -> None:
        if self.transaction.active:
            raise PreconditionFailed("cannot switch from tx to confirm mode")
        self.confirms.active = True
        if not method.no_wait:
            self._send(methods.ConfirmSelectOk())

    def _tx_select(self, method: methods.TxSelect) -> None:
        if self.confirms.active:
            raise PreconditionFailed("cannot switch from confirm to tx mode")
        self.transaction.active = True
        self._send(methods.TxSelectOk())

    def _tx_commit(self, method: methods.TxCommit) -> None:
        if not self.transaction.active:
            raise PreconditionFailed("channel is not transactional")
        publishes, settlements = self.transaction.take()
        for exchange, message, mandatory in publishes:
            self.publisher.route(exchange, message, mandatory)
        for outcome, settled in settlements:
            self.settlements.apply(outcome, settled)
        self.output.reply_when_stored(methods.TxCommitOk())  # its persistent messages are on disk

    def _tx_rollback(self, method: methods.TxRollback) -> None:
        if not self.transaction.active:
            raise PreconditionFailed("channel is not transactional")
        self.deliveries.restore(self.transaction.discard())
        self._send(methods.TxRollbackOk())

    def _channel_flow(self, method: methods.ChannelFlow) -> None:
        self.deliveries.flow_active = method.active
        self._send(methods.ChannelFlowOk(active=method.active))
        if method.active:
            self.consumers.resume()

    def _channel_flow_ok(self, method: methods.ChannelFlowOk) -> None:
        pass  # we never ask clients to stop publishing


_NAMING_A_QUEUE = frozenset(get_args(NamingAQueue))
