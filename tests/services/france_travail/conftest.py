"""The ``france_travail`` fixture: a stub of a france_travail service on its sandbox, on loopback."""

from apiparticulier.france_travail.v1 import france_travail_pb2_grpc
from services.france_travail.app import FRANCE_TRAVAIL
from tests.services.conftest import sandbox_stub_fixture

france_travail = sandbox_stub_fixture(FRANCE_TRAVAIL, france_travail_pb2_grpc.FranceTravailServiceStub)
