"""Users, their passwords, and what each may do in each vhost."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
from collections.abc import Iterator, Mapping

import attrs

from vhosts.errors import AccessRefused

# The name RabbitMQ checks permissions against for the default exchange, whose name is "".
DEFAULT_EXCHANGE_PERMISSION_NAME = "amq.default"


@attrs.define
class Permission:
    """RabbitMQ's three regular expressions over resource names."""

    configure: str = ".*"
    write: str = ".*"
    read: str = ".*"

    def allows(self, kind: str, resource: str) -> bool:
        return _matches(getattr(self, kind), resource)


@attrs.define
class TopicPermission:
    """RabbitMQ's topic permission on one topic exchange: the routing keys a user may publish
    with (write) and bind with (read). `{username}` and `{vhost}` in a pattern stand for the
    user's name and the vhost's."""

    exchange: str
    write: str = ".*"
    read: str = ".*"


@functools.lru_cache(maxsize=4096)
def _matches(pattern: str, resource: str) -> bool:
    # Checked on every publish, against the same few exchange names: remember the verdicts.
    return bool(pattern) and re.search(pattern, resource) is not None


# RabbitMQ's hashing modules, as definitions files name them, and the digest each one uses.
HASHING_ALGORITHMS = {
    "rabbit_password_hashing_sha256": "sha256",
    "rabbit_password_hashing_sha512": "sha512",
    "rabbit_password_hashing_md5": "md5",  # what RabbitMQ before 3.6 used
}
DEFAULT_HASHING = "rabbit_password_hashing_sha256"


def hashing_module(name: str) -> str:
    """RabbitMQ's module name for a hashing algorithm given as one ("sha512" will do too);
    ValueError for one it does not have."""
    module = name if name in HASHING_ALGORITHMS else f"rabbit_password_hashing_{name}"
    if module not in HASHING_ALGORITHMS:
        known = ", ".join(HASHING_ALGORITHMS)
        raise ValueError(f"unknown password hashing algorithm '{name}' (known: {known})")
    return module


def hash_password(
    password: str, salt: bytes | None = None, algorithm: str = DEFAULT_HASHING
) -> str:
    """RabbitMQ's format, whatever the algorithm: base64(salt + digest(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    digest = hashlib.new(HASHING_ALGORITHMS[algorithm], salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


def password_matches(
    password_hash: str, password: str | bytes, algorithm: str = DEFAULT_HASHING
) -> bool:
    # An empty hash is a user without a password (rabbitmqctl clear_password): no password fits.
    digest_name = HASHING_ALGORITHMS.get(algorithm)
    if not password_hash or digest_name is None:
        return False
    try:
        raw = base64.b64decode(password_hash, validate=True)
    except ValueError:
        return False
    salt, expected = raw[:4], raw[4:]
    octets = password if isinstance(password, bytes) else password.encode()
    digest = hashlib.new(digest_name, salt + octets).digest()
    return hmac.compare_digest(digest, expected)


@attrs.define
class User:
    name: str
    password_hash: str
    hashing_algorithm: str = DEFAULT_HASHING
    tags: list[str] = attrs.Factory(list)
    permissions: dict[str, Permission] = attrs.Factory(dict)  # by vhost name
    # By vhost, then exchange; a topic exchange without one allows any routing key.
    topic_permissions: dict[str, dict[str, TopicPermission]] = attrs.Factory(dict)
    # RabbitMQ's user limits (max-connections, max-channels) as set; see vhosts.limits.
    limits: dict[str, int] = attrs.Factory(dict)

    def check_password(self, password: str | bytes) -> bool:
        return password_matches(self.password_hash, password, self.hashing_algorithm)

    def may_enter(self, vhost: str) -> bool:
        return vhost in self.permissions

    def check(self, vhost: str, kind: str, resource_kind: str, name: str) -> None:
        """Raise 403 unless this user has `kind` (configure/write/read) on the resource.

        The default exchange is checked, and named in the refusal, as `amq.default`: its own
        name, "", would be allowed by a pattern such as `^$`, meant to allow nothing.
        """
        if not name and resource_kind == "exchange":
            name = DEFAULT_EXCHANGE_PERMISSION_NAME
        permission = self.permissions.get(vhost)
        if permission is None or not permission.allows(kind, name):
            raise AccessRefused(
                f"access to {resource_kind} '{name}' in vhost '{vhost}' "
                f"refused for user '{self.name}'"
            )

    def check_topic(
        self,
        vhost: str,
        exchange: str,
        kind: str,
        routing_key: str,
        variables: Mapping[str, str] | None = None,
    ) -> None:
        """Raise 403 unless the routing key passes this user's topic permission (`kind`: write
        for publishing, read for binding) on `exchange`; allowed when it has none there.

        As RabbitMQ: `{username}` and `{vhost}`, and any `variables`, are put in the pattern
        as they are (not escaped), an empty pattern allows only the empty key, and the pattern
        is searched for in the key.
        """
        permission = self.topic_permissions.get(vhost, {}).get(exchange)
        if permission is None:
            return
        pattern = getattr(permission, kind) or "^$"
        for name, value in {"username": self.name, "vhost": vhost, **(variables or {})}.items():
            pattern = pattern.replace("{" + name + "}", value)
        if not _matches(pattern, routing_key):
            raise AccessRefused(
                f"access to topic '{routing_key}' in exchange '{exchange}' in vhost '{vhost}' "
                f"refused for user '{self.name}'"
            )


class Users:
    def __init__(self) -> None:
        self._users: dict[str, User] = {}

    def add(
        self,
        name: str,
        password: str | None = None,
        *,
        password_hash: str | None = None,
        tags: list[str] | None = None,
        hashing_algorithm: str = DEFAULT_HASHING,
    ) -> User:
        if password_hash is None:
            password_hash = hash_password(password or "", algorithm=hashing_algorithm)
        user = User(name, password_hash, hashing_algorithm, tags=list(tags or []))
        self._users[name] = user
        return user

    def get(self, name: str) -> User | None:
        return self._users.get(name)

    def remove(self, name: str) -> User | None:
        return self._users.pop(name, None)

    def authenticate(self, name: str, password: str) -> User | None:
        user = self._users.get(name)
        if user is None or not user.check_password(password):
            return None
        return user

    def __iter__(self) -> Iterator[User]:
        return iter(self._users.values())

    def __len__(self) -> int:
        return len(self._users)
