"""Content assembly: a basic.publish, its content header and its body frames, made whole.

Nothing may come between those frames on a channel. `ContentAssembler` collects them, hands the
complete publish on, and raises RabbitMQ's UNEXPECTED_FRAME errors (naming the basic.publish,
as RabbitMQ does) for anything out of order.
"""

from __future__ import annotations

from collections.abc import Callable

from amqp_lite.errors import UnexpectedFrame
from amqp_lite.limits import Limits
from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import BodyFrame, HeaderFrame
from amqp_lite.wire.methods import Method
from vhosts.errors import BrokerError, PreconditionFailed

# RabbitMQ's text for a content frame where a method frame should be.
NOT_A_METHOD = "expected method frame, got non method frame instead"

# Called with the publish method, its properties (decoded and as received) and the whole body.
OnContent = Callable[[methods.BasicPublish, Properties, bytes, bytes], None]


class ContentAssembler:
    __slots__ = (
        "_body",
        "_body_size",
        "_limits",
        "_max_size",
        "_on_content",
        "_properties",
        "_raw_properties",
        "_received",
        "method",
    )

    def __init__(self, on_content: OnContent, limits: Limits) -> None:
        self._on_content = on_content
        self._limits = limits
        self._max_size = limits.max_message_size
        self.method: methods.BasicPublish | None = (
            None  # the publish whose content is on its way, if any
        )
        self._properties: Properties | None = None
        self._raw_properties = b""
        self._body_size = 0
        self._body: list[bytes] = []
        self._received = 0

    def start(self, method: methods.BasicPublish) -> None:
        """A basic.publish: its content follows (and it is checked once that is whole)."""
        self.method = method

    def content_expected(self) -> BrokerError:
        """The error for some other frame where the publish's content should continue."""
        assert self.method is not None, "asked only while content is on its way"
        if self._properties is None:
            text = "expected content header for class 60, got non content header frame instead"
        else:
            text = "expected content body, got non content body frame instead"
        return blaming(UnexpectedFrame(text), self.method)

    def header(self, frame: HeaderFrame) -> None:
        method = self.method
        if method is None:
            raise UnexpectedFrame(NOT_A_METHOD)
        if self._properties is not None:
            raise self.content_expected()
        if frame.class_id != method.CLASS_ID:
            raise blaming(
                UnexpectedFrame(
                    f"expected content header for class {method.CLASS_ID}, "
                    f"got one for class {frame.class_id} instead"
                ),
                method,
            )
        if frame.body_size > self._max_size:
            # Refused on the header's word, before a byte of the body is kept: the body's
            # frames, if the client sends them, meet a closed channel and are dropped.
            too_large = self._limits.message_too_large(frame.body_size)
            raise blaming(PreconditionFailed(str(too_large)), method)
        self._properties = frame.properties
        self._raw_properties = frame.raw_properties
        self._body_size = frame.body_size
        if frame.body_size == 0:
            self._complete(b"")

    def body(self, frame: BodyFrame) -> None:
        method = self.method
        if method is None:
            raise UnexpectedFrame(NOT_A_METHOD)
        if self._properties is None:
            raise self.content_expected()
        payload = frame.payload
        if not self._body and len(payload) == self._body_size:  # most bodies: one frame
            self._complete(payload)
            return
        self._body.append(payload)
        self._received += len(payload)
        if self._received >= self._body_size:
            if self._received > self._body_size:
                raise blaming(
                    UnexpectedFrame("content body larger than its header announced"), method
                )
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            self._complete(body)

    def _complete(self, body: bytes) -> None:
        method, properties, raw = self.method, self._properties, self._raw_properties
        self.method, self._properties, self._received = None, None, 0
        if self._body:
            self._body = []
        assert method is not None and properties is not None
        try:
            self._on_content(method, properties, raw, body)
        except BrokerError as error:
            blaming(error, method)
            raise


def blaming(error: BrokerError, publish: Method) -> BrokerError:
    """RabbitMQ names the basic.publish in the close for anything wrong with its content."""
    if not error.class_id:
        error.class_id, error.method_id = publish.CLASS_ID, publish.METHOD_ID
    return error
