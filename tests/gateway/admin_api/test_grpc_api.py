"""The admin API over gRPC: operators and roles, every action, refusals with their status, the JWT."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import jwt
import pytest
import redis
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import duration_pb2, timestamp_pb2

from apiparticulier.admin.v1 import admin_pb2
from gateway.admin_api.app import build_server
from gateway.rate_script import revoked_key
from tests.gateway.registry.conftest import SIGNING_KID, SIRET, AdminApi, admin_settings

_QF = "cnaf_quotient_familial"


async def _create(api: AdminApi, **fields: object) -> admin_pb2.Habilitation:
    request = admin_pb2.CreateHabilitationRequest(label="CCAS de Lyon", siret=SIRET, scopes=[_QF])
    for name, value in fields.items():
        field = getattr(request, name)
        if isinstance(value, list):
            field.extend(value)
        else:
            setattr(request, name, value)
    response = await api.stub.CreateHabilitation(request, metadata=api.as_admin())
    return response.habilitation


def _claims(api: AdminApi, token: str) -> dict[str, object]:
    key = load_pem_public_key((api.keys_dir / f"{SIGNING_KID}.public.pem").read_bytes())
    return jwt.decode(token, key, algorithms=["ES256"], audience="api-particulier")  # type: ignore[arg-type]


async def test_an_operator_credential_is_required(admin_api: AdminApi) -> None:
    for metadata in ((), (("authorization", "Bearer not an operator"),), (("authorization", "Basic x"),)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await admin_api.stub.ListHabilitations(admin_pb2.ListHabilitationsRequest(), metadata=metadata)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_a_viewer_reads_and_may_not_write(admin_api: AdminApi) -> None:
    created = await _create(admin_api)
    listed = await admin_api.stub.ListHabilitations(
        admin_pb2.ListHabilitationsRequest(), metadata=admin_api.as_viewer()
    )
    assert [h.id for h in listed.habilitations] == [created.id]

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await admin_api.stub.IssueToken(
            admin_pb2.IssueTokenRequest(habilitation_id=created.id), metadata=admin_api.as_viewer()
        )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    got = await admin_api.stub.GetHabilitation(
        admin_pb2.GetHabilitationRequest(id=created.id), metadata=admin_api.as_viewer()
    )
    assert list(got.tokens) == []


async def test_refusals_name_their_cause(admin_api: AdminApi) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await _create(admin_api, allowed_ips=["10.0.0.1/8"])
    assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (invalid.value.details() or "").startswith("allowed_ips:")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await admin_api.stub.GetHabilitation(
            admin_pb2.GetHabilitationRequest(id="0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e"),
            metadata=admin_api.as_admin(),
        )
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


async def test_an_update_replaces_the_lists_given(admin_api: AdminApi) -> None:
    created = await _create(admin_api, allowed_ips=["10.0.0.0/8"], rate_per_second=50)
    request = admin_pb2.UpdateHabilitationRequest(id=created.id, rate_per_minute=30, rate_per_second=0)
    request.scopes.values.extend([_QF, "cnaf_allocataires"])
    updated = (await admin_api.stub.UpdateHabilitation(request, metadata=admin_api.as_admin())).habilitation

    assert list(updated.scopes) == [_QF, "cnaf_allocataires"]
    assert list(updated.allowed_ips) == ["10.0.0.0/8"]
    assert (updated.rate_per_second, updated.rate_per_minute) == (0, 30)


async def test_the_organisation_name_is_set_at_creation_and_changed_when_given(admin_api: AdminApi) -> None:
    created = await _create(admin_api, organisation_name="Ville de Lyon", use_case="Cantine")
    assert (created.organisation_name, created.use_case) == ("Ville de Lyon", "Cantine")
    stub, metadata = admin_api.stub, admin_api.as_admin()
    kept = await stub.UpdateHabilitation(
        admin_pb2.UpdateHabilitationRequest(id=created.id, label="CCAS"), metadata=metadata
    )
    assert kept.habilitation.organisation_name == "Ville de Lyon"
    cleared = await stub.UpdateHabilitation(
        admin_pb2.UpdateHabilitationRequest(id=created.id, organisation_name=""), metadata=metadata
    )
    assert cleared.habilitation.organisation_name == ""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.UpdateHabilitation(
            admin_pb2.UpdateHabilitationRequest(id=created.id, organisation_name="x" * 201), metadata=metadata
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "organisation_name" in (refused.value.details() or "")


async def test_an_issued_token_names_its_habilitation_and_environment(admin_api: AdminApi) -> None:
    created = await _create(admin_api)
    issued = await admin_api.stub.IssueToken(
        admin_pb2.IssueTokenRequest(habilitation_id=created.id, environment=admin_pb2.ENVIRONMENT_SANDBOX),
        metadata=admin_api.as_admin(),
    )

    claims = _claims(admin_api, issued.jwt)
    assert (claims["jti"], claims["sub"], claims["env"]) == (issued.token.id, created.id, "sandbox")
    lifetime = issued.token.expires_at.ToDatetime() - issued.token.issued_at.ToDatetime()
    assert lifetime == dt.timedelta(days=548)
    assert issued.token.state == admin_pb2.TOKEN_STATE_ACTIVE


async def test_a_revocation_reaches_the_gateways_redis_at_once(admin_api: AdminApi) -> None:
    created = await _create(admin_api)
    issued = await admin_api.stub.IssueToken(
        admin_pb2.IssueTokenRequest(habilitation_id=created.id, days=10), metadata=admin_api.as_admin()
    )
    revoked = await admin_api.stub.RevokeToken(
        admin_pb2.RevokeTokenRequest(id=issued.token.id, reason="leaked"), metadata=admin_api.as_admin()
    )

    assert revoked.token.state == admin_pb2.TOKEN_STATE_REVOKED
    client = redis.Redis.from_url(admin_api.redis_url)
    try:
        assert client.exists(revoked_key(issued.token.id, created.id)) == 1
    finally:
        client.close()
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await admin_api.stub.RevokeToken(
            admin_pb2.RevokeTokenRequest(id=issued.token.id, reason="again"), metadata=admin_api.as_admin()
        )
    assert again.value.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_a_habilitation_revoked_writes_its_tokens_revocations_to_the_gateways_redis(
    admin_api: AdminApi,
) -> None:
    created = await _create(admin_api)
    issued = [
        await admin_api.stub.IssueToken(
            admin_pb2.IssueTokenRequest(habilitation_id=created.id, days=10), metadata=admin_api.as_admin()
        )
        for _ in range(2)
    ]
    await admin_api.stub.UpdateHabilitation(
        admin_pb2.UpdateHabilitationRequest(id=created.id, status=admin_pb2.HABILITATION_STATUS_REVOKED),
        metadata=admin_api.as_admin(),
    )

    client = redis.Redis.from_url(admin_api.redis_url)
    try:
        assert [client.exists(revoked_key(i.token.id, created.id)) for i in issued] == [1, 1]
    finally:
        client.close()


async def test_rotation_prolongation_and_ban_over_the_api(admin_api: AdminApi) -> None:
    created = await _create(admin_api)
    first = await admin_api.stub.IssueToken(
        admin_pb2.IssueTokenRequest(habilitation_id=created.id, days=10), metadata=admin_api.as_admin()
    )
    rotated = await admin_api.stub.RotateToken(
        admin_pb2.RotateTokenRequest(id=first.token.id, grace=duration_pb2.Duration(seconds=3600)),
        metadata=admin_api.as_admin(),
    )
    assert rotated.old_token.state == admin_pb2.TOKEN_STATE_ENDING
    assert _claims(admin_api, rotated.jwt)["jti"] == rotated.new_token.id

    prolonged = await admin_api.stub.ProlongToken(
        admin_pb2.ProlongTokenRequest(id=rotated.new_token.id, days=100), metadata=admin_api.as_admin()
    )
    assert prolonged.token.expires_at.ToDatetime() > first.token.expires_at.ToDatetime() + dt.timedelta(
        days=80
    )

    at = timestamp_pb2.Timestamp()
    at.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
    banned = await admin_api.stub.BanToken(
        admin_pb2.BanTokenRequest(id=rotated.new_token.id, at=at, reason="contractor left", replace=True),
        metadata=admin_api.as_admin(),
    )
    assert banned.token.state == admin_pb2.TOKEN_STATE_ENDING
    assert banned.replacement.replaces == rotated.new_token.id
    assert _claims(admin_api, banned.jwt)["jti"] == banned.replacement.id

    expiring = await admin_api.stub.ListTokens(
        admin_pb2.ListTokensRequest(expiring_within=duration_pb2.Duration(seconds=31 * 86400)),
        metadata=admin_api.as_viewer(),
    )
    assert [token.id for token in expiring.tokens] == [first.token.id]


async def test_the_audit_trail_verifies_over_the_api(admin_api: AdminApi) -> None:
    await _create(admin_api)
    verified = await admin_api.stub.VerifyAudit(
        admin_pb2.VerifyAuditRequest(), metadata=admin_api.as_viewer()
    )

    assert (verified.entries, verified.broken_at) == (1, 0)
    assert len(verified.head) == 64


async def test_the_admin_api_will_not_start_without_its_settings(tmp_path: Path, registry_url: str) -> None:
    for missing in ("registry_database_url", "admin_operators_file", "token_signing_kid"):
        settings = admin_settings(
            registry_url,
            tmp_path,
            "redis://127.0.0.1:1/0",
            **{missing: "" if missing != "admin_operators_file" else None},
        )
        with pytest.raises(ValueError, match=missing.upper()):
            await build_server(settings)


async def _refusal(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    return refused.value.code()


async def test_an_editor_token_is_signed_for_its_editor_with_no_scopes_and_rotates_as_any(
    admin_api: AdminApi,
) -> None:
    api = admin_api
    editor = (
        await api.stub.CreateEditor(
            admin_pb2.CreateEditorRequest(
                siret=SIRET, name="Logiciel", contacts=["support@logiciel.example"]
            ),
            metadata=api.as_admin(),
        )
    ).editor
    issued = await api.stub.IssueEditorToken(
        admin_pb2.IssueEditorTokenRequest(editor_id=editor.id), metadata=api.as_admin()
    )

    claims = _claims(api, issued.jwt)
    assert (claims["sub"], claims["kind"], claims["scopes"], claims["siret"]) == (
        editor.id,
        "editor",
        [],
        SIRET,
    )
    assert (issued.token.editor_id, issued.token.habilitation_id) == (editor.id, "")
    lifetime = issued.token.expires_at.ToDatetime() - issued.token.issued_at.ToDatetime()
    assert lifetime == dt.timedelta(days=548)
    rotated = await api.stub.RotateToken(
        admin_pb2.RotateTokenRequest(id=issued.token.id), metadata=api.as_admin()
    )
    assert (rotated.new_token.editor_id, _claims(api, rotated.jwt)["sub"]) == (editor.id, editor.id)
    listed = await api.stub.ListEditors(admin_pb2.ListEditorsRequest(), metadata=api.as_viewer())
    assert [e.id for e in listed.editors] == [editor.id]
    verified = await api.stub.VerifyAudit(admin_pb2.VerifyAuditRequest(), metadata=api.as_viewer())
    assert verified.broken_at == 0


async def test_editor_and_delegation_refusals_have_their_status(admin_api: AdminApi) -> None:
    api = admin_api
    editor_request = admin_pb2.CreateEditorRequest(siret=SIRET, name="Logiciel")
    assert await _refusal(api.stub.CreateEditor(editor_request, metadata=api.as_viewer())) is (
        grpc.StatusCode.PERMISSION_DENIED
    )
    bad = admin_pb2.CreateEditorRequest(siret="12345678901234", name="Logiciel")
    assert (
        await _refusal(api.stub.CreateEditor(bad, metadata=api.as_admin()))
        is grpc.StatusCode.INVALID_ARGUMENT
    )
    editor = (await api.stub.CreateEditor(editor_request, metadata=api.as_admin())).editor
    habilitation = await _create(api)
    unknown = "0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e"
    missing = admin_pb2.CreateDelegationRequest(editor_id=unknown, habilitation_id=habilitation.id)
    assert (
        await _refusal(api.stub.CreateDelegation(missing, metadata=api.as_admin()))
        is grpc.StatusCode.NOT_FOUND
    )
    await api.stub.UpdateHabilitation(
        admin_pb2.UpdateHabilitationRequest(
            id=habilitation.id, status=admin_pb2.HABILITATION_STATUS_ARCHIVED
        ),
        metadata=api.as_admin(),
    )
    archived = admin_pb2.CreateDelegationRequest(editor_id=editor.id, habilitation_id=habilitation.id)
    assert await _refusal(api.stub.CreateDelegation(archived, metadata=api.as_admin())) is (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    not_uuid = admin_pb2.RevokeDelegationRequest(id="1")
    assert await _refusal(api.stub.RevokeDelegation(not_uuid, metadata=api.as_admin())) is (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    bad_client = admin_pb2.MapFranceConnectClientRequest(client_id="a b", habilitation_id=habilitation.id)
    assert await _refusal(api.stub.MapFranceConnectClient(bad_client, metadata=api.as_admin())) is (
        grpc.StatusCode.INVALID_ARGUMENT
    )
