"""The sandbox FranceConnect's root page, served on a real port: the persons and where one signs in."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from devstack.france_connect import CLIENT_ID, SandboxProvider, build_app, people
from devstack.redis import free_port
from gateway.france_connect.sandbox import SANDBOX_TOKENS

CONSOLE = "http://127.0.0.1:8070"


@asynccontextmanager
async def served(*returns: str, secret: str = "a secret") -> AsyncIterator[str]:
    """The sandbox FranceConnect on a free loopback port, its issuer URL once it answers."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    app = build_app(SandboxProvider(issuer, CLIENT_ID, secret, *returns))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(base_url=issuer) as probe:
            for _ in range(500):
                try:
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.01)
        yield issuer
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def provider() -> AsyncIterator[str]:
    async with served(f"{CONSOLE}/mes-donnees/retour", f"{CONSOLE}/mes-donnees/deconnexion/retour") as issuer:
        yield issuer


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
