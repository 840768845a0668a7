"""TLS for tests against :class:`~livestate.testing.server.FakeLiveServer`: a self-signed certificate for
127.0.0.1, made on the spot, for clients that insist on ``wss://`` (google-genai does when an API key is set).

Needs the ``cryptography`` package (``pip install cryptography``)::

    from livestate.testing.tls import loopback_contexts

    server_ssl, client_ssl = loopback_contexts()
    async with FakeLiveServer(plan, ssl=server_ssl) as server:  # server.url is wss://127.0.0.1:<port>
        options = genai.types.HttpOptions(
            base_url=server.url.replace("wss://", "https://"), async_client_args={"ssl": client_ssl}
        )
        client = genai.Client(api_key="fake-key", http_options=options)
        ...  # or, with the websockets driver: connect(server.url, config, ssl=client_ssl)

The certificate is valid for an hour and trusted only by the client context returned with it.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "livestate.testing.tls needs the cryptography package: pip install cryptography", name=exc.name
    ) from exc

__all__ = ["loopback_contexts"]


def loopback_contexts(directory: Path | None = None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Make a key and a self-signed certificate for 127.0.0.1; return ``(server context, client context that
    trusts it)``. The PEM files go to ``directory`` (``cert.pem``, ``key.pem``), or to a temporary directory
    removed before returning (the contexts keep what they loaded)."""
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="livestate-tls-") as temporary:
            return loopback_contexts(Path(temporary))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "livestate test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client
