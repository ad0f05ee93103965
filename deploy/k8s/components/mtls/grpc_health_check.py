"""Probe of a provider whose gRPC port requires mTLS: ``python grpc_health_check.py``.

The kubelet's own ``grpc:`` probe speaks plaintext and presents no client
certificate, so it cannot reach a port that demands one. This script, run as an
exec probe inside the container, calls grpc.health.v1 Check (service "") on
127.0.0.1:GRPC_PORT with the pod's own certificate (issued for both server and
client authentication) and the CA of TLS_CLIENT_CA_FILE, checking the server
name against the certificate's first DNS name. It exits 0 on SERVING, 1 on any
other answer or failure, and prints one line without personal data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

_TIMEOUT_SECONDS = 2.0


def _server_name(certificate_pem: bytes) -> str:
    """The first DNS name of the certificate, which the server presents too."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return str(names.get_values_for_type(x509.DNSName)[0])


def check() -> int:
    """Ask the local server for its health; 0 when SERVING, 1 otherwise."""
    port = os.environ.get("GRPC_PORT", "")
    certificate = Path(os.environ["TLS_CERT_FILE"]).read_bytes()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(os.environ["TLS_CLIENT_CA_FILE"]).read_bytes(),
        private_key=Path(os.environ["TLS_KEY_FILE"]).read_bytes(),
        certificate_chain=certificate,
    )
    options = [("grpc.ssl_target_name_override", _server_name(certificate))]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            print(f"health check failed: {error.code().name}")
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(f"health: {status}")
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    try:
        sys.exit(check())
    except (OSError, KeyError, ValueError, IndexError, x509.ExtensionNotFound) as error:
        print(f"health check failed: {type(error).__name__}")
        sys.exit(1)
