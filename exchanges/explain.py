"""What ``Router.explain`` returns: one verdict per binding, written for a person asking
"why did (or didn't) my message go there?"."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import attrs


@attrs.frozen
class BindingVerdict:
    destination: Hashable
    binding_key: str
    arguments: dict[str, Any]
    matched: bool
    reason: str
    # Topic only: what each wildcard took, in pattern order, e.g. (("*", "usd"), ("#", "")).
    captures: tuple[tuple[str, str], ...] = ()


def quote(text: str) -> str:
    """Show a key in single quotes so empty strings and spaces stay visible."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
