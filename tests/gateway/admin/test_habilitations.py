"""The CLI's habilitation, token, audit and migration commands against an admin API: in this process
through ``main(argv)`` (`tests.conftest.run_main`), the entry point's exit codes as subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import jwt

from devstack.redis import RedisProcess
from gateway.admin.cli import main
from gateway.admin.habilitations import ADDRESS_VARIABLE, SECRET_VARIABLE, TOKEN_VARIABLE
from tests.conftest import run_main, run_python
from tests.gateway.registry.conftest import (
    ADMIN_SECRET,
    SIRET,
    VIEWER_SECRET,
    AdminApi,
    admin_api,
    registry_url,
)

__all__ = ["admin_api", "registry_url"]

REPO = Path(__file__).resolve().parents[3]
_QF = "cnaf_quotient_familial"


def _settings(api: AdminApi | None, secret: str | None, extra_env: dict[str, str]) -> dict[str, str | None]:
    """The CLI's variables for ``api`` (None: unset): its address, the operator's ``secret``, more."""
    variables = (ADDRESS_VARIABLE, TOKEN_VARIABLE, SECRET_VARIABLE, "REDIS_URL")
    env: dict[str, str | None] = dict.fromkeys(variables)
    if api is not None:
        env[ADDRESS_VARIABLE] = api.grpc_address
        if secret is not None:
            env[TOKEN_VARIABLE] = secret
    return {**env, **extra_env}


async def cli(
    api: AdminApi | None, *args: str, secret: str | None = ADMIN_SECRET, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """The CLI's ``main(args)`` against ``api`` (none: without its settings), off the event loop.

    ``secret``: the operator's (None: no operator secret set); ``extra_env``: more variables.
    """
    # The admin API runs on this test's event loop: the CLI's blocking gRPC calls run in a thread.
    return await asyncio.to_thread(run_main, main, *args, env=_settings(api, secret, extra_env))


async def cli_process(
    api: AdminApi | None, *args: str, secret: str | None = ADMIN_SECRET
) -> subprocess.CompletedProcess[str]:
    """``python -m gateway.admin <args>`` as ``cli``: the entry point itself and its exit status."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name, value in _settings(api, secret, {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return await asyncio.to_thread(run_python, "-m", "gateway.admin", *args, env=env)


