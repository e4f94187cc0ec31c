"""FrameDecoder used the way a reader loop uses it: stop after any frame, feed more, go on."""

from __future__ import annotations

from amqp_lite.wire import methods
from amqp_lite.wire.frames import BodyFrame, FrameDecoder, MethodFrame, encode_body, encode_method

BIG = encode_body(1, b"x" * 1000, 131072)
SMALL = encode_method(0, methods.ConnectionCloseOk())


def test_stopping_after_a_frame_that_arrived_in_pieces_leaves_no_stale_need() -> None:
    decoder = FrameDecoder()
    decoder.feed(BIG[:10])
    assert list(decoder.frames()) == []  # waits for the rest of the big frame
    decoder.feed(BIG[10:] + SMALL)
    assert next(decoder.frames()) == BodyFrame(1, b"x" * 1000)  # and the caller stops here
    assert list(decoder.frames()) == [MethodFrame(0, methods.ConnectionCloseOk())]
    decoder.feed(SMALL)
    assert list(decoder.frames()) == [MethodFrame(0, methods.ConnectionCloseOk())]
    assert decoder.buffered == 0
