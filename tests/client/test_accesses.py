"""``python -m client accesses``: a citizen's own access history, with their FranceConnect token alone."""

from __future__ import annotations

import asyncio
import json
import os

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from client.cli import main
from tests.conftest import run_main
from tests.gateway.journal.conftest import JournalledMesh, journal_key, journalled, keys_dir

__all__ = ["journal_key", "journalled", "keys_dir"]

RECIPIENT = "13002526500013"


async def client(mesh: JournalledMesh, *args: str) -> tuple[int, str, str]:
    """The client's ``main`` in this process (`tests.conftest.run_main`), without its settings.

    Off the event loop: the journalled gateway runs on it, the client's gRPC calls block.
    """
    unset = {name: None for name in os.environ if name.startswith("API_PARTICULIER_")}
    done = await asyncio.to_thread(run_main, main, *args, "--address", mesh.address, env=unset)
    return done.returncode, done.stdout, done.stderr


async def test_accesses_lists_the_calls_about_the_citizen_as_json_and_as_a_table(
    journalled: JournalledMesh,
) -> None:
    stub = cnaf_pb2_grpc.CnafServiceStub(journalled.channel)
    metadata = (
        ("authorization", f"Bearer {journalled.factory.token(sub='CCAS de Lyon')}"),
        ("x-recipient", RECIPIENT),
    )
    for token in ("fc-lefebvre", "fc-lefebvre", "fc-moreau"):
        request = cnaf_pb2.GetQuotientFamilialByFranceConnectRequest()
        request.france_connect.access_token = token
        await stub.GetQuotientFamilialByFranceConnect(request, metadata=metadata)
    for _ in range(100):
        code, out, err = await client(journalled, "accesses", "--fc-token", "fc-lefebvre", "--json")
        assert code == 0, err
        accesses = json.loads(out).get("accesses", [])
        if len(accesses) >= 2:
            break
        await asyncio.sleep(0.05)
    assert [(a["recipient"], a["habilitation"], a["api"], a["outcome"]) for a in accesses] == [
        (RECIPIENT, "CCAS de Lyon", "API_QUOTIENT_FAMILIAL", "OK")
    ] * 2
    code, out, _ = await client(journalled, "accesses", "--fc-token", "fc-lefebvre")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["time", "recipient", "habilitation", "api", "outcome"]
    assert sum("cnaf.quotient_familial" in line and RECIPIENT in line for line in lines) == 2
    code, _, err = await client(journalled, "accesses", "--fc-token", "fc-inactive")
    assert code == 1 and "51502" in err
