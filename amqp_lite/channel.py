"""One AMQP channel: its methods, the messages it publishes and the deliveries it owes acks for.

Sans-IO: a channel turns decoded methods into calls on the domain (`vhosts`) and into frames
appended to its connection's output. Errors are raised as `BrokerError`s; the connection decides
whether they close this channel or the whole connection.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from amqp_lite.consumer import ChannelConsumer, Delivery, ReplyQueue
from amqp_lite.errors import CommandInvalid, NotImplementedFeature, UnexpectedFrame
from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import BodyFrame, HeaderFrame, encode_delivery, encode_method
from amqp_lite.wire.properties import encode_properties
from vhosts import Exchange, Message, Queue, QueueEntry
from vhosts.errors import AccessRefused, BrokerError, NotAllowed, NotFound, PreconditionFailed
from vhosts.message import parse_expiration
from vhosts.queue_settings import validate_consume_arguments
from vhosts.vhost import REPLY_TO

if TYPE_CHECKING:
    from amqp_lite.connection import ServerConnection

NO_ROUTE = 312

# Consumer tags the server makes up, as RabbitMQ does.
_TAG_PREFIX = "amq.ctag-"

# RabbitMQ's text for a content frame where a method frame should be.
_NOT_A_METHOD = "expected method frame, got non method frame instead"


class Channel:
    def __init__(self, connection: ServerConnection, number: int) -> None:
        self.connection = connection
        self.number = number
        vhost, user = connection.vhost, connection.user
        assert vhost is not None and user is not None, "channels open after connection.open"
        self.vhost = vhost
        self.user = user
        self.closing = False  # we sent channel.close and wait for close-ok
        self.flow_active = True

        self.consumers: dict[str, ChannelConsumer] = {}
        self.unacked: OrderedDict[int, Delivery] = OrderedDict()
        self._next_delivery_tag = 1
        self._consumer_prefetch = 0  # basic.qos global=false: applies to consumers made after it
        self._channel_prefetch = 0  # basic.qos global=true: one limit over the whole channel
        # What that limit counts: consumer deliveries still unsettled. As in RabbitMQ, messages
        # taken with basic.get do not count.
        self._consumed_unacked = 0

        # Content being assembled: the publish method, its header, the body so far.
        self._publish: methods.BasicPublish | None = None
        self._properties: Properties | None = None
        self._raw_properties = b""
        self._body_size = 0
        self._body: list[bytes] = []
        self._received = 0

        # Publisher confirms: tags of publishes, and how far acks have been sent.
        self.confirming = False
        self._nacks: set[int] = set()  # publishes refused by a full queue (reject-publish)
        self._publish_seq = 0
        self._confirmed_upto = 0  # every tag up to here may be acked
        self._acks_sent_upto = 0
        # (tag, store operation) for publishes whose confirm waits for the store's fsync.
        self._awaiting_disk: deque[tuple[int, int]] = deque()
        # Replies that promise something is on disk (durable declares, tx.commit-ok), each with
        # the store operation it waits for; they go out in order once that is written, and
        # whatever the channel sends meanwhile (encoded) waits behind them.
        self._replies_waiting: deque[tuple[int, bytes]] = deque()

        # Direct reply-to: this channel's consumer of amq.rabbitmq.reply-to, if it has one.
        self._reply_queue: ReplyQueue | None = None

        self.transactional = False
        self._tx_publishes: list[tuple[Exchange, Message, bool]] = []
        self._tx_settlements: list[tuple[str, list[Delivery]]] = []

    @property
    def prefetch_count(self) -> int:
        """basic.qos global=false: the limit of each consumer made from now on (0: none)."""
        return self._consumer_prefetch

    @property
    def global_prefetch_count(self) -> int:
        """basic.qos global=true: the limit over the whole channel (0: none)."""
        return self._channel_prefetch

    # -- frames in -------------------------------------------------------------------------------

    def handle_method(self, method: Any) -> None:
        if self._publish is not None:
            raise self._content_expected()
        handler = _HANDLERS.get(type(method))
        if handler is None:
            raise CommandInvalid(f"unexpected method {method.NAME} on a channel")
        handler(self, method)

    def handle_header(self, frame: HeaderFrame) -> None:
        if self._publish is None:
            raise UnexpectedFrame(_NOT_A_METHOD)
        if self._properties is not None:
            raise self._content_expected()
        if frame.class_id != self._publish.CLASS_ID:
            raise _blaming(
                UnexpectedFrame(
                    f"expected content header for class {self._publish.CLASS_ID}, "
                    f"got one for class {frame.class_id} instead"
                ),
                self._publish,
            )
        self._properties = frame.properties
        self._raw_properties = frame.raw_properties
        self._body_size = frame.body_size
        if frame.body_size == 0:
            self._finish_publish(b"")

    def handle_body(self, frame: BodyFrame) -> None:
        if self._publish is None:
            raise UnexpectedFrame(_NOT_A_METHOD)
        if self._properties is None:
            raise self._content_expected()
        self._body.append(frame.payload)
        self._received += len(frame.payload)
        if self._received >= self._body_size:
            if self._received > self._body_size:
                raise _blaming(
                    UnexpectedFrame("content body larger than its header announced"), self._publish
                )
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            self._finish_publish(body)

    def _content_expected(self) -> BrokerError:
        """Some other frame where the publish's content should continue."""
        if self._properties is None:
            text = "expected content header for class 60, got non content header frame instead"
        else:
            text = "expected content body, got non content body frame instead"
        return _blaming(UnexpectedFrame(text), self._publish)

    # -- publishing ------------------------------------------------------------------------------

    def _basic_publish(self, method: Any) -> None:
        self._publish = method  # checked when the content is whole, as RabbitMQ does

    def _finish_publish(self, body: bytes) -> None:
        method = self._publish
        try:
            self._publish_complete(body)
        except BrokerError as error:
            _blaming(error, method)
            raise

    def _publish_complete(self, body: bytes) -> None:
        method, properties = self._publish, self._properties
        assert method is not None and properties is not None, "called once the header is in"
        raw = self._raw_properties
        self._publish, self._properties, self._body, self._received = None, None, [], 0
        if method.immediate:
            raise NotImplementedFeature("immediate=true")
        exchange = self.vhost.exchange(method.exchange)
        if exchange.internal:
            raise AccessRefused(f"cannot publish to internal {exchange.describe()}")
        self.user.check(self.vhost.name, "write", "exchange", method.exchange)
        message = Message(method.exchange, method.routing_key, properties, body, raw)
        if properties.expiration is not None:
            message.ttl = parse_expiration(properties.expiration)
        if properties.reply_to == REPLY_TO:
            self._address_reply(message)
        if self.transactional:
            self._tx_publishes.append((exchange, message, method.mandatory))
            return
        refused = self._route(exchange, message, method.mandatory)
        if self.confirming:
            self._publish_seq += 1
            if refused:  # a full queue with x-overflow reject-publish: the publisher hears no
                self._nacks.add(self._publish_seq)
            store = self.vhost.store
            if store is not None and (message.store_id is not None or self._replies_waiting):
                self._awaiting_disk.append((self._publish_seq, store.last_op))
            elif self._awaiting_disk:  # acks go out in order: wait behind the stored ones
                self._awaiting_disk.append((self._publish_seq, 0))
            else:
                self._confirmed_upto = self._publish_seq
            self.connection.confirms_pending(self)

    def _route(self, exchange: Exchange, message: Message, mandatory: bool) -> bool:
        """Route and enqueue; True when some full queue refused the message."""
        routed, refused = self.vhost.publish(exchange, message)
        if mandatory and (not routed or _is_reply(exchange, message)):
            self._send_return(NO_ROUTE, "NO_ROUTE", message)
        return refused

    def _address_reply(self, message: Message) -> None:
        """Direct reply-to: `reply_to` names this channel's reply consumer, so replies find it."""
        if self._reply_queue is None:
            raise PreconditionFailed("fast reply consumer does not exist")
        message.set_property("reply_to", self._reply_queue.name)

    def _send_with_content(self, method: Any, message: Message) -> None:
        """basic.deliver, get-ok or return: the method, then the message's header and body."""
        data = encode_delivery(
            self.number,
            method,
            _encoded_properties(message),
            message.body,
            self.connection.frame_max,
        )
        if self._replies_waiting:  # _send, inline: deliveries are the hot path
            self._replies_waiting.append((0, data))
        else:
            self.connection.send(data)

    def _send_return(self, code: int, text: str, message: Message) -> None:
        method = methods.BasicReturn(
            reply_code=code,
            reply_text=text,
            exchange=message.exchange,
            routing_key=message.routing_key,
        )
        self._send_with_content(method, message)

    def flush_confirms(self) -> bool:
        """Send one basic.ack covering every publish confirmed since the last flush.

        Returns True while some confirms still wait for the store.
        """
        waiting, replies = self._awaiting_disk, self._replies_waiting
        store = self.vhost.store
        if store is not None and (waiting or replies):  # only ever filled when there is a store
            durable = store.durable_upto
            while waiting and waiting[0][1] <= durable:
                self._confirmed_upto = waiting.popleft()[0]
            if replies and replies[0][0] <= durable:
                while replies and replies[0][0] <= durable:
                    self.connection.send(replies.popleft()[1])
                if not replies:
                    self.resume_consumers()  # deliveries waited behind the replies
        if self.closing:  # a closed channel owes only the replies sent before its close
            return bool(replies)
        upto = self._confirmed_upto
        if upto > self._acks_sent_upto:
            if self._nacks:
                self._send_nacks_upto(upto)
            if upto > self._acks_sent_upto:
                self._send_ack(upto)
        return bool(waiting or replies)

    def _send_ack(self, upto: int) -> None:
        multiple = upto - self._acks_sent_upto > 1
        self._acks_sent_upto = upto
        self.connection.send_method(
            self.number, methods.BasicAck(delivery_tag=upto, multiple=multiple)
        )

    def _send_nacks_upto(self, upto: int) -> None:
        """Refused publishes get a nack each; the confirmed ones around them, acks."""
        for tag in sorted(t for t in self._nacks if t <= upto):
            self._nacks.discard(tag)
            if tag - 1 > self._acks_sent_upto:
                self._send_ack(tag - 1)
            self._acks_sent_upto = tag
            self.connection.send_method(
                self.number, methods.BasicNack(delivery_tag=tag, multiple=False, requeue=False)
            )

    def _reply_when_stored(self, method: Any) -> None:
        """Send `method` once everything the store has been told so far is on disk."""
        store = self.vhost.store
        if store is None or (store.durable_upto >= store.last_op and not self._replies_waiting):
            self.connection.send_method(self.number, method)
            return
        self._replies_waiting.append((store.last_op, encode_method(self.number, method)))
        self.connection.confirms_pending(self)

    def _reply(self, method: Any) -> None:
        self._send(encode_method(self.number, method))

    def _send(self, data: bytes) -> None:
        """Frames go out in the order the client's methods asked for them: behind any reply
        still waiting for the store, as RabbitMQ answers a channel's methods one at a time."""
        if self._replies_waiting:
            self._replies_waiting.append((0, data))  # waits for nothing but what is before it
        else:
            self.connection.send(data)

    def send_after_replies(self, method: Any) -> bool:
        """A method the server starts (basic.cancel, channel.close), behind waiting replies.

        Returns True when it waits too.
        """
        waits = bool(self._replies_waiting)
        self._reply(method)
        return waits

    # -- delivering ------------------------------------------------------------------------------

    def can_deliver(self) -> bool:
        if self._channel_prefetch and self._consumed_unacked >= self._channel_prefetch:
            return False
        return self.can_deliver_unlimited()

    def can_deliver_unlimited(self) -> bool:
        return (
            self.flow_active
            and not self.closing
            and not self._replies_waiting  # a delivery must not overtake a reply
            and self.connection.has_output_room()
        )

    def deliver(self, consumer: ChannelConsumer, entry: QueueEntry) -> None:
        tag = self._next_delivery_tag
        self._next_delivery_tag = tag + 1
        if not consumer.no_ack:
            self.unacked[tag] = Delivery(tag, entry, consumer)
            consumer.unacked += 1
            self._consumed_unacked += 1
        self._send_deliver(consumer.tag, tag, entry.redelivered, entry.message)

    def deliver_reply(self, consumer_tag: str, message: Message) -> None:
        """A direct reply-to reply: RabbitMQ 3.10 gives it the next delivery tag without using
        it up (nothing is acked for a reply)."""
        self._send_deliver(consumer_tag, self._next_delivery_tag, False, message)

    def _send_deliver(
        self, consumer_tag: str, delivery_tag: int, redelivered: bool, message: Message
    ) -> None:
        method = methods.BasicDeliver(
            consumer_tag=consumer_tag,
            delivery_tag=delivery_tag,
            redelivered=redelivered,
            exchange=message.exchange,
            routing_key=message.routing_key,
        )
        self._send_with_content(method, message)

    def resume_consumers(self) -> None:
        """Credit came back (an ack, flow on, the socket drained): let queues deliver again."""
        for queue in {consumer.queue for consumer in self.consumers.values()}:
            queue.dispatch()

    def consumer_lost(self, consumer: ChannelConsumer) -> None:
        """The queue went away under a consumer: tell the client if it understands that."""
        if self.consumers.pop(consumer.tag, None) is None:
            return
        if self.connection.client_supports("consumer_cancel_notify"):
            cancel = methods.BasicCancel(consumer_tag=consumer.tag, no_wait=True)
            self.connection.notify(self, cancel)

    # -- acknowledgements ------------------------------------------------------------------------

    def _take_unacked(self, delivery_tag: int, multiple: bool) -> list[Delivery]:
        unacked = self.unacked
        if multiple:
            if delivery_tag == 0:  # "everything so far"
                taken = list(unacked.values())
                unacked.clear()
                return taken
            if delivery_tag not in unacked:
                raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
            taken = []
            while unacked:
                tag = next(iter(unacked))
                if tag > delivery_tag:
                    break
                taken.append(unacked.popitem(last=False)[1])
            return taken
        settled = unacked.pop(delivery_tag, None)
        if settled is None:
            raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
        return [settled]

    def _settle(self, outcome: str, settled: list[Delivery]) -> None:
        if self.transactional:
            self._tx_settlements.append((outcome, settled))
            return
        self._apply_settlement(outcome, settled)

    def _apply_settlement(self, outcome: str, settled: list[Delivery]) -> None:
        for delivery in settled:
            if delivery.consumer is not None:
                delivery.consumer.unacked -= 1
                self._consumed_unacked -= 1
        if outcome == "requeue":
            for queue, entries in _by_queue(settled).items():
                queue.requeue(entries)
        elif outcome == "ack":
            for delivery in settled:
                delivery.entry.queue.ack(delivery.entry)
        else:
            for delivery in settled:
                delivery.entry.queue.discard(delivery.entry)
        self.resume_consumers()

    def _basic_ack(self, method: Any) -> None:
        self._settle("ack", self._take_unacked(method.delivery_tag, method.multiple))

    def _basic_nack(self, method: Any) -> None:
        outcome = "requeue" if method.requeue else "discard"
        self._settle(outcome, self._take_unacked(method.delivery_tag, method.multiple))

    def _basic_reject(self, method: Any) -> None:
        outcome = "requeue" if method.requeue else "discard"
        self._settle(outcome, self._take_unacked(method.delivery_tag, False))

    def _basic_recover(self, method: Any) -> None:
        if not method.requeue:
            raise NotImplementedFeature("requeue=false")
        self._requeue_all_unacked()
        if isinstance(method, methods.BasicRecover):
            self._reply(methods.BasicRecoverOk())

    def _requeue_all_unacked(self) -> None:
        settled = list(self.unacked.values())
        self.unacked.clear()
        if settled:
            self._apply_settlement("requeue", settled)

    # -- consuming -------------------------------------------------------------------------------

    def _basic_qos(self, method: Any) -> None:
        if method.prefetch_size:
            raise NotImplementedFeature(f"prefetch_size!=0 ({method.prefetch_size})")
        if method.global_:
            self._channel_prefetch = method.prefetch_count
        else:
            self._consumer_prefetch = method.prefetch_count
        self._reply(methods.BasicQosOk())
        self.resume_consumers()

    def _basic_consume(self, method: Any) -> None:
        if method.queue == REPLY_TO:
            self._consume_replies(method)
            return
        queue = self._queue(method.queue)
        self.user.check(self.vhost.name, "read", "queue", queue.name)
        tag = self._new_consumer_tag(method.consumer_tag)
        consumer = ChannelConsumer(
            self,
            queue,
            tag,
            no_ack=method.no_ack,
            exclusive=method.exclusive,
            prefetch=self._consumer_prefetch,
            priority=validate_consume_arguments(
                method.arguments, queue_description=queue.describe()
            ),
        )
        queue.check_consumable(exclusive=method.exclusive)
        self.consumers[tag] = consumer
        if not method.no_wait:
            self._reply(methods.BasicConsumeOk(consumer_tag=tag))
        queue.add_consumer(consumer)  # after consume-ok: deliveries must follow it

    def _new_consumer_tag(self, requested: str) -> str:
        tag = requested or _TAG_PREFIX + os.urandom(16).hex()
        if tag in self.consumers:
            raise NotAllowed(f"attempt to reuse consumer tag '{tag}'")
        return tag

    def _consume_replies(self, method: Any) -> None:
        """Consume amq.rabbitmq.reply-to: replies come straight here, never through a queue."""
        if not method.no_ack:
            raise PreconditionFailed("reply consumer cannot acknowledge")
        if self._reply_queue is not None:
            raise PreconditionFailed("reply consumer already set")
        tag = self._new_consumer_tag(method.consumer_tag)
        reply_queue = ReplyQueue(self)
        consumer = ChannelConsumer(
            self,
            reply_queue,
            tag,
            no_ack=True,
            exclusive=False,
            prefetch=0,
        )
        reply_queue.consumer = consumer
        self._reply_queue = reply_queue
        self.vhost.reply_queues[reply_queue.name] = reply_queue
        self.consumers[tag] = consumer
        if not method.no_wait:
            self._reply(methods.BasicConsumeOk(consumer_tag=tag))

    def reply_consumer_gone(self, reply_queue: ReplyQueue) -> None:
        self.vhost.reply_queues.pop(reply_queue.name, None)
        if self._reply_queue is reply_queue:
            self._reply_queue = None

    def _basic_cancel(self, method: Any) -> None:
        consumer = self.consumers.pop(method.consumer_tag, None)
        if consumer is not None:
            self._drop_consumer(consumer)
        if not method.no_wait:
            self._reply(methods.BasicCancelOk(consumer_tag=method.consumer_tag))

    def _drop_consumer(self, consumer: ChannelConsumer) -> None:
        queue = consumer.queue
        # auto-delete: its last consumer went (a direct reply-to consumer's never does)
        if queue.remove_consumer(consumer) and isinstance(queue, Queue):
            self.vhost.remove_queue(queue)

    def _basic_get(self, method: Any) -> None:
        queue = self._queue(method.queue)
        self.user.check(self.vhost.name, "read", "queue", queue.name)
        entry = queue.get(no_ack=method.no_ack)
        if entry is None:
            self._reply(methods.BasicGetEmpty())
            return
        tag = self._next_delivery_tag
        self._next_delivery_tag = tag + 1
        if not method.no_ack:
            self.unacked[tag] = Delivery(tag, entry, None)
        message = entry.message
        reply = methods.BasicGetOk(
            delivery_tag=tag,
            redelivered=entry.redelivered,
            exchange=message.exchange,
            routing_key=message.routing_key,
            message_count=queue.message_count,
        )
        self._send_with_content(reply, message)

    # -- exchanges, queues, bindings -------------------------------------------------------------

    def _queue(self, name: str) -> Queue:
        return self.vhost.queue(name, self.connection)

    def _check(self, kind: str, resource_kind: str, name: str) -> None:
        self.user.check(self.vhost.name, kind, resource_kind, name)

    def _exchange_declare(self, method: Any) -> None:
        if not method.passive:
            self._check("configure", "exchange", method.exchange)
        self.vhost.declare_exchange(
            method.exchange,
            method.type,
            passive=method.passive,
            durable=method.durable,
            auto_delete=method.auto_delete,
            internal=method.internal,
            arguments=dict(method.arguments),
        )
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeDeclareOk())

    def _exchange_delete(self, method: Any) -> None:
        self._check("configure", "exchange", method.exchange)
        self.vhost.delete_exchange(method.exchange, if_unused=method.if_unused)
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeDeleteOk())

    def _exchange_bind(self, method: Any) -> None:
        self._bind_exchanges(method, bind=True)
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeBindOk())

    def _exchange_unbind(self, method: Any) -> None:
        self._bind_exchanges(method, bind=False)
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeUnbindOk())

    def _bind_exchanges(self, method: Any, *, bind: bool) -> None:
        self._check("write", "exchange", method.destination)
        self._check("read", "exchange", method.source)
        if not method.source or not method.destination:  # refused before any lookup
            raise AccessRefused("operation not permitted on the default exchange")
        exchanges = self.vhost.exchanges
        if not bind and (method.source not in exchanges or method.destination not in exchanges):
            return  # RabbitMQ: unbinding from or to a missing exchange is ok
        source = self.vhost.exchange(method.source)  # a missing source is reported first
        destination = self.vhost.exchange(method.destination)
        change = self.vhost.bind if bind else self.vhost.unbind
        change(source, destination, method.routing_key, dict(method.arguments))

    def _queue_declare(self, method: Any) -> None:
        if method.queue.startswith(REPLY_TO):
            self._declare_reply_queue(method)
            return
        if not method.passive:
            self._check("configure", "queue", method.queue or "amq.gen")
        queue = self.vhost.declare_queue(
            method.queue,
            self.connection,
            passive=method.passive,
            durable=method.durable,
            exclusive=method.exclusive,
            auto_delete=method.auto_delete,
            arguments=dict(method.arguments),
        )
        if queue.exclusive_owner is self.connection:
            self.connection.exclusive_queues.add(queue)
        self.connection.last_queue_name = queue.name
        if not method.no_wait:
            self._reply_when_stored(
                methods.QueueDeclareOk(
                    queue=queue.name,
                    message_count=queue.message_count,
                    consumer_count=queue.consumer_count,
                ),
            )

    def _declare_reply_queue(self, method: Any) -> None:
        """RabbitMQ answers a declare of the reply-to pseudo-queue as if it were a queue with
        one consumer; a reply address is there while its consumer is. Any other name with the
        prefix is not found, passive or not (never the 403 of the amq. prefix)."""
        if method.queue != REPLY_TO and method.queue not in self.vhost.reply_queues:
            raise NotFound(f"no queue '{method.queue}' in vhost '{self.vhost.name}'")
        if not method.no_wait:
            reply = methods.QueueDeclareOk(queue=method.queue, message_count=0, consumer_count=1)
            self._reply(reply)

    def _queue_name(self, name: str) -> str:
        # An empty queue name means "the queue this connection declared last" (AMQP 0-9-1).
        if not name:
            name = self.connection.last_queue_name
            if not name:
                raise NotFound("no previously declared queue")
        return name

    def _queue_bind(self, method: Any) -> None:
        self._queue_binding(method, bind=True)
        if not method.no_wait:
            self._reply_when_stored(methods.QueueBindOk())

    def _queue_unbind(self, method: Any) -> None:
        self._queue_binding(method, bind=False)
        self._reply_when_stored(methods.QueueUnbindOk())

    def _queue_binding(self, method: Any, *, bind: bool) -> None:
        queue_name = self._queue_name(method.queue)
        self._check("write", "queue", queue_name)
        self._check("read", "exchange", method.exchange)
        if not method.exchange:
            raise AccessRefused("operation not permitted on the default exchange")
        if not bind and (
            method.exchange not in self.vhost.exchanges or queue_name not in self.vhost.queues
        ):
            return  # RabbitMQ: unbinding from a missing exchange or queue is ok
        # As RabbitMQ: a missing exchange is reported first, a locked queue only once both exist,
        # and unbinding a binding that is not there is ok even on a queue locked to another.
        exchange = self.vhost.exchange(method.exchange)
        if not bind and not exchange.router.has_binding(
            self.vhost.queues[queue_name], method.routing_key, method.arguments
        ):
            return
        queue = self._queue(queue_name)
        change = self.vhost.bind if bind else self.vhost.unbind
        change(exchange, queue, method.routing_key, dict(method.arguments))

    def _queue_purge(self, method: Any) -> None:
        queue_name = self._queue_name(method.queue)
        self._check("read", "queue", queue_name)
        count = self.vhost.purge_queue(queue_name, self.connection)
        if not method.no_wait:
            self._reply_when_stored(methods.QueuePurgeOk(message_count=count))

    def _queue_delete(self, method: Any) -> None:
        queue_name = self._queue_name(method.queue)
        self._check("configure", "queue", queue_name)
        # The queue's consumers hear basic.cancel after delete-ok, as from RabbitMQ: py-amqp
        # (kombu, Celery) waiting for delete-ok would raise ConsumerCancelled otherwise.
        with self.connection.notifying_after_reply():
            count = self.vhost.delete_queue(
                queue_name, self.connection, if_unused=method.if_unused, if_empty=method.if_empty
            )
            if not method.no_wait:
                self._reply_when_stored(methods.QueueDeleteOk(message_count=count))

    # -- modes -----------------------------------------------------------------------------------

    def _confirm_select(self, method: Any) -> None:
        if self.transactional:
            raise PreconditionFailed("cannot switch from tx to confirm mode")
        self.confirming = True
        if not method.no_wait:
            self._reply(methods.ConfirmSelectOk())

    def _tx_select(self, method: Any) -> None:
        if self.confirming:
            raise PreconditionFailed("cannot switch from confirm to tx mode")
        self.transactional = True
        self._reply(methods.TxSelectOk())

    def _tx_commit(self, method: Any) -> None:
        if not self.transactional:
            raise PreconditionFailed("channel is not transactional")
        publishes, self._tx_publishes = self._tx_publishes, []
        settlements, self._tx_settlements = self._tx_settlements, []
        for exchange, message, mandatory in publishes:
            self._route(exchange, message, mandatory)
        for outcome, settled in settlements:
            self._apply_settlement(outcome, settled)
        self._reply_when_stored(methods.TxCommitOk())  # its persistent messages are on disk

    def _tx_rollback(self, method: Any) -> None:
        if not self.transactional:
            raise PreconditionFailed("channel is not transactional")
        self._tx_publishes = []
        settlements, self._tx_settlements = self._tx_settlements, []
        self._restore_unacked(settlements)
        self._reply(methods.TxRollbackOk())

    def _restore_unacked(self, settlements: list[tuple[str, list[Delivery]]]) -> None:
        """Settlements of an uncommitted transaction never happened: unacked again, in tag order."""
        if not settlements:
            return
        restored = dict(self.unacked)
        for _outcome, settled in settlements:
            for delivery in settled:
                restored[delivery.tag] = delivery
        self.unacked = OrderedDict(sorted(restored.items()))

    def _channel_flow(self, method: Any) -> None:
        self.flow_active = method.active
        self._reply(methods.ChannelFlowOk(active=method.active))
        if method.active:
            self.resume_consumers()

    def _channel_flow_ok(self, method: Any) -> None:
        pass  # we never ask clients to stop publishing

    # -- closing ---------------------------------------------------------------------------------

    def release(self) -> None:
        """The channel is gone (closed by either side, or its connection is): undo its claims.

        Then, as RabbitMQ does when a channel goes, each queue it consumed from runs again, so
        a single active consumer's successor is served (with the requeued messages first).
        """
        consumed = {consumer.queue for consumer in self.consumers.values()}
        for consumer in list(self.consumers.values()):
            self._drop_consumer(consumer)
        self.consumers.clear()
        self._tx_publishes = []
        settlements, self._tx_settlements = self._tx_settlements, []
        self._restore_unacked(settlements)
        self._requeue_all_unacked()
        for queue in consumed:
            queue.dispatch()


