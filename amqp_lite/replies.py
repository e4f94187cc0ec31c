"""Reply codes: their names for reply texts and whether they close a channel or the connection."""

from __future__ import annotations

from amqp_lite.wire.spec import SPEC
from exchanges.values import octets

_NAMES: dict[int, str] = {code.value: code.name for code in SPEC.reply_codes}
_HARD: frozenset[int] = frozenset(code.value for code in SPEC.reply_codes if code.hard)


def reply_text(code: int, text: str) -> str:
    """RabbitMQ's form: 'NOT_FOUND - no queue ...', cut to fit a shortstr as RabbitMQ cuts it."""
    prefix = f"{_NAMES.get(code, 'INTERNAL_ERROR')} - "
    # The codec's errors already read like RabbitMQ's whole text ('FRAME_ERROR - ...').
    return fitted(text if text.startswith(prefix) else prefix + text)


def fitted(text: str) -> str:
    """A reply text of at most 255 octets: a longer one keeps its first 252 and ends in '...',
    as RabbitMQ 3.10.8 cuts it, even in the middle of a character (whose octets then go out as
    they are, as surrogate escapes)."""
    if len(text) <= 63:  # 4 octets a character at most: short enough without looking
        return text
    data = octets(text)
    if len(data) <= 255:
        return text
    return (data[:252] + b"...").decode("utf-8", "surrogateescape")


def closes_connection(code: int) -> bool:
    return code in _HARD
