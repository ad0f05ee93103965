"""The ``gip_mds`` fixture: a stub of a gip_mds service on its sandbox, on loopback."""

from apiparticulier.gip_mds.v1 import gip_mds_pb2_grpc
from services.gip_mds.app import GIP_MDS
from tests.services.conftest import sandbox_stub_fixture

gip_mds = sandbox_stub_fixture(GIP_MDS, gip_mds_pb2_grpc.GipMdsServiceStub)
