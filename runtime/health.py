"""grpc.health.v1 with its three methods: Check and Watch from grpcio-health-checking, and List.

The library's asyncio servicer leaves List unimplemented: called, it raised inside
the handler, which the call boundary rendered as INTERNAL 00000. Here List answers
the status of every service the process has set, the process itself ("") included.
"""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health, health_pb2


class HealthServicer(health.aio.HealthServicer):  # type: ignore[misc]
    """The health service of a process: Check, Watch and List."""

    def __init__(self) -> None:
        super().__init__()
        self._services: set[str] = {""}

    async def set(self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        """Set the status of ``service`` ("" for the whole process)."""
        self._services.add(service)
        await super().set(service, status)

    async def List(  # noqa: N802 - the proto's name
        self, request: health_pb2.HealthListRequest, context: Any
    ) -> health_pb2.HealthListResponse:
        """The status of every service set so far, by name."""
        statuses = {
            name: await self.Check(health_pb2.HealthCheckRequest(service=name), context)
            for name in sorted(self._services)
        }
        return health_pb2.HealthListResponse(statuses=statuses)
