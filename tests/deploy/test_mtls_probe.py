"""The exec probe of components/mtls against a real server that demands client certificates."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from runtime.server import GrpcServer
from runtime.settings import ServerSettings
from tests.certificates import issue

PROBE = Path(__file__).resolve().parents[2] / "deploy/k8s/components/mtls/grpc_health_check.py"


def _certificate(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None):
    key = ec.generate_private_key(ec.SECP256R1())
    extensions: list[x509.ExtensionType] = []
    if issuer is not None:
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        extensions = [x509.SubjectAlternativeName([x509.DNSName(name)]), x509.ExtendedKeyUsage(usages)]
    return issue(name, key, issuer, extensions), key


def _write(directory: Path, name: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey):
    (directory / f"{name}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (directory / f"{name}.key").write_bytes(key_pem)


async def _probe(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(PROBE), env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    return process.returncode or 0, output.decode()


async def test_probe_reports_serving_over_mtls_and_fails_when_nothing_listens(tmp_path):
    ca = _certificate("mesh-ca", None)
    _write(tmp_path, "ca", *ca)
    _write(tmp_path, "cnaf", *_certificate("cnaf", ca))
    settings = ServerSettings(
        grpc_host="127.0.0.1",
        grpc_port=0,
        tls_cert_file=tmp_path / "cnaf.crt",
        tls_key_file=tmp_path / "cnaf.key",
        tls_client_ca_file=tmp_path / "ca.crt",
    )
    env = {
        "TLS_CERT_FILE": str(tmp_path / "cnaf.crt"),
        "TLS_KEY_FILE": str(tmp_path / "cnaf.key"),
        "TLS_CLIENT_CA_FILE": str(tmp_path / "ca.crt"),
    }
    server = GrpcServer(settings, [])
    await server.start()
    try:
        code, output = await _probe({**env, "GRPC_PORT": str(server.port)})
        assert (code, output.strip()) == (0, "health: SERVING")
    finally:
        await server.stop(0)
    code, output = await _probe({**env, "GRPC_PORT": str(server.port)})
    assert code == 1
    assert output.startswith("health check failed")
