"""The gip_mds service's assembly: what `services.common.app` builds and runs."""

from __future__ import annotations

from apiparticulier.gip_mds.v1 import gip_mds_pb2_grpc
from runtime.providers import BY_NAME
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind
from services.gip_mds.backend import GipMdsBackend
from services.gip_mds.sandbox import SandboxGipMdsBackend
from services.gip_mds.servicer import GipMdsServicer
from services.gip_mds.settings import GipMdsSettings
from services.gip_mds.upstream import UpstreamGipMdsBackend

GIP_MDS = ProviderAssembly[GipMdsSettings, GipMdsBackend, GipMdsServicer](
    provider=BY_NAME["gip_mds"],
    settings=GipMdsSettings,
    servicer=GipMdsServicer,
    add_servicer=gip_mds_pb2_grpc.add_GipMdsServiceServicer_to_server,
    backends={
        BackendKind.SANDBOX: SandboxGipMdsBackend.from_settings,
        BackendKind.UPSTREAM: UpstreamGipMdsBackend.from_settings,
    },
)
"""The gip_mds service."""
