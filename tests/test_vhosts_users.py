"""Users' permissions, in memory: RabbitMQ 3.10.8 searches each pattern in the resource name."""

from __future__ import annotations

import pytest

from vhosts.errors import AccessRefused
from vhosts.users import Permission, User


@pytest.mark.parametrize(
    ("pattern", "resource", "allowed"),
    [
        ("^ann\\.", "ann.q", True),  # a prefix: the rest of the name is free
        ("ann", "xannx", True),  # unanchored, found anywhere
        ("^ann$", "ann.q", False),
        (".*", "anything", True),
        ("", "anything", False),  # the empty pattern allows nothing
    ],
)
def test_a_permission_pattern_is_searched_in_the_name(
    pattern: str, resource: str, allowed: bool
) -> None:
    user = User("ann", "", permissions={"/": Permission(pattern, pattern, pattern)})
    if allowed:
        user.check("/", "configure", "queue", resource)
    else:
        with pytest.raises(AccessRefused):
            user.check("/", "configure", "queue", resource)
