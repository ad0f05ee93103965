"""The sandbox FranceConnect's root page, served on a real port: the persons and where one signs in."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from devstack.france_connect import CLIENT_ID, SandboxProvider, build_app, people
from devstack.redis import free_port
from gateway.france_connect.sandbox import SANDBOX_TOKENS

CONSOLE = "http://127.0.0.1:8070"


@pytest.fixture
async def provider() -> AsyncIterator[str]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    returns = (f"{CONSOLE}/mes-donnees/retour", f"{CONSOLE}/mes-donnees/deconnexion/retour")
    app = build_app(SandboxProvider(issuer, CLIENT_ID, "a secret", *returns))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with httpx.AsyncClient(base_url=issuer) as probe:
        for _ in range(500):
            try:
                if (await probe.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.01)
    yield issuer
    server.should_exit = True
    await task


async def test_the_root_lists_the_sandbox_persons_and_points_to_the_console_s_sign_in(provider: str) -> None:
    async with httpx.AsyncClient(base_url=provider) as browser:
        page = await browser.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = html.unescape(page.text)
    assert f'href="{CONSOLE}/mes-donnees"' in text
    for person in people():
        assert str(person.claims["family_name"]) in text
    live = [token.token for token in SANDBOX_TOKENS if token.active and not token.expired]
    for token in SANDBOX_TOKENS:
        assert (f"<code>{token.token}</code>" in text) == (token.token in live), token.token
