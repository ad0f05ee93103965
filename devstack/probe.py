"""Check a running service from the terminal: ``python -m devstack.probe HOST:PORT``.

Prints the health of the process and of each service it serves, and the methods
reflection lists; exits non-zero if anything is not SERVING.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

_INFRASTRUCTURE = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)


def probe(address: str, timeout: float = 5.0) -> int:
    """Print what the server at ``address`` serves and return 0 when all of it is SERVING."""
    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            print(f"{address}: nothing answers", file=sys.stderr)
            return 2
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        listing = next(
            iter(
                reflection.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")])
                )
            )
        )
        names = [s.name for s in listing.list_services_response.service if s.name not in _INFRASTRUCTURE]
        health = health_pb2_grpc.HealthStub(channel)
        healthy = True
        for name in ["", *names]:
            status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=timeout).status
            label = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            healthy &= status == health_pb2.HealthCheckResponse.SERVING
            print(f"{name or '(process)'}: {label}")
            if not name:
                continue
            answer = next(
                iter(
                    reflection.ServerReflectionInfo(
                        iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol=name)])
                    )
                )
            )
            for raw in answer.file_descriptor_response.file_descriptor_proto:
                proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
                for service in proto.service:
                    if f"{proto.package}.{service.name}" == name:
                        for method in service.method:
                            print(f"  {method.name}")
    return 0 if healthy else 1


def main() -> None:
    """Parse the address and probe it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="host:port of a gRPC process of the mesh")
    sys.exit(probe(parser.parse_args().address))


if __name__ == "__main__":
    main()
