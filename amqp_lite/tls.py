"""TLS for the broker's listeners: the server context, and what a handshake tells a connection.

`server_ssl_context` is the one place a listener's TLS settings become an `ssl.SSLContext`: the
AMQP listener uses it, and so can any other port (management, metrics). TLS 1.2 and 1.3 only,
with the ciphers of Python's `ssl` defaults. Client certificates are checked as RabbitMQ's
`ssl_options` check them: `verify_none` asks for none; `verify_peer` asks for one and refuses a
bad one, and refuses a client without one only if `fail_if_no_peer_cert` is set.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import attrs

from amqp_lite.login import CERT_LOGIN_FROM, LOGIN_FROM_DN, TlsPeer

VERIFY_NONE = "verify_none"
VERIFY_PEER = "verify_peer"
DEFAULT_TLS_PORT = 5671  # amqps


class TlsConfigError(ValueError):
    """Settings that cannot make a TLS listener (a missing file, a CA-less verify_peer...)."""


@attrs.frozen
class TlsOptions:
    """A TLS listener's settings, named after RabbitMQ's `ssl_options`."""

    certfile: str | os.PathLike[str]
    keyfile: str | os.PathLike[str] | None = None  # None: the key is in certfile
    cafile: str | os.PathLike[str] | None = None  # the CAs client certificates must chain to
    verify: str = VERIFY_NONE
    fail_if_no_peer_cert: bool = False
    # Where EXTERNAL takes the user name from: RabbitMQ's ssl_cert_login_from.
    login_from: str = LOGIN_FROM_DN

    def context(self) -> ssl.SSLContext:
        """The listener's context; TlsConfigError if these settings cannot make one."""
        if self.login_from not in CERT_LOGIN_FROM:
            raise TlsConfigError(
                f"ssl_cert_login_from must be one of {', '.join(CERT_LOGIN_FROM)}, "
                f"not {self.login_from!r}"
            )
        return server_ssl_context(
            self.certfile,
            self.keyfile,
            self.cafile,
            verify=self.verify,
            fail_if_no_peer_cert=self.fail_if_no_peer_cert,
        )

    def peer(self, certificate: dict[str, Any] | None) -> TlsPeer:
        """What a finished handshake tells the connection: `certificate` is the client's, as
        `getpeercert()` gives it ({} or None without one)."""
        subject = certificate.get("subject") if certificate else None
        verified = self.verify == VERIFY_PEER
        return TlsPeer(subject=subject, verified=verified, login_from=self.login_from)


def server_ssl_context(
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None = None,
    cafile: str | os.PathLike[str] | None = None,
    *,
    verify: str = VERIFY_NONE,
    fail_if_no_peer_cert: bool = False,
) -> ssl.SSLContext:
    """A server-side context: this certificate and key, TLS 1.2 or 1.3, Python's ciphers.

    Raises TlsConfigError with a sentence saying what is wrong.
    """
    if verify not in (VERIFY_NONE, VERIFY_PEER):
        raise TlsConfigError(f"TLS verify must be {VERIFY_NONE} or {VERIFY_PEER}, not {verify!r}")
    if verify == VERIFY_PEER and cafile is None:
        raise TlsConfigError("TLS verify_peer needs a CA file to check client certificates")
    if fail_if_no_peer_cert and verify != VERIFY_PEER:
        raise TlsConfigError("TLS fail_if_no_peer_cert needs verify_peer")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as error:
        raise TlsConfigError(f"cannot use TLS certificate {certfile}: {error}") from None
    if cafile is not None:
        try:
            context.load_verify_locations(cafile)
        except (OSError, ssl.SSLError) as error:
            raise TlsConfigError(f"cannot use TLS CA file {cafile}: {error}") from None
    if verify == VERIFY_PEER:
        context.verify_mode = ssl.CERT_REQUIRED if fail_if_no_peer_cert else ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context
