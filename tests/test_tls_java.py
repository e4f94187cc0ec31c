"""The RabbitMQ Java client (Debian's librabbitmq-client-java) over TLS, with a password and with
a client certificate (EXTERNAL). `make java-client` installs it (`.ci/run` does); the tests skip
themselves, saying why, where it or a JDK is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("cryptography", reason="generated certificates need amqp-lite[tls]")

from amqp_lite.pytest_plugin import AmqpsVhost

JARS = [Path("/usr/share/java/amqp-client.jar"), Path("/usr/share/java/slf4j-api.jar")]
SOURCE = Path(__file__).parent / "java" / "TlsRoundTrip.java"


@pytest.fixture(scope="module")
def java_client(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that runs the compiled round trip, less its arguments."""
    missing = [str(jar) for jar in JARS if not jar.exists()]
    if missing:
        pytest.skip(
            f"the RabbitMQ Java client is not installed ({', '.join(missing)}): "
            "`make java-client` installs Debian's librabbitmq-client-java"
        )
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("no JDK (javac and java) on PATH")
    classes = tmp_path_factory.mktemp("java")
    classpath = ":".join(str(jar) for jar in JARS)
    subprocess.run(
        ["javac", "-d", str(classes), "-cp", classpath, str(SOURCE)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return ["java", "-cp", f"{classes}:{classpath}", "TlsRoundTrip"]


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_java_over_tls_with_a_password(java_client: list[str], amqps_vhost: AmqpsVhost) -> None:
    assert _run([*java_client, amqps_vhost.url, str(amqps_vhost.ca)]) == "over TLS from Java"


def test_java_over_tls_with_a_client_certificate(
    java_client: list[str], amqps_vhost: AmqpsVhost
) -> None:
    cert, key = amqps_vhost.client_certificate("java-client")
    # A user and password that PLAIN would refuse: only the certificate can let it in.
    url = amqps_vhost.url.replace("guest:guest@", "nobody:nothing@")
    output = _run([*java_client, url, str(amqps_vhost.ca), str(cert), str(key)])
    assert output == "over TLS from Java"
