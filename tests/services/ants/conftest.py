"""The ants tests' fixtures: a stub of the service on its sandbox, and a PKI for the SIV's mutual TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from apiparticulier.ants.v1 import ants_pb2_grpc
from services.ants.app import ANTS
from tests.services.conftest import sandbox_stub_fixture

ants = sandbox_stub_fixture(ANTS, ants_pb2_grpc.AntsServiceStub)


@dataclass(frozen=True)
class Pki:
    """A CA, the SIV's server certificate, and API Particulier's client certificate, as PEM files."""

    ca_file: Path
    client_cert_file: Path
    client_key_file: Path
    client_certificate: x509.Certificate
    server_context: ssl.SSLContext
    """The fake SIV's TLS: its certificate, and client certificates of the CA demanded."""


def _issue(
    name: str, key: rsa.RSAPrivateKey, issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _pem(path: Path, certificate: x509.Certificate, key: rsa.RSAPrivateKey | None = None) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path


def make_pki(directory: Path) -> Pki:
    """A fresh PKI under ``directory``."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _issue("test CA", ca_key, None)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = _pem(directory / "siv.crt", _issue("siv", server_key, (ca, ca_key)), server_key)
    client_certificate = _issue("api-particulier", client_key, (ca, ca_key))
    client = _pem(directory / "client.crt", client_certificate, client_key)
    ca_file = _pem(directory / "ca.crt", ca)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca_file))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(server, server.with_suffix(".key"))
    return Pki(ca_file, client, client.with_suffix(".key"), client_certificate, context)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A PKI for the tests of one module."""
    return make_pki(tmp_path_factory.mktemp("pki"))
