"""Token verification: keys by kid with pinned algorithms, claims, cache, key reload."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.auth import EDDSA, ES256, KeyStore, TokenVerifier, load_jwks_file, load_keys_dir
from gateway.registry.model import Environment
from gateway.settings import TokenSettings
from runtime.errors import ApiError
from tests.gateway.tokens import AUDIENCE, ISSUER, SIRET, TokenFactory, ed25519_key, es256_key


class Clock:
    """A settable clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def token_settings(cache_size: int = 100) -> TokenSettings:
    return TokenSettings(
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        token_leeway_seconds=30,
        token_max_bytes=4096,
        token_cache_size=cache_size,
    )


def verifier(keys: KeyStore, clock: Clock | None = None, cache_size: int = 100) -> TokenVerifier:
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return TokenVerifier(keys, token_settings(cache_size), **kwargs)


def code_of(verify: TokenVerifier, header: str) -> str:
    with pytest.raises(ApiError) as refused:
        verify.verify_header(header)
    return refused.value.code


def test_keys_dir_binds_each_key_to_its_algorithm(tmp_path: Path) -> None:
    """EC P-256 keys verify ES256, Ed25519 keys EdDSA; other kinds and private files are ignored."""
    es256_key("a").write(tmp_path)
    ed25519_key("b").write(tmp_path)
    spki = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "c.public.pem").write_bytes(
        rsa.generate_private_key(65537, 2048).public_key().public_bytes(*spki)
    )
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    (tmp_path / "d.public.pem").write_bytes(p384.public_bytes(*spki))
    (tmp_path / "e.public.pem").write_text("not a key")
    keys = load_keys_dir(tmp_path)
    assert {kid: key.algorithm for kid, key in keys.items()} == {"a": ES256, "b": EDDSA}


@pytest.mark.parametrize("make_key", [es256_key, ed25519_key])
def test_valid_token_gives_its_claims(tmp_path: Path, make_key) -> None:
    """A valid token of either algorithm yields a Token with the claims, scopes as a frozenset."""
    key = make_key()
    key.write(tmp_path)
    factory = TokenFactory(key)
    verify = verifier(KeyStore.from_source(tmp_path, None, 5))
    claims = factory.claims(rate_limit=50)
    token = verify.verify_header("Bearer " + jwt.encode(claims, key.private, key.algorithm, {"kid": key.kid}))
    assert token.jti == claims["jti"]
    assert token.habilitation == claims["sub"]
    assert token.siret == SIRET
    assert token.scopes == frozenset(factory.scopes)
    assert token.expires_at == claims["exp"]
    assert token.rate_limit_per_second == 50
    assert verify.verify_header(factory.bearer(rate_limit=...)).rate_limit_per_second is None


def test_audience_list_must_contain_ours(tmp_path: Path) -> None:
    """aud may be a list; it must contain TOKEN_AUDIENCE."""
    key = es256_key()
    key.write(tmp_path)
    factory = TokenFactory(key)
    verify = verifier(KeyStore.from_source(tmp_path, None, 5))
    assert verify.verify_header(factory.bearer(aud=["other", AUDIENCE])).siret == SIRET
    assert code_of(verify, factory.bearer(aud=["other"])) == "00101"


def test_jwks_file(tmp_path: Path) -> None:
    """Keys can come from a JWKS file; a key whose alg disagrees with its kind is skipped."""
    es, ed, liar = es256_key("es"), ed25519_key("ed"), es256_key("liar")
    entries = []
    for key in (es, ed, liar):
        algorithm = jwt.algorithms.get_default_algorithms()[key.algorithm]
        jwk = json.loads(algorithm.to_jwk(key.private.public_key()))
        jwk["kid"] = key.kid
        entries.append(jwk)
    entries[2]["alg"] = "EdDSA"
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": entries}))
    assert {kid: k.algorithm for kid, k in load_jwks_file(path).items()} == {"es": ES256, "ed": EDDSA}
    verify = verifier(KeyStore.from_source(None, path, 5))
    assert verify.verify_header(TokenFactory(ed).bearer()).siret == SIRET
    assert code_of(verify, TokenFactory(liar).bearer()) == "00101"


