"""Publishing: a complete basic.publish becomes a routed message.

Checks what RabbitMQ checks once the content is whole (write permission, the exchange,
internal, the user_id property), turns the content into a `Message`, addresses direct reply-to
replies, routes (or holds the publish for tx.commit), returns unroutable mandatory messages and
counts the publish for confirms.
"""

from __future__ import annotations

from collections.abc import Callable

from amqp_lite.confirms import Confirms
from amqp_lite.delivery import Deliveries
from amqp_lite.errors import NotImplementedFeature
from amqp_lite.tracing import ChannelTracer
from amqp_lite.transaction import Transaction
from amqp_lite.wire import Properties, methods
from vhosts import Exchange, Message, User, VirtualHost
from vhosts.errors import AccessRefused, PreconditionFailed
from vhosts.message import parse_expiration
from vhosts.vhost import REPLY_TO

NO_ROUTE = 312


class Publisher:
    def __init__(
        self,
        vhost: VirtualHost,
        user: User,
        *,
        deliveries: Deliveries,
        confirms: Confirms,
        transaction: Transaction,
        reply_address: Callable[[], str | None],
        tracer: ChannelTracer,
    ) -> None:
        self._vhost = vhost
        self._user = user
        self._deliveries = deliveries  # basic.return goes out with them
        self._confirms = confirms
        self._transaction = transaction
        self._reply_address = reply_address  # the channel's direct reply-to address, if any
        self._tracer = tracer  # the firehose, used while the vhost's tracing is on

    def publish(
        self,
        method: methods.BasicPublish,
        properties: Properties,
        raw_properties: bytes,
        body: bytes,
    ) -> None:
        """The content of `method` is whole: route it."""
        if method.immediate:
            raise NotImplementedFeature("immediate=true")
        vhost = self._vhost
        # As RabbitMQ: refused before looking, so a missing exchange is 403 to whoever may not
        # write to it, and the default exchange is checked as amq.default.
        self._user.check(vhost.name, "write", "exchange", method.exchange)
        exchange = vhost.exchange(method.exchange)
        if exchange.internal:
            raise AccessRefused(f"cannot publish to internal {exchange.describe()}")
        user = self._user
        if user.topic_permissions and exchange.type_name == "topic":
            user.check_topic(vhost.name, exchange.name, "write", method.routing_key)
        if properties.user_id is not None:
            self._check_user_id(properties.user_id)
        message = Message(method.exchange, method.routing_key, properties, body, raw_properties)
        if properties.expiration is not None:
            message.ttl = parse_expiration(properties.expiration)
        if properties.reply_to == REPLY_TO:
            self._address_reply(message)
        if self._transaction.active:
            self._transaction.hold_publish(exchange, message, method.mandatory)
            return
        refused = self.route(exchange, message, method.mandatory)
        if self._confirms.active:  # which counts them for message_stats
            # Message.on_disk, spelt out: this is every confirmed publish's path.
            stored = message.store_id is not None or message.logged
            self._confirms.published(refused=refused, stored=stored)

    def route(self, exchange: Exchange, message: Message, mandatory: bool) -> bool:
        """Route and enqueue; True when some full queue refused the message."""
        vhost = self._vhost
        trace = self._tracer.published if vhost.tracing else None
        routed, refused = vhost.publish(exchange, message, trace)
        counts = self._deliveries.counts
        counts.publish += 1
        if mandatory and (not routed or _is_reply(exchange, message)):
            self._deliveries.send_return(NO_ROUTE, "NO_ROUTE", message)
            counts.return_unroutable += 1
        elif not routed:
            counts.drop_unroutable += 1
        return refused

    def _check_user_id(self, user_id: str) -> None:
        """As RabbitMQ: a message may only name its publisher, unless that is an impersonator."""
        user = self._user
        if user_id != user.name and "impersonator" not in user.tags:
            raise PreconditionFailed(
                f"user_id property set to '{user_id}' but authenticated user was '{user.name}'"
            )

    def _address_reply(self, message: Message) -> None:
        """Direct reply-to: `reply_to` names this channel's reply consumer, so replies find it."""
        address = self._reply_address()
        if address is None:
            raise PreconditionFailed("fast reply consumer does not exist")
        message.set_property("reply_to", address)


def _is_reply(exchange: Exchange, message: Message) -> bool:
    """A direct reply-to reply. RabbitMQ 3.10 hands it to the reply consumer beside routing,
    which finds no queue: a mandatory reply is delivered and returned (NO_ROUTE) both."""
    return not exchange.name and message.routing_key.startswith(REPLY_TO + ".")
