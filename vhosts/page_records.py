"""The bytes of a page: ready queue entries, one record each, and the entries read back.

A record is a fixed header and then the variable parts in this order: exchange name, routing
key, encoded properties, body, BCC keys (JSON, empty when there are none). The header holds the
entry's position, expiry (NaN for none), paged id (see `Message.paged_out`; 0 when the store
does not hold it), redelivered flag, priority and the lengths of the variable parts. Names are
UTF-8 with surrogate escapes, so any octets a client sent come back as they were.
"""

from __future__ import annotations

import json
import math
import struct
from array import array
from collections.abc import Callable, Iterable

from vhosts.message import Message
from vhosts.queue import Queue, QueueEntry

# seq, expires_at, paged id, redelivered, priority, and the lengths of exchange, routing key,
# properties, body and BCC keys.
HEADER = struct.Struct("<QdqBBHIIII")

EncodeProperties = Callable[[object], bytes]


class EncodedPage:
    """A page as written, and what the queue keeps in memory about it."""

    __slots__ = ("body_bytes", "count", "data", "expires_at", "stored")

    def __init__(
        self,
        data: bytes,
        count: int,
        body_bytes: int,
        expires_at: float | None,
        stored: array[int] | None,
    ) -> None:
        self.data = data
        self.count = count
        self.body_bytes = body_bytes
        self.expires_at = expires_at  # its first entry's: where the queue expires messages
        # (seq, paged id) of each entry the store holds, so they can be let go unread.
        self.stored = stored


def encode_page(
    entries: Iterable[QueueEntry],
    encode_properties: EncodeProperties,
    paged_id: Callable[[QueueEntry], int],
) -> EncodedPage:
    """Records for `entries`; `paged_id` is asked for each stored one (see Message.paged_out)."""
    parts: list[bytes] = []
    append = parts.append
    pack = HEADER.pack
    count = body_bytes = 0
    first_expiry: float | None = None
    stored: array[int] | None = None
    last_names: tuple[str, str, bytes, bytes] = ("", "", b"", b"")
    nan = math.nan
    for entry in entries:
        message = entry.message
        properties = message.encoded_properties
        if properties is None:
            properties = message.encoded_properties = encode_properties(message.properties)
        exchange, routing_key = message.exchange, message.routing_key
        if exchange is last_names[0] and routing_key is last_names[1]:
            exchange_octets, key_octets = last_names[2], last_names[3]
        else:
            exchange_octets = _octets(exchange)
            key_octets = _octets(routing_key)
            last_names = (exchange, routing_key, exchange_octets, key_octets)
        bcc = json.dumps(message.bcc).encode() if message.bcc else b""
        identity = 0
        if entry.stored:
            identity = paged_id(entry)
            if stored is None:
                stored = array("q")
            stored.append(entry.seq)
            stored.append(identity)
        body = message.body
        expires_at = entry.expires_at
        if count == 0:
            first_expiry = expires_at
        append(
            pack(
                entry.seq,
                nan if expires_at is None else expires_at,
                identity,
                entry.redelivered,
                entry.priority,
                len(exchange_octets),
                len(key_octets),
                len(properties),
                len(body),
                len(bcc),
            )
        )
        append(exchange_octets)
        append(key_octets)
        append(properties)
        append(body)
        if bcc:
            append(bcc)
        count += 1
        body_bytes += len(body)
    return EncodedPage(b"".join(parts), count, body_bytes, first_expiry, stored)


def decode_page(data: bytes, queue: Queue) -> list[QueueEntry]:
    """The entries of a page, as new objects of `queue`."""
    entries: list[QueueEntry] = []
    append = entries.append
    unpack_from = HEADER.unpack_from
    header_size = HEADER.size
    position, end = 0, len(data)
    last_exchange: tuple[bytes, str] = (b"", "")
    last_key: tuple[bytes, str] = (b"", "")
    while position < end:
        (
            seq,
            expires_at,
            identity,
            redelivered,
            priority,
            exchange_length,
            key_length,
            properties_length,
            body_length,
            bcc_length,
        ) = unpack_from(data, position)
        position += header_size
        octets = data[position : position + exchange_length]
        if octets != last_exchange[0]:
            last_exchange = (octets, _text(octets))
        position += exchange_length
        octets = data[position : position + key_length]
        if octets != last_key[0]:
            last_key = (octets, _text(octets))
        position += key_length
        properties = data[position : position + properties_length]
        position += properties_length
        body = data[position : position + body_length]
        position += body_length
        message = Message(last_exchange[1], last_key[1], None, body, properties)
        if bcc_length:
            message.bcc = tuple(json.loads(data[position : position + bcc_length]))
            position += bcc_length
        if identity:
            message.paged_in(identity)
        append(
            QueueEntry(
                message,
                queue,
                seq,
                bool(redelivered),
                identity != 0,
                None if expires_at != expires_at else expires_at,  # NaN: none
                priority,
            )
        )
    return entries


def _octets(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _text(octets: bytes) -> str:
    return octets.decode("utf-8", "surrogateescape")
