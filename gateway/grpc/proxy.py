"""The gRPC adapter of the provider methods: each served under the provider's own name.

A client uses the same generated stub against the gateway as against the
provider. The gateway registers one generic handler per provider service, with
identity serializers: requests go on as the bytes the caller sent, and answers
come back as the bytes the provider sent unless masking changed them. Every call
goes through `gateway.call_path`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from gateway.call_path import CallPath, Inbound
from gateway.forwarding import Payload, Target
from runtime.server import ServiceDefinition

_Behavior = Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], Awaitable[bytes]]


def provider_services(call_path: CallPath) -> list[ServiceDefinition]:
    """One definition per provider service of the route table, served under the service's own name."""
    by_service: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {}
    for target in call_path.targets.values():
        route = target.route
        # No (de)serializers: the call path sees and returns raw bytes.
        by_service.setdefault(route.service, {})[route.method] = grpc.unary_unary_rpc_method_handler(
            _behavior(call_path, target)
        )
    return [
        ServiceDefinition(service, _registrar(grpc.method_handlers_generic_handler(service, handlers)))
        for service, handlers in by_service.items()
    ]


def _behavior(call_path: CallPath, target: Target) -> _Behavior:
    kind = target.route.request_class

    async def behavior(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        answer = await call_path.call_provider(target, Payload(kind, data=request), Inbound.of_grpc(context))
        return answer.serialized()

    return behavior


def _registrar(handler: grpc.GenericRpcHandler) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((handler,))

    return add
