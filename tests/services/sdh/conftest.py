"""The ``sdh`` fixture: a stub of a sdh service on its sandbox, on loopback."""

from apiparticulier.sdh.v1 import sdh_pb2_grpc
from services.sdh.app import SDH
from tests.services.conftest import sandbox_stub_fixture

sdh = sandbox_stub_fixture(SDH, sdh_pb2_grpc.SdhServiceStub)
