"""An editor's invitation of a public body over the admin API: invited, accepted by the body's holder
with the invitation's secret, the delegation then active; each refusal with its status."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from google.protobuf import json_format

from apiparticulier.admin.v1 import admin_pb2
from devstack.redis import RedisProcess
from devstack.smtp import SmtpSink
from tests.gateway.registry.conftest import (
    ADMIN_SECRET,
    SIRET,
    VIEWER_SECRET,
    AdminApi,
    admin_settings,
    running_admin_api,
)

_QF = "cnaf_quotient_familial"
_ADMIN = {"authorization": f"Bearer {ADMIN_SECRET}"}
_VIEWER = {"authorization": f"Bearer {VIEWER_SECRET}"}
_EDITOR_SIRET = "21756011100015"
_SAME_SIREN = SIRET[:9] + "00021"
"""Another establishment of the holder's organisation (same SIREN)."""
_OTHER_ORGANISATION = "21690123100011"
_UNKNOWN = "0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e"
_DPO = admin_pb2.DataProtectionOfficer(
    given_name="Responsable",
    family_name="Conformité",
    email="  DPD@Mairie.Example ",
    phone=" +33 1 23 45 67 89",
    job_title="Déléguée à la protection des données",
)


async def _refusal(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    raise AssertionError("the call was not refused")


async def _invited(api: AdminApi) -> tuple[str, str, admin_pb2.InviteBodyResponse]:
    """An editor, a body's habilitation, and the editor's invitation of that body."""
    editor = (
        await api.stub.CreateEditor(
            admin_pb2.CreateEditorRequest(siret=_EDITOR_SIRET, name="Logiciel"), metadata=api.as_admin()
        )
    ).editor.id
    habilitation = (
        await api.stub.CreateHabilitation(
            admin_pb2.CreateHabilitationRequest(label="CCAS", siret=SIRET, scopes=[_QF]),
            metadata=api.as_admin(),
        )
    ).habilitation.id
    invited = await api.stub.InviteBody(
        admin_pb2.InviteBodyRequest(
            editor_id=editor, habilitation_id=habilitation, contact_email="Accueil@Mairie.Example", dpo=_DPO
        ),
        metadata=api.as_admin(),
    )
    return editor, habilitation, invited


def _accept(
    invitation: str, secret: str, *, siret: str = SIRET, unconfirmed: str = ""
) -> admin_pb2.AcceptInvitationRequest:
    """The holder's acceptance; ``unconfirmed`` names the confirmation left false, if any."""
    return admin_pb2.AcceptInvitationRequest(
        id=invitation,
        secret=secret,
        siret=siret,
        terms_accepted=unconfirmed != "terms_accepted",
        dpo_informed=unconfirmed != "dpo_informed",
    )


async def test_a_body_s_holder_accepts_an_invitation_and_the_delegation_is_active(
    admin_api: AdminApi,
) -> None:
    api = admin_api
    editor, habilitation, invited = await _invited(api)
    invitation = invited.invitation
    assert invitation.state == admin_pb2.INVITATION_STATE_PENDING
    assert (invitation.contact_email, invitation.dpo.email, invitation.dpo.phone) == (
        "accueil@mairie.example",
        "dpd@mairie.example",
        "+33 1 23 45 67 89",
    )
    assert invitation.dpo.family_name == "Conformité" and not invitation.delegation_id
    assert len(invited.secret) >= 43
    pending = await api.stub.ListDelegations(
        admin_pb2.ListDelegationsRequest(editor_id=editor), metadata=api.as_admin()
    )
    assert not pending.delegations

    # No operator: the secret is the credential; the holder's organisation, by its SIREN.
    accepted = await api.stub.AcceptInvitation(_accept(invitation.id, invited.secret, siret=_SAME_SIREN))
    assert accepted.invitation.state == admin_pb2.INVITATION_STATE_ACCEPTED
    delegation = accepted.delegation
    assert accepted.invitation.delegation_id == delegation.id
    assert (delegation.editor_id, delegation.habilitation_id) == (editor, habilitation)
    assert delegation.origin == admin_pb2.DELEGATION_ORIGIN_EDITOR_DELEGATION_REQUEST
    assert delegation.state == admin_pb2.DELEGATION_STATE_ACTIVE
    listed = await api.stub.ListInvitations(
        admin_pb2.ListInvitationsRequest(habilitation_id=habilitation), metadata=api.as_viewer()
    )
    assert [(i.id, i.state) for i in listed.invitations] == [
        (invitation.id, admin_pb2.INVITATION_STATE_ACCEPTED)
    ]

    again = await _refusal(api.stub.AcceptInvitation(_accept(invitation.id, invited.secret)))
    assert again == (grpc.StatusCode.FAILED_PRECONDITION, "the invitation is accepted")
    reinvite = admin_pb2.InviteBodyRequest(
        editor_id=editor, habilitation_id=habilitation, contact_email="accueil@mairie.example", dpo=_DPO
    )
    assert (await _refusal(api.stub.InviteBody(reinvite, metadata=api.as_admin())))[0] is (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    verified = await api.stub.VerifyAudit(admin_pb2.VerifyAuditRequest(), metadata=api.as_viewer())
    assert verified.broken_at == 0
    async with await psycopg.AsyncConnection.connect(api.database_url) as conn:
        cursor = await conn.execute(
            "SELECT actor, action FROM registry.audit WHERE target IN (%s, %s) ORDER BY seq",
            (invitation.id, delegation.id),
        )
        assert await cursor.fetchall() == [
            ("operatrice-1", "invitation.create"),
            (f"holder {_SAME_SIREN}", "delegation.create"),
            (f"holder {_SAME_SIREN}", "invitation.accept"),
        ]


async def test_each_refusal_of_an_invitation_has_its_status(admin_api: AdminApi) -> None:
    api = admin_api
    editor, habilitation, invited = await _invited(api)
    invitation = invited.invitation.id

    wrong_secret = await _refusal(api.stub.AcceptInvitation(_accept(invitation, "not-the-secret")))
    assert wrong_secret[0] is grpc.StatusCode.NOT_FOUND
    unknown = await _refusal(api.stub.AcceptInvitation(_accept(_UNKNOWN, invited.secret)))
    # An unknown id is answered as a wrong secret: which of the two is not said.
    assert unknown == (
        wrong_secret[0],
        wrong_secret[1].replace(invitation, _UNKNOWN),
    )
    other = await _refusal(
        api.stub.AcceptInvitation(_accept(invitation, invited.secret, siret=_OTHER_ORGANISATION))
    )
    assert other == (grpc.StatusCode.PERMISSION_DENIED, "the invitation is for another organisation")
    for confirmation in ("terms_accepted", "dpo_informed"):
        code, details = await _refusal(
            api.stub.AcceptInvitation(_accept(invitation, invited.secret, unconfirmed=confirmation))
        )
        assert code is grpc.StatusCode.INVALID_ARGUMENT and confirmation in details
    bad_siret = await _refusal(
        api.stub.AcceptInvitation(_accept(invitation, invited.secret, siret="12345678901234"))
    )
    assert bad_siret[0] is grpc.StatusCode.INVALID_ARGUMENT

    def invite(dpo: admin_pb2.DataProtectionOfficer, contact: str = "accueil@mairie.example") -> Any:
        request = admin_pb2.InviteBodyRequest(
            editor_id=editor, habilitation_id=habilitation, contact_email=contact, dpo=dpo
        )
        return api.stub.InviteBody(request, metadata=api.as_admin())

    for field, value in (
        ("email", "no address"),
        ("phone", "call me"),
        ("given_name", " "),
        ("job_title", ""),
    ):
        dpo = admin_pb2.DataProtectionOfficer()
        dpo.CopyFrom(_DPO)
        setattr(dpo, field, value)
        code, details = await _refusal(invite(dpo))
        assert code is grpc.StatusCode.INVALID_ARGUMENT and f"dpo.{field}" in details
        assert value.strip() == "" or value not in details
    assert (await _refusal(invite(_DPO, "nobody")))[0] is grpc.StatusCode.INVALID_ARGUMENT
    # Still pending: a second invitation of the same body by the same editor waits for the first.
    assert (await _refusal(invite(_DPO)))[0] is grpc.StatusCode.FAILED_PRECONDITION
    viewer = admin_pb2.InviteBodyRequest(
        editor_id=editor, habilitation_id=habilitation, contact_email="accueil@mairie.example", dpo=_DPO
    )
    assert (await _refusal(api.stub.InviteBody(viewer, metadata=api.as_viewer())))[0] is (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert (await _refusal(api.stub.InviteBody(viewer)))[0] is grpc.StatusCode.UNAUTHENTICATED

    # Past its 30 days, it can no longer be accepted, and the editor may invite again.
    async with await psycopg.AsyncConnection.connect(api.database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE registry.invitations SET expires_at = now() - interval '1 second' WHERE id = %s",
            (invitation,),
        )
    expired = await _refusal(api.stub.AcceptInvitation(_accept(invitation, invited.secret)))
    assert expired == (grpc.StatusCode.FAILED_PRECONDITION, "the invitation is expired")
    renewed = await invite(_DPO)
    assert renewed.invitation.state == admin_pb2.INVITATION_STATE_PENDING


async def test_over_rest_a_console_invites_and_the_holder_accepts_without_an_operator(
    admin_api: AdminApi,
) -> None:
    api = admin_api
    editor, _, _ = await _invited(api)
    async with httpx.AsyncClient(base_url=api.rest_url) as client:
        listed = await client.get("/admin/v1/invitations", params={"editor_id": editor}, headers=_ADMIN)
        assert [i["state"] for i in listed.json()] == ["pending"]
        # A second body of the same organisation's habilitation, invited by the console.
        second = (
            await api.stub.CreateHabilitation(
                admin_pb2.CreateHabilitationRequest(label="CCAS", siret=SIRET, scopes=[_QF]),
                metadata=api.as_admin(),
            )
        ).habilitation.id
        invitation = {
            "editor_id": editor,
            "habilitation_id": second,
            "contact_email": "accueil@mairie.example",
            "dpo": json_format.MessageToDict(_DPO, preserving_proto_field_name=True),
        }
        assert (await client.post("/admin/v1/invitations", json=invitation)).status_code == 401
        viewer = await client.post("/admin/v1/invitations", headers=_VIEWER, json=invitation)
        assert viewer.status_code == 403
        no_dpo = await client.post("/admin/v1/invitations", headers=_ADMIN, json={**invitation, "dpo": "x"})
        assert (no_dpo.status_code, no_dpo.json()["field"]) == (400, "dpo")
        created = await client.post("/admin/v1/invitations", headers=_ADMIN, json=invitation)
        assert created.status_code == 201, created.text
        invited = created.json()
        assert invited["invitation"]["dpo"]["email"] == "dpd@mairie.example"

        acceptance = {"secret": invited["secret"], "siret": SIRET, "terms_accepted": True}
        path = f"/admin/v1/invitations/{invited['invitation']['id']}/accept"
        unconfirmed = await client.post(path, json=acceptance)
        assert (unconfirmed.status_code, unconfirmed.json()["field"]) == (400, "dpo_informed")
        wrong = await client.post(path, json={**acceptance, "dpo_informed": True, "secret": "x"})
        assert wrong.status_code == 404
        accepted = await client.post(path, json={**acceptance, "dpo_informed": True})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["invitation"]["state"] == "accepted"
        assert accepted.json()["delegation"]["created_via"] == "editor_delegation_request"
        assert accepted.json()["delegation"]["habilitation_id"] == second


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """An SMTP sink (started outside the test's event loop: it runs one of its own)."""
    server = SmtpSink(tmp_path / "mail")
    server.start()
    yield server
    server.close()


async def test_the_invitation_is_mailed_to_the_body_s_contact_who_accepts_with_its_secret(
    registry_url: str, tmp_path: Path, redis_server: RedisProcess, sink: SmtpSink
) -> None:
    mailing = {"smtp_host": "127.0.0.1", "smtp_port": sink.port}
    async with running_admin_api(admin_settings(registry_url, tmp_path, redis_server.url, **mailing)) as api:
        _, habilitation, invited = await _invited(api)
        (raw,) = sink.messages()
        message = message_from_bytes(raw, policy=policy.default)
        assert message["To"] == "accueil@mairie.example"
        assert "Logiciel vous invite à lui déléguer l'habilitation « CCAS »" in str(message["Subject"])
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert "Responsable Conformité" in text
        secret = re.search(r"secret : (\S+)", text)
        assert secret is not None and secret.group(1) == invited.secret
        accepted = await api.stub.AcceptInvitation(_accept(invited.invitation.id, secret.group(1)))
        assert accepted.delegation.habilitation_id == habilitation
