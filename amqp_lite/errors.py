"""Protocol errors: malformed or out-of-order input, with the reply code RabbitMQ sends for it."""

from __future__ import annotations

from vhosts.errors import BrokerError, CommandInvalid, NotImplementedFeature

__all__ = [
    "BrokerError",
    "ChannelError",
    "CommandInvalid",
    "FrameError",
    "FrameSyntaxError",
    "NotImplementedFeature",
    "UnexpectedFrame",
]


class FrameError(BrokerError):
    """Bad frame envelope: wrong frame-end octet, oversize frame, unknown frame type."""

    reply_code = 501


class FrameSyntaxError(BrokerError):
    """A frame whose payload does not decode as its method or header says."""

    reply_code = 502


class ChannelError(BrokerError):
    """A method for a channel that is not open (or opened twice)."""

    reply_code = 504


class UnexpectedFrame(BrokerError):
    reply_code = 505
