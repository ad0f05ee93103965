"""The token administration CLI against a real Redis and a temp key dir: in this process through
``main(argv)`` (`tests.conftest.run_main`), its entry point's exit codes as subprocesses."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
import redis.asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from contract.routes import contract_scopes
from devstack.redis import RedisProcess
from gateway.admin.cli import COMMAND_GROUPS, build_parser, main
from gateway.bounds import TOKEN_LIFETIME_MAX_SECONDS
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from tests.conftest import run_main, run_python

REPO = Path(__file__).resolve().parents[3]
SIRET = "13002526500013"
_SETTINGS = ("KEYS_DIR", "TOKEN_ISSUER", "TOKEN_AUDIENCE", "REDIS_URL")
"""The environment variables the CLI reads: unset, so each test's arguments alone decide."""


def admin(*args: str, redis_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI's ``main`` in this process, with ``--redis-url`` when given."""
    extra = ["--redis-url", redis_url] if redis_url else []
    return run_main(main, *args, *extra, env=dict.fromkeys(_SETTINGS))


def admin_process(*args: str, redis_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m gateway.admin <args>``: the entry point itself and the exit status it gives."""
    extra = ["--redis-url", redis_url] if redis_url else []
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in _SETTINGS:
        env.pop(name, None)
    return run_python("-m", "gateway.admin", *args, *extra, env=env)


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    result = admin("keygen", "--keys-dir", str(tmp_path / "keys"), "--kid", "test-1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "test-1"
    return tmp_path / "keys"


def issue(keys_dir: Path, url: str, *extra: str, scopes: tuple[str, ...] = ("cnaf_quotient_familial",)):
    scope_args = [arg for scope in scopes for arg in ("--scope", scope)]
    return admin(
        "issue",
        "--keys-dir",
        str(keys_dir),
        "--kid",
        "test-1",
        "--label",
        "CCAS de Test",
        "--siret",
        SIRET,
        *scope_args,
        *extra,
        redis_url=url,
    )


def test_keygen_writes_a_p256_pair_with_a_private_file_only_the_owner_reads(keys_dir: Path) -> None:
    private_file, public_file = keys_dir / "test-1.private.pem", keys_dir / "test-1.public.pem"
    assert stat.S_IMODE(private_file.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(private_file.read_bytes(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(private.curve, ec.SECP256R1)
    assert b"BEGIN PRIVATE KEY" in private_file.read_bytes()  # PKCS#8
    public = serialization.load_pem_public_key(public_file.read_bytes())
    assert b"BEGIN PUBLIC KEY" in public_file.read_bytes()  # SubjectPublicKeyInfo
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.public_numbers() == private.public_key().public_numbers()


def test_keygen_refuses_to_overwrite_a_kid(keys_dir: Path) -> None:
    before = (keys_dir / "test-1.private.pem").read_bytes()
    result = admin("keygen", "--keys-dir", str(keys_dir), "--kid", "test-1")
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert (keys_dir / "test-1.private.pem").read_bytes() == before


def test_issue_prints_a_signed_token_with_every_claim_and_registers_it(
    keys_dir: Path, redis_server: RedisProcess
) -> None:
    started = int(time.time())
    result = issue(
        keys_dir,
        redis_server.url,
        "--rate-limit",
        "7",
        scopes=("cnaf_quotient_familial", "cnaf_enfants", "cnaf_quotient_familial"),
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert "\n" not in token  # stdout carries the token only
    assert "issued token" in result.stderr

    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": "test-1", "typ": "JWT"}
    public = serialization.load_pem_public_key((keys_dir / "test-1.public.pem").read_bytes())
    claims = jwt.decode(
        token,
        public,  # type: ignore[arg-type]
        algorithms=["ES256"],
        audience="api-particulier",
        issuer="api-particulier-mesh",
        options={"require": ["exp", "iat", "nbf", "jti", "sub", "iss", "aud"]},
    )
    assert claims["sub"] == "CCAS de Test"
    assert claims["siret"] == SIRET
    assert claims["scopes"] == ["cnaf_quotient_familial", "cnaf_enfants"]
    assert claims["rate_limit"] == 7
    assert uuid.UUID(claims["jti"]).version == 4
    assert started <= claims["iat"] == claims["nbf"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 548 * 86400  # 18 months

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    entry = client.hgetall(f"token:{{{claims['jti']}}}")
    assert entry["label"] == "CCAS de Test"
    assert entry["siret"] == SIRET
    assert json.loads(entry["scopes"]) == ["cnaf_quotient_familial", "cnaf_enfants"]
    assert int(entry["exp"]) == claims["exp"]
    assert entry["rate_limit"] == "7"
    assert client.sismember("tokens", claims["jti"])
    client.close()


def test_issue_takes_a_lifetime_issuer_and_audience(keys_dir: Path, redis_server: RedisProcess) -> None:
    result = issue(keys_dir, redis_server.url, "--days", "30", "--issuer", "iss-x", "--audience", "aud-x")
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 30 * 86400
    assert (claims["iss"], claims["aud"]) == ("iss-x", "aud-x")
    assert "rate_limit" not in claims


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--siret", "12345678901234"), "is not a SIRET"),
        (("--siret", "1300252650001"), "is not a SIRET"),
        (("--scope", "not_a_scope"), "unknown scope(s): not_a_scope"),
        (("--days", "0"), "--days must be from 1 to 3653"),
        (("--days", "2912110"), "--days must be from 1 to 3653"),
        (("--rate-limit", "0"), "--rate-limit must be from 1 to 10000"),
        (("--rate-limit", "8000000"), "--rate-limit must be from 1 to 10000"),
        (("--label", "  "), "--label must be"),
        (("--kid", "../etc/passwd"), "invalid kid"),
    ],
)
def test_issue_refuses_bad_input_and_registers_nothing(
    keys_dir: Path, redis_server: RedisProcess, args: tuple[str, ...], message: str
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    before = client.scard("tokens")
    result = issue(keys_dir, redis_server.url, *args)
    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert result.stdout == ""
    assert client.scard("tokens") == before
    client.close()


def test_issue_with_an_unknown_kid_is_refused(keys_dir: Path, redis_server: RedisProcess) -> None:
    result = issue(keys_dir, redis_server.url, "--kid", "absent")
    assert result.returncode == 1
    assert "no private key for kid 'absent'" in result.stderr
    assert result.stdout == ""


def test_issue_without_redis_prints_no_token() -> None:
    down = RedisProcess()  # never started
    result = admin("keygen", "--keys-dir", str(Path(down._workdir.name) / "k"), "--kid", "k")
    assert result.returncode == 0
    result = admin_process(
        "issue",
        *("--keys-dir", str(Path(down._workdir.name) / "k"), "--kid", "k", "--label", "x"),
        *("--siret", SIRET, "--scope", "cnaf_enfants"),
        redis_url=down.url,
    )
    assert result.returncode == 3
    assert result.stdout == ""
    assert "cannot be reached" in result.stderr
    down.close()


def test_a_reader_gone_ends_the_command_silently_with_the_shell_s_sigpipe_status(
    keys_dir: Path, redis_server: RedisProcess
) -> None:
    """``… | head``: no word of Redis nor a traceback on stderr, exit 141 (not 3, "unreachable")."""
    issue(keys_dir, redis_server.url)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in _SETTINGS:
        env.pop(name, None)
    command = [sys.executable, "-m", "gateway.admin", "list", "--redis-url", redis_server.url]
    listing = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert listing.stdout is not None
    listing.stdout.close()  # the reader goes before the first line is written
    _, stderr = listing.communicate(timeout=30)
    assert (listing.returncode, stderr) == (141, b"")


def test_list_shows_tokens_without_the_tokens(keys_dir: Path, redis_server: RedisProcess) -> None:
    token = issue(keys_dir, redis_server.url).stdout.strip()
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]

    table = admin("list", redis_url=redis_server.url)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:2] == ["JTI", "STATUS"]
    line = next(line for line in table.stdout.splitlines() if line.startswith(jti))
    assert "active" in line
    assert SIRET in line
    assert "CCAS de Test" in line
    assert token not in table.stdout
    assert token.split(".")[2] not in table.stdout

    listed = admin("list", "--json", redis_url=redis_server.url)
    assert listed.returncode == 0
    entries = {entry["jti"]: entry for entry in json.loads(listed.stdout)}
    assert entries[jti]["status"] == "active"
    assert entries[jti]["revoked"] is False
    assert entries[jti]["scopes"] == ["cnaf_quotient_familial"]
    assert entries[jti]["siret"] == SIRET
    assert token not in listed.stdout


@pytest.mark.parametrize(
    "fields",
    [
        {"exp": str(10**50)},  # what `issue --days 2912110` stored before it was refused
        {"exp": "1e19"},
        {"iat": "soon"},
        {"scopes": "{not json"},
        {"rate_limit": "-5"},
    ],
    ids=["exp 10**50", "exp 1e19", "iat a word", "scopes not json", "negative rate limit"],
)
def test_a_bad_stored_entry_is_listed_as_unreadable_and_can_be_revoked(
    keys_dir: Path, redis_server: RedisProcess, fields: dict[str, str]
) -> None:
    """One damaged registry entry neither stops the listing nor hides the other tokens."""
    token = issue(keys_dir, redis_server.url).stdout.strip()
    healthy = jwt.decode(token, options={"verify_signature": False})["jti"]
    damaged = str(uuid.uuid4())
    client = redis.Redis.from_url(redis_server.url)
    stored: dict[Any, Any] = {
        "label": "Entrée abîmée",
        "siret": SIRET,
        "scopes": "[]",
        "iat": "0",
        "exp": "0",
        "rate_limit": "",
    }
    stored.update(fields)
    client.hset(f"token:{{{damaged}}}", mapping=stored)
    client.sadd("tokens", damaged)

    table = admin("list", redis_url=redis_server.url)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
    assert "unreadable" in rows[damaged] and "active" in rows[healthy]
    listed = admin("list", "--json", redis_url=redis_server.url)
    assert listed.returncode == 0, listed.stderr
    entries = {entry["jti"]: entry for entry in json.loads(listed.stdout)}
    assert entries[damaged]["status"] == "unreadable"
    assert entries[damaged]["expires_at"] is None

    revoked = admin("revoke", damaged, redis_url=redis_server.url)
    assert revoked.returncode == 0, revoked.stderr
    # Revoked for as long as any token may live, since its own expiry cannot be read.
    assert client.ttl(f"revoked:{{{damaged}}}") > TOKEN_LIFETIME_MAX_SECONDS - 60
    client.close()


async def test_revoke_is_seen_by_the_rate_limiter_at_once(keys_dir: Path, redis_server: RedisProcess) -> None:
    token = issue(keys_dir, redis_server.url).stdout.strip()
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    client = redis.asyncio.Redis.from_url(redis_server.url)
    limiter = RateLimiter(client, GatewaySettings())
    assert (await limiter.check(jti, 0)).allowed

    result = admin("revoke", jti, redis_url=redis_server.url)
    assert result.returncode == 0, result.stderr
    assert f"revoked token {jti}" in result.stderr
    assert await client.exists(f"revoked:{{{jti}}}")
    ttl = await client.ttl(f"revoked:{{{jti}}}")
    assert abs(time.time() + ttl - exp) <= 2  # kept until the token expires
    assert await client.sismember("revoked", jti)
    decision = await limiter.check(jti, 0)
    assert decision.revoked
    assert decision.refusal().code == "00105"

    listed = json.loads(admin("list", "--json", redis_url=redis_server.url).stdout)
    assert next(entry for entry in listed if entry["jti"] == jti)["status"] == "revoked"
    await limiter.close()
    await client.aclose()


def test_revoke_refuses_unknown_and_malformed_jtis(redis_server: RedisProcess) -> None:
    unknown = str(uuid.uuid4())
    result = admin("revoke", unknown, redis_url=redis_server.url)
    assert result.returncode == 1
    assert f"no token with jti {unknown} is registered" in result.stderr
    client = redis.Redis.from_url(redis_server.url)
    assert not client.exists(f"revoked:{{{unknown}}}")
    assert not client.sismember("revoked", unknown)
    client.close()

    malformed = admin("revoke", "not-a-uuid", redis_url=redis_server.url)
    assert malformed.returncode == 2
    assert "is not a token jti" in malformed.stderr


def test_missing_arguments_are_usage_errors() -> None:
    result = admin_process("issue", "--kid", "k")
    assert result.returncode == 2
    assert "required" in result.stderr
    assert admin().returncode == 2


def test_contract_scopes_come_from_the_contracts() -> None:
    scopes = contract_scopes()
    for scope in (
        "cnaf_quotient_familial",
        "complementaire_sante_solidaire",
        "pole_emploi_paiements",
        "mesri_admissions",
        "cnous_statut_boursier",
        "men_statut_scolarite",
    ):
        assert scope in scopes
    assert "" not in scopes


def test_link_france_connect_copies_the_token_and_unlink_removes_it(
    keys_dir: Path, redis_server: RedisProcess
) -> None:
    """link-france-connect stores the token's habilitation under the client; unlink removes it."""
    token = issue(keys_dir, redis_server.url).stdout.strip()
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    linked = admin("link-france-connect", "fc-client-1", jti, redis_url=redis_server.url)
    assert linked.returncode == 0, linked.stderr
    assert linked.stdout.strip() == "fc-client-1"
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    stored = client.hgetall("france_connect_client:{fc-client-1}")
    assert stored["jti"] == jti
    assert stored["label"] == "CCAS de Test"
    assert json.loads(stored["scopes"]) == ["cnaf_quotient_familial"]
    assert client.ttl("france_connect_client:{fc-client-1}") > 0
    assert admin("unlink-france-connect", "fc-client-1", redis_url=redis_server.url).returncode == 0
    assert not client.exists("france_connect_client:{fc-client-1}")
    again = admin("unlink-france-connect", "fc-client-1", redis_url=redis_server.url)
    assert again.returncode == 1
    client.close()


def test_link_france_connect_refuses_unknown_revoked_and_malformed(
    keys_dir: Path, redis_server: RedisProcess
) -> None:
    token = issue(keys_dir, redis_server.url).stdout.strip()
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert admin("link-france-connect", "fc-2", str(uuid.uuid4()), redis_url=redis_server.url).returncode == 1
    assert admin("link-france-connect", "bad id{}", jti, redis_url=redis_server.url).returncode == 2
    assert admin("revoke", jti, redis_url=redis_server.url).returncode == 0
    refused = admin("link-france-connect", "fc-2", jti, redis_url=redis_server.url)
    assert refused.returncode == 1
    assert "revoked" in refused.stderr


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    (subcommands,) = (action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return list(subcommands.choices)


def test_each_group_builds_the_commands_it_names_and_the_help_lists_them_all() -> None:
    """A command parses with its group's parser alone; a name no group declares gets them all."""
    assert _commands(build_parser()) == [name for names in COMMAND_GROUPS for name in names]
    for names in COMMAND_GROUPS:
        for name in names:
            assert sorted(_commands(build_parser(name))) == sorted(names)
    assert _commands(build_parser("nothing")) == _commands(build_parser())


@pytest.mark.parametrize(
    ("command", "imported"),
    [(("journal", "keygen"), {"psycopg"}), (("habilitation", "list"), {"redis"})],
    ids=["journal", "admin-api"],
)
def test_a_command_imports_only_what_its_group_uses(command: tuple[str, ...], imported: set[str]) -> None:
    """The journal's commands start without Redis nor JWT, the admin API's without psycopg nor JWT."""
    probe = (
        "import sys\n"
        "from gateway.admin.cli import main\n"
        "try:\n"
        f"    main({[*command, '--help']!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(*sorted({'redis', 'jwt', 'psycopg'} & set(sys.modules)), file=sys.stderr)\n"
    )
    done = run_python("-c", probe, env=os.environ)
    assert done.returncode == 0, done.stderr
    assert set(done.stderr.split()) == imported
