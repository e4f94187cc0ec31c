"""Logging in, as RabbitMQ 3.10.8 does it: the SASL mechanisms, and why a login is refused.

`log_in` turns a connection.start-ok into a user, or raises one of two errors that the
connection handles as RabbitMQ's reader does:

- `LoginRefused` (wrong credentials, a blank password, a loopback-only user from elsewhere, no
  usable certificate for EXTERNAL): the client hears 403 "Login was refused..." if it announced
  the `authentication_failure_close` capability, and nothing otherwise; the reason goes only to
  the log.
- `LoginInvalid` (an unknown or unoffered mechanism, a response the mechanism cannot read): the
  client hears nothing at all.

Either way the socket is then closed after a delay (see `connection.SILENT_CLOSE_DELAY`), so a
client that guesses passwords cannot do so at full speed.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Collection
from typing import Any

import attrs

from amqp_lite.wire.fields import DECODE_ERRORS, table_items
from vhosts import User, Users

# RabbitMQ 3.10.8 lists its mechanisms in an order that varies from node to node; this is one
# it was seen to use.
PASSWORD_MECHANISMS = ("AMQPLAIN", "PLAIN")
EXTERNAL = "EXTERNAL"  # offered on TLS connections only: the client certificate is the login

# RabbitMQ's user that may connect only over loopback unless configured otherwise.
DEFAULT_LOOPBACK_USERS = frozenset({"guest"})

# Where EXTERNAL takes the user name from, as RabbitMQ's `ssl_cert_login_from`.
LOGIN_FROM_DN = "distinguished_name"
LOGIN_FROM_CN = "common_name"
CERT_LOGIN_FROM = (LOGIN_FROM_DN, LOGIN_FROM_CN)

_BLANK_PASSWORD = (
    "user '{}' attempted to log in with a blank password, which is prohibited by the internal "
    "authN backend. To use TLS/x509 certificate-based authentication, configure the client to "
    "use the EXTERNAL authentication mechanism. Alternatively change the password for the user "
    "to be non-blank."
)


class LoginRefused(Exception):
    def __init__(self, username: str, reason: str) -> None:
        super().__init__(reason)
        self.username = username
        self.reason = reason


class LoginInvalid(Exception):
    """The login could not even be read: no reply, only a log line and a delayed hang-up."""


@attrs.frozen
class TlsPeer:
    """What EXTERNAL needs to know of a TLS connection's client certificate."""

    # The certificate's subject as `ssl.SSLSocket.getpeercert()` gives it, None without one.
    subject: tuple[tuple[tuple[str, str], ...], ...] | None
    verified: bool  # the listener verifies client certificates (RabbitMQ's verify_peer)
    login_from: str = LOGIN_FROM_DN


def offered_mechanisms(tls: TlsPeer | None) -> list[str]:
    return [*PASSWORD_MECHANISMS, EXTERNAL] if tls is not None else list(PASSWORD_MECHANISMS)