def _is_reply(exchange: Exchange, message: Message) -> bool:
    """A direct reply-to reply. RabbitMQ 3.10 hands it to the reply consumer beside routing,
    which finds no queue: a mandatory reply is delivered and returned (NO_ROUTE) both."""
    return not exchange.name and message.routing_key.startswith(REPLY_TO + ".")


def _blaming(error: BrokerError, publish: Any) -> BrokerError:
    """RabbitMQ names the basic.publish in the close for anything wrong with its content."""
    if not error.class_id:
        error.class_id, error.method_id = publish.CLASS_ID, publish.METHOD_ID
    return error


def _encoded_properties(message: Message) -> bytes:
    raw = message.encoded_properties
    if raw is None:
        # The broker's messages carry the codec's Properties.
        properties = cast(Properties, message.properties)
        raw = message.encoded_properties = encode_properties(properties)
    return raw


def _by_queue(settled: Iterable[Delivery]) -> dict[Queue, list[QueueEntry]]:
    grouped: dict[Queue, list[QueueEntry]] = {}
    for delivery in settled:
        grouped.setdefault(delivery.entry.queue, []).append(delivery.entry)
    return grouped


_HANDLERS = {
    methods.BasicPublish: Channel._basic_publish,
    methods.BasicAck: Channel._basic_ack,
    methods.BasicNack: Channel._basic_nack,
    methods.BasicReject: Channel._basic_reject,
    methods.BasicRecover: Channel._basic_recover,
    methods.BasicRecoverAsync: Channel._basic_recover,
    methods.BasicQos: Channel._basic_qos,
    methods.BasicConsume: Channel._basic_consume,
    methods.BasicCancel: Channel._basic_cancel,
    methods.BasicGet: Channel._basic_get,
    methods.ExchangeDeclare: Channel._exchange_declare,
    methods.ExchangeDelete: Channel._exchange_delete,
    methods.ExchangeBind: Channel._exchange_bind,
    methods.ExchangeUnbind: Channel._exchange_unbind,
    methods.QueueDeclare: Channel._queue_declare,
    methods.QueueBind: Channel._queue_bind,
    methods.QueueUnbind: Channel._queue_unbind,
    methods.QueuePurge: Channel._queue_purge,
    methods.QueueDelete: Channel._queue_delete,
    methods.ConfirmSelect: Channel._confirm_select,
    methods.TxSelect: Channel._tx_select,
    methods.TxCommit: Channel._tx_commit,
    methods.TxRollback: Channel._tx_rollback,
    methods.ChannelFlow: Channel._channel_flow,
    methods.ChannelFlowOk: Channel._channel_flow_ok,
}
