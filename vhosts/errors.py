"""Errors of the broker's domain, each carrying the AMQP reply code that RabbitMQ would send.

The protocol layer turns any `BrokerError` into channel.close (soft codes) or connection.close
(hard codes) at one boundary; nothing below it needs to know which is which.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every error that becomes an AMQP close. `reply_code` says which close."""

    reply_code: int = 541  # INTERNAL_ERROR unless a subclass says otherwise

    def __init__(self, text: str, reply_code: int | None = None) -> None:
        super().__init__(text)
        self.text = text
        if reply_code is not None:
            self.reply_code = reply_code
        # The method being processed when it went wrong; the protocol boundary fills these in.
        self.class_id = 0
        self.method_id = 0


class AccessRefused(BrokerError):
    reply_code = 403


class NotFound(BrokerError):
    reply_code = 404


class ResourceLocked(BrokerError):
    reply_code = 405


class PreconditionFailed(BrokerError):
    reply_code = 406


class CommandInvalid(BrokerError):
    reply_code = 503


class NotAllowed(BrokerError):
    reply_code = 530


class ResourceError(BrokerError):
    reply_code = 506


class NotImplementedFeature(BrokerError):
    reply_code = 540


class InternalError(BrokerError):
    reply_code = 541
