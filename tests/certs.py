"""
Test certificates, made at test time (no key is ever committed): a private CA
and a server certificate it signed for 127.0.0.1 and localhost.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass

try:
    import OpenSSL  # noqa: F401  (Twisted's TLS needs it)
    import service_identity  # noqa: F401
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    TLS_SKIP: str | None = None
except ImportError:  # pragma: no cover - depends on the environment
    TLS_SKIP = "TLS needs Twisted's tls extra: pip install 'twisted[tls]'"


@dataclass
class PKI:
    """PEM files of a CA and of a server certificate signed by it."""

    ca_pem: str
    server_pem: str
    key_pem: str
    server_and_key: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: str, *, server_name: str = "127.0.0.1") -> PKI:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("txami test CA"))
        .issuer_name(_name("txami test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        san = x509.DNSName(server_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(server_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_bytes = ca_cert.public_bytes(serialization.Encoding.PEM)
    cert_bytes = cert.public_bytes(serialization.Encoding.PEM)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    paths = []
    for name, data in (
        ("ca.pem", ca_bytes),
        ("server.pem", cert_bytes),
        ("server.key", key_bytes),
    ):
        path = os.path.join(directory, name)
        with open(path, "wb") as out:
            out.write(data)
        paths.append(path)
    return PKI(paths[0], paths[1], paths[2], cert_bytes + key_bytes)


def server_tls_options(pki: PKI) -> object:
    """Twisted server TLS options serving ``pki``'s server certificate."""
    from twisted.internet.ssl import PrivateCertificate

    return PrivateCertificate.loadPEM(pki.server_and_key).options()