def log_in(
    users: Users,
    mechanism: str,
    response: bytes,
    *,
    tls: TlsPeer | None = None,
    peer_host: str = "",
    loopback_users: Collection[str] = DEFAULT_LOOPBACK_USERS,
) -> User:
    """The user this start-ok logs in as; raises LoginRefused or LoginInvalid."""
    if mechanism not in offered_mechanisms(tls):
        known = (*PASSWORD_MECHANISMS, EXTERNAL)
        adjective = "invalid" if mechanism in known else "unknown"
        raise LoginInvalid(f"{adjective} authentication mechanism '{mechanism}'")
    if mechanism == EXTERNAL:
        assert tls is not None
        username = certificate_user_name(tls)
        user = users.get(username)
        if user is None:
            raise LoginRefused(username, f"user '{username}' - invalid credentials")
    else:
        login, password = _plain(response) if mechanism == "PLAIN" else _amqplain(response)
        username = login.decode("utf-8", "replace")
        if not password:
            raise LoginRefused(username, _BLANK_PASSWORD.format(username))
        user = users.get(login.decode("utf-8", "surrogateescape"))
        if user is None or not user.check_password(password):
            raise LoginRefused(username, f"user '{username}' - invalid credentials")
    if user.name in loopback_users and not is_loopback(peer_host):
        raise LoginRefused(user.name, f"user '{user.name}' can only connect via localhost")
    return user


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback address. An unknown peer ("", an embedding
    that gives none) counts as local."""
    if not host:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


# -- the mechanisms -------------------------------------------------------------------------------


def _plain(response: bytes) -> tuple[bytes, bytes]:
    """RFC 4616 without an authorization identity, which RabbitMQ refuses: \\0user\\0password."""
    parts = response.split(b"\x00")
    if len(parts) != 3 or parts[0]:
        raise LoginInvalid(f"PLAIN response {response!r} invalid")
    return parts[1], parts[2]


def _amqplain(response: bytes) -> tuple[bytes, bytes]:
    """A field table without its length. As RabbitMQ: the first LOGIN and the first PASSWORD
    count, and either may be a byte array as long as the other is a string."""
    try:
        items = table_items(struct.pack(">I", len(response)) + response)
    except DECODE_ERRORS:
        raise LoginInvalid("AMQPLAIN response is not a field table") from None
    fields: dict[str, tuple[str, Any]] = {}
    for key, tag, value in items:
        fields.setdefault(key, (tag, value))
    if "LOGIN" not in fields or "PASSWORD" not in fields:
        raise LoginInvalid("AMQPLAIN auth info is missing LOGIN or PASSWORD field")
    (login_tag, login), (password_tag, password) = fields["LOGIN"], fields["PASSWORD"]
    if "S" not in (login_tag, password_tag):
        raise LoginInvalid("AMQPLAIN auth info uses unsupported type for LOGIN or PASSWORD field")
    return _octets(login), _octets(password)


def _octets(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bytes):
        return value
    raise LoginInvalid(f"AMQPLAIN LOGIN or PASSWORD of unusable value {value!r}")


# -- EXTERNAL: the user name in a client certificate ----------------------------------------------

# RabbitMQ's short names for the attributes of a distinguished name (others keep Python's).
_SHORT_NAMES = {
    "surname": "SN",
    "givenName": "GIVENNAME",
    "initials": "INITIALS",
    "generationQualifier": "GENERATIONQUALIFIER",
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "title": "TITLE",
    "countryName": "C",
    "serialNumber": "SERIALNUMBER",
    "pseudonym": "PSEUDONYM",
    "domainComponent": "DC",
    "emailAddress": "EMAILADDRESS",
    "streetAddress": "STREET",
    "userId": "UID",
}


def certificate_user_name(tls: TlsPeer) -> str:
    """The user name EXTERNAL logs in as; LoginRefused when there is none to be had."""
    if tls.subject is None:
        raise LoginRefused("", "connection peer presented no TLS (x.509) certificate")
    if not tls.verified:  # an unverified certificate proves nothing
        raise LoginRefused("", "TLS configuration is unsafe")
    if tls.login_from == LOGIN_FROM_CN:
        names = [value for rdn in tls.subject for key, value in rdn if key == "commonName"]
        if not names:
            raise LoginRefused("", "no name found")
        return ",".join(names)
    return distinguished_name(tls.subject)


def distinguished_name(subject: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    """RFC 4514 form, as RabbitMQ writes it: the last RDN first, `+` within a multi-valued RDN."""
    return ",".join(
        "+".join(f"{_SHORT_NAMES.get(key, key)}={_escape(value)}" for key, value in rdn)
        for rdn in reversed(subject)
    )


def _escape(value: str) -> str:
    out = []
    for index, char in enumerate(value):
        if (index == 0 and char in " #") or char in '"+,;<>\\':
            out.append("\\" + char)
        elif index == len(value) - 1 and char == " ":
            out.append("\\ ")
        elif ord(char) < 32 or ord(char) >= 126:  # non-printable or non-ASCII: its UTF-8 octets
            out.extend(f"\\{octet:02X}" for octet in char.encode())
        else:
            out.append(char)
    return "".join(out)
