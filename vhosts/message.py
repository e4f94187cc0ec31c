"""A published message: routing data, properties, body, and how the broker rewrites it.

A message routed to several queues is one `Message` shared by a `vhosts.queue.QueueEntry` in
each; the entry holds what differs per queue (its position, whether it was delivered before).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from sys import intern
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs

from vhosts.errors import PreconditionFailed

if TYPE_CHECKING:
    from vhosts.store import Store


class Properties(Protocol):
    """The content properties the domain reads: the protocol layer's object has all 14, as
    attributes of an attrs class (see `evolve`)."""

    @property
    def headers(self) -> dict[str, Any] | None: ...
    @property
    def delivery_mode(self) -> int | None: ...
    @property
    def priority(self) -> int | None: ...
    @property
    def expiration(self) -> str | None: ...


def evolve(properties: Properties, **changes: Any) -> Properties:
    """A copy of `properties` with `changes`, as the broker rewrites them."""
    copy: Properties = attrs.evolve(cast(Any, properties), **changes)  # an attrs instance
    return copy


class Message:
    """What a publisher sent: immutable once routed.

    `properties` is the protocol layer's property object (attribute access to the 14 basic
    properties); `encoded_properties` caches their wire form so a delivery need not encode them
    again. The domain reads properties and encodes them only through the store's codec.
    """

    __slots__ = (
        "_properties",
        "bcc",
        "body",
        "encoded_properties",
        "exchange",
        "logged",
        "routed",
        "routing_key",
        "store_id",
        "store_refs",
        "ttl",
    )

    # How to decode `encoded_properties` for a message recovered without its properties object;
    # the node sets it from the store's codec. Start-up recovery leaves properties encoded,
    # since a recovered message is mostly just delivered, which needs only the encoded form.
    decode_properties: Callable[[bytes], Properties] | None = None

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        properties: Properties | None,  # None: decoded from encoded_properties when asked
        body: bytes,
        encoded_properties: bytes | None = None,
    ) -> None:
        # Interned: the messages waiting in a queue mostly share their names, and a name is as
        # big as a small body.
        self.exchange = intern(exchange)
        self.routing_key = intern(routing_key)
        self._properties = properties
        self.body = body
        self.encoded_properties = encoded_properties
        self.store_id: int | None = None  # set once the durable store holds the content
        self.store_refs = 0  # durable queues and delayed exchanges holding it; see keep_in
        # A stream's log holds it: on disk once the store's current write cycle is done.
        self.logged = False
        self.ttl: int | None = None  # milliseconds, from the `expiration` property when set
        # The BCC header's keys: the header goes before routing, but RabbitMQ keeps the keys
        # with the message and routes its dead letters by them too.
        self.bcc: tuple[str, ...] = ()
        self.routed = False  # see queued

    @property
    def properties(self) -> Properties:
        properties = self._properties
        if properties is None:
            assert Message.decode_properties is not None and self.encoded_properties is not None
            properties = self._properties = Message.decode_properties(self.encoded_properties)
        return properties

    def set_property(self, name: str, value: Any) -> None:
        """Change a property before the message is queued (the broker's own rewrites)."""
        self._properties = evolve(self.properties, **{name: value})
        self.encoded_properties = None

    def drop_header(self, name: str) -> None:
        """Remove one header before the message is queued (BCC must not reach receivers)."""
        headers = self.properties.headers or {}
        self.set_property("headers", {k: v for k, v in headers.items() if k != name})

    def keep_in(self, store: Store) -> int:
        """One more holder of the stored content (a queue entry, a delayed exchange's hold);
        the first saves it. Returns its id in the store."""
        if self.store_id is None:
            if self.encoded_properties is None:
                self.encoded_properties = store.codec.encode_properties(self.properties)
            self.store_id = store.save_message(
                self.exchange, self.routing_key, self.encoded_properties, self.body, self.bcc
            )
        if self.store_refs < 0:  # counted by the store (see paged_out)
            store.add_holder(self.store_id)
        else:
            self.store_refs += 1
        return self.store_id

    def let_go(self, store: Store) -> None:
        """One holder fewer; the stored content goes with the last."""
        assert self.store_id is not None
        if self.store_refs < 0:  # counted by the store, since a holder paged it out
            store.drop_holder(self.store_id)
            return
        self.store_refs -= 1
        if not self.store_refs:
            store.delete_message(self.store_id)

    # A stored message a queue pages out leaves memory with that queue's hold on its content,
    # which a page record then carries as its "paged id": the store id when the page held the
    # only hold, its negation when the count of holders moved to the store (`Store.holders`)
    # because other holders, in memory or in pages, hold the same content.

    def paged_out(self, store: Store) -> int:
        """One holder of the stored content goes to a page: the paged id the page keeps."""
        store_id = self.store_id
        assert store_id is not None
        if self.store_refs == 1 and self.routed:
            return store_id  # the page takes over the only hold there will ever be
        if self.store_refs > 0:  # others hold it too, or may yet: from now on the store counts
            store.count_holders(store_id, self.store_refs)
            self.store_refs = -1
        return -store_id

    def paged_in(self, paged_id: int) -> None:
        """A message read back from a page holds its stored content as the page did."""
        if paged_id > 0:
            self.store_id, self.store_refs = paged_id, 1
        else:
            self.store_id, self.store_refs = -paged_id, -1

    @staticmethod
    def let_go_paged(store: Store, paged_id: int) -> None:
        """A page's hold on stored content goes without the message being read back."""
        if paged_id > 0:
            store.delete_message(paged_id)
        else:
            store.drop_holder(-paged_id)

    def queued(self) -> None:
        """Routing is over: no queue takes it from now on (a copy, if anything: a dead letter,
        a delayed release). While it waits, only its encoded properties are kept (decoded again
        when asked): a decoded property object costs more memory than a small body."""
        self.routed = True
        if self.encoded_properties is not None and Message.decode_properties is not None:
            self._properties = None

    @property
    def on_disk(self) -> bool:
        """Did routing write it anywhere durable (so that a confirm waits for the fsync)?"""
        return self.store_id is not None or self.logged

    @property
    def persistent(self) -> bool:
        return self.properties.delivery_mode == 2

    @property
    def headers(self) -> dict[str, Any] | None:
        return self.properties.headers

    def __repr__(self) -> str:
        return f"<Message {self.exchange!r}/{self.routing_key!r} {len(self.body)} bytes>"


def parse_expiration(text: str) -> int:
    """The `expiration` property as milliseconds, refused with RabbitMQ's texts when invalid."""
    match = _LEADING_INTEGER.match(text)
    if match is None:
        raise _invalid_expiration(text, "no_integer")
    leftover = text[match.end() :]
    if leftover:
        raise _invalid_expiration(text, "leftover_string", f'"{leftover}"')
    value = int(match.group())
    if value > MAX_EXPIRATION:
        raise _invalid_expiration(text, "value_too_large", str(value))
    if value < 0:
        raise _invalid_expiration(text, "value_negative", str(value))
    return value


MAX_EXPIRATION = 315_360_000_000  # RabbitMQ's ceiling: ten years, in milliseconds

_LEADING_INTEGER = re.compile(r"[+-]?[0-9]+")


def _invalid_expiration(text: str, reason: str, value: str | None = None) -> PreconditionFailed:
    prefix = f"invalid expiration '{text}': "
    if value is None:
        return PreconditionFailed(prefix + reason)
    # Erlang's ~p prints the {reason,value} pair on one line only while it ends before column
    # 79; past that the value goes on a second line, under the pair's first element.
    pair = f"{{{reason},{value}}}"
    if len(prefix) + len(pair) >= 79:
        pair = f"{{{reason},\n{' ' * (len(prefix) + 1)}{value}}}"
    return PreconditionFailed(prefix + pair)
