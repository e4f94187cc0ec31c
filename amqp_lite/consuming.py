"""A channel's consumers: basic.qos, basic.consume, basic.cancel, basic.get, direct reply-to.

Consumers are what queues deliver to; this part makes and forgets them, and wakes their queues
when the channel has room for more.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from amqp_lite.consumer import ChannelConsumer, ReplyQueue
from amqp_lite.delivery import Deliveries
from amqp_lite.errors import NotImplementedFeature
from amqp_lite.wire import methods
from amqp_lite.wire.methods import Method
from vhosts import Queue, User, VirtualHost
from vhosts.errors import NotAllowed, PreconditionFailed
from vhosts.vhost import REPLY_TO

# Consumer tags the server makes up, as RabbitMQ does.
_TAG_PREFIX = "amq.ctag-"


class Consumers:
    def __init__(
        self,
        vhost: VirtualHost,
        user: User,
        deliveries: Deliveries,
        *,
        owner: object,
        send: Callable[[Method], None],
        notify: Callable[[Method], None],
        cancel_notify: Callable[[], bool],
    ) -> None:
        self._vhost = vhost
        self._user = user
        self._deliveries = deliveries
        self._owner = owner  # the connection: exclusive queues are locked to it
        self._send = send
        self._notify = notify  # a method the server starts (basic.cancel), after any reply due
        self._cancel_notify = cancel_notify  # does the client understand a server's basic.cancel?
        self.by_tag: dict[str, ChannelConsumer] = {}
        # Direct reply-to: this channel's consumer of amq.rabbitmq.reply-to, if it has one.
        self.reply_queue: ReplyQueue | None = None

    def _queue(self, name: str) -> Queue:
        return self._vhost.queue(name, self._owner)

    def resume(self) -> None:
        """Credit came back (an ack, flow on, the socket drained): let queues deliver again."""
        for queue in {consumer.queue for consumer in self.by_tag.values()}:
            queue.dispatch()

    def basic_qos(self, method: methods.BasicQos) -> None:
        if method.prefetch_size:
            raise NotImplementedFeature(f"prefetch_size!=0 ({method.prefetch_size})")
        if method.global_:
            self._deliveries.channel_prefetch = method.prefetch_count
        else:
            self._deliveries.consumer_prefetch = method.prefetch_count
            # RabbitMQ 3.10 also lifts the channel's global limit here: set global first and
            # per-consumer after, and only the per-consumer one holds.
            self._deliveries.channel_prefetch = 0
        self._send(methods.BasicQosOk())
        self.resume()

    def basic_consume(self, method: methods.BasicConsume) -> None:
        if method.queue == REPLY_TO:
            self._consume_replies(method)
            return
        self._user.check(self._vhost.name, "read", "queue", method.queue)  # before looking
        queue = self._queue(method.queue)
        tag = self._new_tag(method.consumer_tag)
        deliveries = self._deliveries
        consumer = ChannelConsumer(
            deliveries,
            self,
            queue,
            tag,
            no_ack=method.no_ack,
            exclusive=method.exclusive,
            prefetch=deliveries.consumer_prefetch,
            priority=queue.validate_consume_arguments(method.arguments),
            arguments=method.arguments,
        )
        queue.check_consumable(
            exclusive=method.exclusive,
            no_ack=method.no_ack,
            prefetch=deliveries.consumer_prefetch,
            global_prefetch=deliveries.channel_prefetch,
        )
        self.by_tag[tag] = consumer
        if not method.no_wait:
            self._send(methods.BasicConsumeOk(consumer_tag=tag))
        queue.add_consumer(consumer)  # after consume-ok: deliveries must follow it

    def _new_tag(self, requested: str) -> str:
        tag = requested or _TAG_PREFIX + os.urandom(16).hex()
        if tag in self.by_tag:
            raise NotAllowed(f"attempt to reuse consumer tag '{tag}'")
        return tag

    def _consume_replies(self, method: methods.BasicConsume) -> None:
        """Consume amq.rabbitmq.reply-to: replies come straight here, never through a queue."""
        if not method.no_ack:
            raise PreconditionFailed("reply consumer cannot acknowledge")
        if self.reply_queue is not None:
            raise PreconditionFailed("reply consumer already set")
        tag = self._new_tag(method.consumer_tag)
        reply_queue = ReplyQueue(self._deliveries, self)
        consumer = ChannelConsumer(
            self._deliveries, self, reply_queue, tag, no_ack=True, exclusive=False, prefetch=0
        )
        reply_queue.consumer = consumer
        self.reply_queue = reply_queue
        self._vhost.reply_queues[reply_queue.name] = reply_queue
        self.by_tag[tag] = consumer
        if not method.no_wait:
            self._send(methods.BasicConsumeOk(consumer_tag=tag))

    def reply_consumer_gone(self, reply_queue: ReplyQueue) -> None:
        self._vhost.reply_queues.pop(reply_queue.name, None)
        if self.reply_queue is reply_queue:
            self.reply_queue = None

    def basic_cancel(self, method: methods.BasicCancel) -> None:
        consumer = self.by_tag.pop(method.consumer_tag, None)
        if consumer is not None:
            self._drop(consumer)
        if not method.no_wait:
            self._send(methods.BasicCancelOk(consumer_tag=method.consumer_tag))

    def consumer_lost(self, consumer: ChannelConsumer) -> None:
        """The queue went away under a consumer: tell the client if it understands that."""
        if self.by_tag.pop(consumer.tag, None) is None:
            return
        if self._cancel_notify():
            self._notify(methods.BasicCancel(consumer_tag=consumer.tag, no_wait=True))

    def _drop(self, consumer: ChannelConsumer) -> None:
        queue = consumer.queue
        # auto-delete: its last consumer went (a direct reply-to consumer's never does)
        if queue.remove_consumer(consumer) and isinstance(queue, Queue):
            self._vhost.remove_queue(queue)

    def basic_get(self, method: methods.BasicGet) -> None:
        self._user.check(self._vhost.name, "read", "queue", method.queue)  # before looking
        queue = self._queue(method.queue)
        entry = queue.get(no_ack=method.no_ack)
        if entry is None:
            self._deliveries.counts.get_empty += 1
            self._send(methods.BasicGetEmpty())
            return
        self._deliveries.get_ok(entry, no_ack=method.no_ack, message_count=queue.message_count)

    def release(self) -> set[Queue | ReplyQueue]:
        """Cancel every consumer (the channel is going); returns the queues they consumed from."""
        consumed = {consumer.queue for consumer in self.by_tag.values()}
        for consumer in list(self.by_tag.values()):
            self._drop(consumer)
        self.by_tag.clear()
        return consumed
