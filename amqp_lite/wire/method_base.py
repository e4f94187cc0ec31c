"""`Method`, the base of the method classes methods.py builds from the spec.

In a module of its own so that the typed stub of those classes (spec_types.pyi) can name it
without importing the codec that builds them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from amqp_lite.wire.spec import MethodSpec

__all__ = ["Method"]


class Method:
    """Base of the generated method classes."""

    __slots__ = ()
    CLASS_ID: ClassVar[int]
    METHOD_ID: ClassVar[int]
    NAME: ClassVar[str]
    SYNCHRONOUS: ClassVar[bool]
    HAS_CONTENT: ClassVar[bool]
    RESPONSES: ClassVar[tuple[str, ...]]
    SPEC: ClassVar[MethodSpec]
    # (channel, method) -> whole method frame, for the few methods with a hand-written encoder
    _FAST_ENCODE: ClassVar[staticmethod[[int, Any], bytes] | None] = None