def test_unknown_kid_reloads_the_directory_at_most_once_per_interval(tmp_path: Path) -> None:
    """A new key file is picked up on its first use, but unknown kids cannot force reloads in a row."""
    first, second, third = es256_key("k1"), es256_key("k2"), es256_key("k3")
    first.write(tmp_path)
    monotonic = Clock(100.0)
    loads = []

    def load():
        loads.append(1)
        return load_keys_dir(tmp_path)

    keys = KeyStore(load, 5.0, clock=monotonic)
    verify = verifier(keys)
    monotonic.now += 10
    second.write(tmp_path)
    assert verify.verify_header(TokenFactory(second).bearer()).siret == SIRET
    assert len(loads) == 2
    third.write(tmp_path)
    for _ in range(20):  # a storm of unknown kids within the interval: no reload
        assert code_of(verify, TokenFactory(es256_key("nope")).bearer()) == "00101"
    assert code_of(verify, TokenFactory(third).bearer()) == "00101"
    assert len(loads) == 2
    monotonic.now += 5
    assert verify.verify_header(TokenFactory(third).bearer()).siret == SIRET
    assert len(loads) == 3


def test_cache_is_never_used_past_expiry(tmp_path: Path) -> None:
    """A cached token is served from the cache until exp, then verified again and found expired."""
    key = es256_key()
    key.write(tmp_path)
    clock = Clock(1_900_000_000.0)
    verify = verifier(KeyStore.from_source(tmp_path, None, 5), clock)
    now = int(clock.now)
    header = TokenFactory(key).bearer(iat=now, nbf=now, exp=now + 60)
    token = verify.verify_header(header)
    assert verify.verify_header(header) is token  # from the cache
    clock.now = now + 60 + 31  # past exp and the leeway
    assert code_of(verify, header) == "00103"


def test_expired_token_is_00103(tmp_path: Path) -> None:
    """An authentic token past exp plus leeway is 00103; within the leeway it still passes."""
    key = es256_key()
    key.write(tmp_path)
    factory = TokenFactory(key)
    verify = verifier(KeyStore.from_source(tmp_path, None, 5))
    now = int(time.time())
    assert code_of(verify, factory.bearer(iat=now - 200, nbf=now - 200, exp=now - 100)) == "00103"
    assert verify.verify_header(factory.bearer(iat=now - 200, nbf=now - 200, exp=now - 10)).siret == SIRET


def test_cache_is_bounded(tmp_path: Path) -> None:
    """The cache keeps at most cache_size tokens, dropping the least recently used."""
    key = es256_key()
    key.write(tmp_path)
    factory = TokenFactory(key)
    verify = verifier(KeyStore.from_source(tmp_path, None, 5), cache_size=2)
    headers = [factory.bearer() for _ in range(3)]
    tokens = [verify.verify_header(h) for h in headers]
    assert verify.verify_header(headers[2]) is tokens[2]
    assert verify.verify_header(headers[0]) is not tokens[0]  # evicted, verified again


def test_key_source_must_be_set(tmp_path: Path) -> None:
    """Exactly one of KEYS_DIR and JWKS_FILE must be set."""
    with pytest.raises(ValueError, match="KEYS_DIR"):
        KeyStore.from_source(None, None, 5)
    with pytest.raises(ValueError, match="KEYS_DIR"):
        KeyStore.from_source(tmp_path, tmp_path / "jwks.json", 5)


def test_a_token_of_the_other_environment_is_refused_with_its_own_code(tmp_path: Path) -> None:
    """00109: a sandbox token on a production gateway; 00108: a production token on a sandbox one."""
    key = es256_key()
    key.write(tmp_path)
    factory = TokenFactory(key)
    store = KeyStore.from_source(tmp_path, None, 5)
    production = verifier(store)
    sandbox = TokenVerifier(store, token_settings(), environment=Environment.SANDBOX)

    assert code_of(production, factory.bearer(env="sandbox")) == "00109"
    assert code_of(sandbox, factory.bearer(env="production")) == "00108"
    assert code_of(sandbox, factory.bearer()) == "00108"  # no env claim: a production token
    assert sandbox.verify_header(factory.bearer(env="sandbox")).environment is Environment.SANDBOX
    assert code_of(production, factory.bearer(env="staging")) == "00101"
    assert code_of(production, factory.bearer(env=["sandbox"])) == "00101"
