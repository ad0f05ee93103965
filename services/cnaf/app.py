"""The cnaf service's assembly: what `services.common.app` builds and runs."""

from __future__ import annotations

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from runtime.providers import BY_NAME
from services.cnaf.backend import CnafBackend
from services.cnaf.sandbox import SandboxCnafBackend
from services.cnaf.servicer import CnafServicer
from services.cnaf.settings import CnafSettings
from services.cnaf.upstream import UpstreamCnafBackend
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind

CNAF = ProviderAssembly[CnafSettings, CnafBackend, CnafServicer](
    provider=BY_NAME["cnaf"],
    settings=CnafSettings,
    servicer=CnafServicer,
    add_servicer=cnaf_pb2_grpc.add_CnafServiceServicer_to_server,
    backends={
        BackendKind.SANDBOX: SandboxCnafBackend.from_settings,
        BackendKind.UPSTREAM: UpstreamCnafBackend.from_settings,
    },
)
"""The cnaf service."""
