"""The gateway's own gRPC service, ``apiparticulier.gateway.v1.GatewayService``, as its contract declares it.

Its transports (the gRPC API and the REST front) name its methods alike, in the journal and the logs.
"""

from __future__ import annotations

from google.protobuf.descriptor import ServiceDescriptor

from apiparticulier.gateway.v1 import gateway_pb2

SERVICE: ServiceDescriptor = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"]
SERVICE_NAME: str = SERVICE.full_name


def method_path(method: str) -> str:
    """The full gRPC path of one of its methods (``/apiparticulier.gateway.v1.GatewayService/Lookup``).

    Raises:
        KeyError: the service has no such method.
    """
    return f"/{SERVICE_NAME}/{SERVICE.methods_by_name[method].name}"