async def _create(api: AdminApi, *extra: str) -> str:
    done = await cli(
        api, "habilitation", "create", "--label", "CCAS de Lyon", "--siret", SIRET, "--scope", _QF, *extra
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


async def test_create_update_and_show_a_habilitation(admin_api: AdminApi) -> None:
    habilitation = await _create(
        admin_api,
        *("--allowed-ip", "10.0.0.0/8", "--rate-per-second", "50", "--organisation-name", "Ville"),
        *("--use-case", "Tarifs de la cantine", "--legal-basis", "Délibération du conseil municipal"),
    )
    named = await cli(admin_api, "habilitation", "show", habilitation, secret=VIEWER_SECRET)
    assert "organisation Ville" in named.stdout
    assert "use case     Tarifs de la cantine" in named.stdout
    assert "legal basis  Délibération du conseil municipal" in named.stdout
    updated = await cli(
        admin_api,
        "habilitation",
        "update",
        habilitation,
        "--scope",
        _QF,
        "--scope",
        "cnaf_allocataires",
        "--rate-per-minute",
        "30",
        "--organisation-name",
        "Ville de Lyon",
    )
    assert updated.returncode == 0, updated.stderr

    shown = await cli(admin_api, "habilitation", "show", habilitation, secret=VIEWER_SECRET)
    assert shown.returncode == 0, shown.stderr
    assert f"scopes       {_QF}, cnaf_allocataires" in shown.stdout
    assert "allowed ips  10.0.0.0/8" in shown.stdout
    assert "rate/min     30" in shown.stdout
    assert "organisation Ville de Lyon" in shown.stdout
    listed = await cli(admin_api, "habilitation", "list")
    assert habilitation in listed.stdout


async def test_issue_prints_the_jwt_last_and_the_listing_finds_expiring_tokens(admin_api: AdminApi) -> None:
    habilitation = await _create(admin_api)
    soon = await cli(admin_api, "token", "issue", "--habilitation", habilitation, "--days", "20")
    later = await cli(admin_api, "token", "issue", "--habilitation", habilitation)
    assert soon.returncode == later.returncode == 0, soon.stderr
    soon_id = jwt.decode(soon.stdout.strip().splitlines()[-1], options={"verify_signature": False})["jti"]
    later_id = jwt.decode(later.stdout.strip().splitlines()[-1], options={"verify_signature": False})["jti"]

    expiring = await cli(admin_api, "token", "list", "--expiring-within", "30d")
    assert soon_id in expiring.stdout
    assert later_id not in expiring.stdout
    every = await cli(admin_api, "token", "list", "--habilitation", habilitation)
    assert soon_id in every.stdout and later_id in every.stdout


async def test_the_lifecycle_commands(admin_api: AdminApi) -> None:
    habilitation = await _create(admin_api)
    issued = await cli(admin_api, "token", "issue", "--habilitation", habilitation)
    token = jwt.decode(issued.stdout.strip(), options={"verify_signature": False})["jti"]

    rotated = await cli(admin_api, "token", "rotate", token, "--grace", "1h")
    assert rotated.returncode == 0, rotated.stderr
    new = jwt.decode(rotated.stdout.strip(), options={"verify_signature": False})["jti"]
    prolonged = await cli(admin_api, "token", "prolong", new, "--days", "30")
    assert (prolonged.returncode, prolonged.stdout.strip()) == (0, new)
    banned = await cli(
        admin_api, "token", "ban", new, "--at", "2099-01-01T00:00:00", "--reason", "contractor left"
    )
    assert banned.returncode == 0, banned.stderr
    assert "banned from 2099-01-01 00:00 UTC" in banned.stderr
    revoked = await cli(admin_api, "token", "revoke", token, "--reason", "leaked")
    assert revoked.returncode == 0, revoked.stderr
    again = await cli(admin_api, "token", "revoke", token, "--reason", "leaked")
    assert again.returncode == 1
    verified = await cli(admin_api, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert len(verified.stdout.strip()) == 64


async def test_exit_codes(admin_api: AdminApi, tmp_path: Path) -> None:
    assert (await cli(None, "habilitation", "list")).returncode == 2
    invalid = await cli(admin_api, "habilitation", "create", "--label", "x", "--siret", "1", "--scope", _QF)
    assert invalid.returncode == 2
    assert "siret" in invalid.stderr
    assert (
        await cli(admin_api, "habilitation", "show", "0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e")
    ).returncode == 1
    forbidden = await cli(
        admin_api,
        "habilitation",
        "create",
        "--label",
        "x",
        "--siret",
        SIRET,
        "--scope",
        _QF,
        secret=VIEWER_SECRET,
    )
    assert forbidden.returncode == 1
    gone = AdminApi(
        admin_api.stub,
        admin_api.rest_url,
        admin_api.database_url,
        admin_api.keys_dir,
        admin_api.redis_url,
        "127.0.0.1:1",
    )
    assert (await cli_process(gone, "habilitation", "list")).returncode == 3


async def test_redis_registered_tokens_are_migrated_once_keeping_their_id(
    admin_api: AdminApi, tmp_path: Path, redis_server: RedisProcess
) -> None:
    keys_dir = tmp_path / "legacy-keys"
    assert (await cli(None, "keygen", "--keys-dir", str(keys_dir), "--kid", "legacy")).returncode == 0
    legacy = await cli(
        None,
        "issue",
        "--keys-dir",
        str(keys_dir),
        "--kid",
        "legacy",
        "--label",
        "CCAS de Lyon",
        "--siret",
        SIRET,
        "--scope",
        _QF,
        "--rate-limit",
        "50",
        "--redis-url",
        redis_server.url,
    )
    assert legacy.returncode == 0, legacy.stderr
    jti = jwt.decode(legacy.stdout.strip(), options={"verify_signature": False})["jti"]

    migrated = await cli(admin_api, "migrate-redis-tokens", "--redis-url", redis_server.url)
    assert migrated.returncode == 0, migrated.stderr
    assert f"migrated {jti}" in migrated.stderr
    listed = await cli(admin_api, "token", "list", "--json")
    assert jti in listed.stdout
    again = await cli(admin_api, "migrate-redis-tokens", "--redis-url", redis_server.url)
    assert f"skipped {jti}: this token is already in the registry" in again.stderr


async def test_an_editor_its_token_and_a_delegation_from_the_cli(admin_api: AdminApi) -> None:
    habilitation = await _create(admin_api)
    created = await cli(
        admin_api, "editor", "create", "--siret", SIRET, "--name", "Logiciel", "--allowed-ip", "10.0.0.0/8"
    )
    assert created.returncode == 0, created.stderr
    editor = created.stdout.strip().splitlines()[-1]
    issued = await cli(admin_api, "token", "issue", "--editor", editor, "--allowed-ip", "10.1.0.0/16")
    assert issued.returncode == 0, issued.stderr
    claims = jwt.decode(issued.stdout.strip().splitlines()[-1], options={"verify_signature": False})
    assert (claims["sub"], claims["kind"], claims["scopes"]) == (editor, "editor", [])
    delegated = await cli(
        admin_api, "delegation", "create", "--editor", editor, "--habilitation", habilitation
    )
    assert delegated.returncode == 0, delegated.stderr
    delegation = delegated.stdout.strip().splitlines()[-1]
    revoked = await cli(admin_api, "delegation", "revoke", delegation)
    assert (revoked.returncode, revoked.stdout.strip().splitlines()[-1]) == (0, delegation)
    of_editor = await cli(admin_api, "delegation", "list", "--editor", editor)
    assert f"{delegation}  revoked" in of_editor.stdout
    of_another = await cli(admin_api, "delegation", "list", "--habilitation", await _create(admin_api))
    assert "no delegation" in of_another.stderr
    tokens = await cli(admin_api, "token", "list", "--editor", editor, "--json")
    assert [token["editor_id"] for token in json.loads(tokens.stdout)["tokens"]] == [editor]

    shown = await cli(admin_api, "editor", "show", editor)
    assert f"{delegation}  revoked" in shown.stdout
    again = await cli(admin_api, "delegation", "revoke", delegation)
    assert again.returncode == 1
    bad = await cli(admin_api, "editor", "create", "--siret", "12345678901234", "--name", "Logiciel")
    assert (bad.returncode, "siret" in bad.stderr) == (2, True)
    outside = await cli(admin_api, "token", "issue", "--editor", editor, "--allowed-ip", "192.168.0.0/16")
    assert (outside.returncode, "allowed_ips" in outside.stderr) == (2, True)
    both = await cli(admin_api, "token", "issue", "--editor", editor, "--habilitation", habilitation)
    assert both.returncode == 2
    mapped = await cli(admin_api, "france-connect-client", "map", "a1b2c3", "--habilitation", habilitation)
    assert (mapped.returncode, mapped.stdout.strip()) == (0, "a1b2c3")


async def test_an_invitation_from_the_cli_accepted_by_the_holder_without_an_operator_secret(
    admin_api: AdminApi,
) -> None:
    habilitation = await _create(admin_api)
    editor = await cli(admin_api, "editor", "create", "--siret", "21756011100015", "--name", "Logiciel")
    assert editor.returncode == 0, editor.stderr
    dpo = (
        "--dpo-given-name",
        "Responsable",
        "--dpo-family-name",
        "Conformité",
        "--dpo-email",
        "dpd@mairie.example",
    )
    invited = await cli(
        admin_api,
        "invitation",
        "create",
        "--editor",
        editor.stdout.strip().splitlines()[-1],
        "--habilitation",
        habilitation,
        "--contact",
        "accueil@mairie.example",
        *dpo,
        "--dpo-email",
        "dpd@mairie.example",
        "--dpo-phone",
        "+33 1 23 45 67 89",
        "--dpo-job-title",
        "Déléguée à la protection des données",
    )
    assert invited.returncode == 0, invited.stderr
    invitation, secret = invited.stdout.strip().splitlines()[-2:]

    accept = ("invitation", "accept", invitation, "--siret", SIRET, "--accept-terms", "--dpo-informed")
    unset = await cli(admin_api, *accept, secret=None)
    assert unset.returncode == 2 and SECRET_VARIABLE in unset.stderr
    accepted = await cli(admin_api, *accept, secret=None, **{SECRET_VARIABLE: secret})
    assert accepted.returncode == 0, accepted.stderr
    delegation = accepted.stdout.strip().splitlines()[-1]

    listed = await cli(admin_api, "invitation", "list", "--habilitation", habilitation, secret=VIEWER_SECRET)
    assert listed.returncode == 0, listed.stderr
    assert f"{invitation}  accepted" in listed.stdout and delegation in listed.stdout
    again = await cli(admin_api, *accept, secret=None, **{SECRET_VARIABLE: secret})
    assert again.returncode == 1 and "accepted" in again.stderr
