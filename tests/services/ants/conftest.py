"""The ants tests' fixtures: a stub of the service on its sandbox, and a PKI for the SIV's mutual TLS."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from apiparticulier.ants.v1 import ants_pb2_grpc
from services.ants.app import ANTS
from tests.certificates import issue
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
    ca = issue("test CA", ca_key, None)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    loopback = [x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])]
    server = _pem(directory / "siv.crt", issue("siv", server_key, (ca, ca_key), loopback), server_key)
    client_certificate = issue("api-particulier", client_key, (ca, ca_key), loopback)
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
