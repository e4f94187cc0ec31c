"""Reply codes: their names for reply texts and whether they close a channel or the connection."""

from __future__ import annotations

from amqp_lite.wire.spec import SPEC

_NAMES: dict[int, str] = {code.value: code.name for code in SPEC.reply_codes}
_HARD: frozenset[int] = frozenset(code.value for code in SPEC.reply_codes if code.hard)


def reply_text(code: int, text: str) -> str:
    """RabbitMQ's form: 'NOT_FOUND - no queue ...'."""
    prefix = f"{_NAMES.get(code, 'INTERNAL_ERROR')} - "
    # The codec's errors already read like RabbitMQ's whole text ('FRAME_ERROR - ...').
    return text if text.startswith(prefix) else prefix + text


def closes_connection(code: int) -> bool:
    return code in _HARD
