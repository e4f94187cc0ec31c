"""Throwaway certificates, so that a test can run TLS as easily as plain TCP.

`TestCertificates(directory)` makes a certificate authority and a server certificate for
`localhost`, `127.0.0.1` and `::1`, all as PEM files in `directory`, and issues client
certificates on request (for EXTERNAL logins). Keys are ECDSA P-256: a few milliseconds to make,
where RSA takes tens, and every client we test (Python, Java, Erlang) takes them.

Made with the `cryptography` package (install `amqp-lite[tls]`), rather than by running the
`openssl` command: no subprocess, nothing to find on PATH (Windows, slim containers), and the
certificate's fields (subject alternative names for an IP address, key usage, CA constraints)
are set directly instead of through a configuration file.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        "generated TLS certificates need the 'cryptography' package: pip install 'amqp-lite[tls]'"
    ) from error

VALID_FOR = datetime.timedelta(days=7)
SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1", "::1")


class TestCertificates:
    """A CA, a server certificate and key, and client certificates issued on demand.

    Paths: `ca` (the CA certificate clients trust), `server_cert`, `server_key`.
    """

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amqp-lite test CA")])
        self._ca_name = ca_name
        ca_cert = (
            _builder(ca_name, ca_name, self._ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca = self._write("ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM))
        self.server_cert, self.server_key = self._issue(
            "server",
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
            ExtendedKeyUsageOID.SERVER_AUTH,
            [x509.DNSName(name) for name in SERVER_NAMES]
            + [x509.IPAddress(ipaddress.ip_address(a)) for a in SERVER_ADDRESSES],
        )

    def issue_client(
        self, common_name: str, *, organization: str | None = None, name: str | None = None
    ) -> tuple[Path, Path]:
        """A client certificate (subject CN=common_name, O=organization if given) signed by
        the CA: (certificate path, key path)."""
        attributes = []
        if organization is not None:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        return self._issue(
            name or f"client-{common_name}", x509.Name(attributes), ExtendedKeyUsageOID.CLIENT_AUTH
        )

    def client_context(
        self, cert: str | os.PathLike[str] | None = None, key: str | os.PathLike[str] | None = None
    ) -> ssl.SSLContext:
        """A client-side context that trusts this CA (and presents `cert` if given)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if cert is not None:
            context.load_cert_chain(cert, key)
        return context

    def _issue(
        self,
        stem: str,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        alternative_names: list[x509.GeneralName] | None = None,
    ) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            _builder(subject, self._ca_name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if alternative_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(alternative_names), critical=False
            )
        cert = builder.sign(self._ca_key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return (
            self._write(f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM)),
            self._write(f"{stem}.key", key_pem),
        )

    def _write(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        return path


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks of other machines
        .not_valid_after(now + VALID_FOR)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
