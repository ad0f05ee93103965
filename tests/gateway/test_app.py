"""Assembly of the gateway: what stops it from starting, and its start-up from the command line."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import grpc
import pytest
import structlog

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from devstack.redis import RedisProcess
from gateway.app import build_server
from tests.conftest import run_python
from tests.gateway.conftest import gateway_settings
from tests.gateway.grpc.test_proxy import RECIPIENT, metadata, qf_request
from tests.gateway.test_workers import ASKED, slow_cnaf  # noqa: F401 - a fixture
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.rich_status import rich_status


def test_empty_journal_key_refuses_to_build(keys_dir: tuple[Path, SigningKey, SigningKey]) -> None:
    """Without JOURNAL_HMAC_KEY the gateway is not built, and the message names the variable."""
    settings = gateway_settings(keys_dir[0], "redis://127.0.0.1:1/0", journal_hmac_key="")
    with pytest.raises(ValueError, match="JOURNAL_HMAC_KEY"):
        build_server(settings)


def test_no_verification_keys_refuses_to_build() -> None:
    """Without KEYS_DIR or JWKS_FILE the gateway is not built."""
    settings = gateway_settings(None, "redis://127.0.0.1:1/0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="KEYS_DIR"):
        build_server(settings)


def test_python_m_gateway_says_why_it_does_not_start(keys_dir: tuple[Path, SigningKey, SigningKey]) -> None:
    """``python -m gateway`` with an empty journal key exits non-zero with a one-line reason, no traceback."""
    env = {**os.environ, "KEYS_DIR": str(keys_dir[0]), "JOURNAL_HMAC_KEY": "", "GRPC_PORT": "0"}
    done = run_python("-m", "gateway", env=env)
    assert done.returncode != 0
    assert "JOURNAL_HMAC_KEY" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_journal_database_without_its_signing_key_refuses_to_build(
    keys_dir: tuple[Path, SigningKey, SigningKey],
) -> None:
    """JOURNAL_DATABASE_URL needs JOURNAL_SIGNING_KEY_FILE, an Ed25519 key; each refusal says why."""
    url = "postgresql://journal@127.0.0.1:1/journal"
    with pytest.raises(ValueError, match="JOURNAL_SIGNING_KEY_FILE"):
        build_server(gateway_settings(keys_dir[0], "redis://127.0.0.1:1/0", journal_database_url=url))
    not_ed25519 = keys_dir[0] / "es-test.private.pem"
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        build_server(
            gateway_settings(
                keys_dir[0],
                "redis://127.0.0.1:1/0",
                journal_database_url=url,
                journal_signing_key_file=not_ed25519,
            )
        )


@pytest.mark.timing
async def test_calls_refused_while_the_gateway_stops_are_journalled(
    redis_server: RedisProcess,
    keys_dir: tuple[Path, SigningKey, SigningKey],
    slow_cnaf: int,  # noqa: F811 - the fixture imported above
) -> None:
    """Calls that come during the drain get 00504, and the call path journals each of them."""
    directory, es, _ = keys_dir
    gateway = build_server(
        gateway_settings(directory, redis_server.url, cnaf_address=f"127.0.0.1:{slow_cnaf}")
    )
    await gateway.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    stub = cnaf_pb2_grpc.CnafServiceStub(channel)
    header = TokenFactory(es).bearer()
    names = [f"00000000-0000-4000-8000-{n:012d}" for n in range(5)]  # request ids, UUIDs as kept
    in_flight_id = "00000000-0000-4000-8000-999999999999"

    async def call(name: str) -> str:
        try:
            await stub.GetQuotientFamilialByIdentity(
                qf_request(), metadata=metadata(header, RECIPIENT, ("x-request-id", name)), timeout=10
            )
        except grpc.aio.AioRpcError as error:
            return rich_status(error).api_code
        return "OK"

    try:
        await channel.channel_ready()
        with structlog.testing.capture_logs() as events:
            asked = len(ASKED)
            in_flight = asyncio.ensure_future(call(in_flight_id))  # keeps the drain open a while
            for _ in range(500):  # until it is at the provider: a loaded machine may take a while
                if len(ASKED) > asked:
                    break
                await asyncio.sleep(0.01)
            assert len(ASKED) > asked, "the call in flight never reached the provider"
            stopping = asyncio.ensure_future(gateway.stop(grace=5))
            await asyncio.sleep(0.05)  # no longer taking calls: these are held, then refused
            codes = await asyncio.gather(*(call(name) for name in names))
            assert await in_flight == "OK"
            await stopping
    finally:
        await channel.close()
    assert codes == ["00504"] * len(names)
    journalled = {e["request_id"]: e for e in events if e.get("event") == "api_call"}
    assert journalled.pop(in_flight_id)["status"] == "OK"
    assert sorted(journalled) == names
    assert {(e["status"], e.get("code")) for e in journalled.values()} == {("UNAVAILABLE", "00504")}
