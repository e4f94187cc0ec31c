"""The AMQP 0-9-1 wire codec, built from the protocol data in spec/amqp-0-9-1.toml.

    from amqp_lite.wire import methods, Properties
    from amqp_lite.wire.frames import FrameDecoder, encode_method, encode_content, ...

Decoding never raises anything but BrokerError subclasses (FrameError 501 and friends).
"""

from __future__ import annotations

from amqp_lite.wire import methods
from amqp_lite.wire.properties import Properties

__all__ = ["Properties", "methods"]
