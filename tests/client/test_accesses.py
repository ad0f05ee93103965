"""``python -m client accesses``: a citizen's own access history, with their FranceConnect token alone."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from tests.gateway.journal.conftest import JournalledMesh, journal_key, journalled, keys_dir

__all__ = ["journal_key", "journalled", "keys_dir"]

REPO = Path(__file__).resolve().parents[2]
RECIPIENT = "13002526500013"


async def client(mesh: JournalledMesh, *args: str) -> tuple[int, str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("API_PARTICULIER_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client",
        *args,
        "--address",
        mesh.address,
        cwd=REPO,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


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
