"""`make run`'s holders' space: the console's own admin API credential, and the sandbox agents' records.

The console acts for a habilitation holder with a credential of its own, of role ``console``
(`gateway.admin_api.holders`): `console_operator` makes it once in the run directory and gives the
operators file's entry for it. `seed` records, through the admin API as operator ``dev`` would, the
habilitations and the editor whose contacts are the sandbox's fictional agents (`console.agents`),
once: a restarted stack finds them by label and leaves them as they are.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

import httpx

from console.agents import BY_KEY, SANDBOX_EDITOR, SANDBOX_HABILITATIONS, SANDBOX_SIRET
from gateway.admin_api.service import Role, secret_digest

CONSOLE_OPERATOR = "console"
"""The console's name in the operators file: the audit trail's ``<e-mail> via console``."""


def console_secret(run_dir: Path) -> str:
    """The console's admin API secret, made once and kept in ``run_dir`` (mode 0600)."""
    path = run_dir / "console-admin-secret"
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def console_operator(run_dir: Path) -> dict[str, str]:
    """The operators file's entry of the console (role ``console``)."""
    return {
        "name": CONSOLE_OPERATOR,
        "role": Role.CONSOLE.value,
        "secret_sha256": secret_digest(console_secret(run_dir)),
    }


def seed(admin_rest_url: str, operator_secret: str) -> None:
    """Record the sandbox agents' habilitations, editor and delegation, unless already there.

    When the admin API refuses or does not answer, says so on standard error and lets the stack
    run on: only the holders' space misses its sandbox records.
    """
    try:
        _seed(admin_rest_url, operator_secret)
    except httpx.HTTPError as error:
        print(f"holders' space: the sandbox agents' records were not made ({error})", file=sys.stderr)


def _seed(admin_rest_url: str, operator_secret: str) -> None:
    with httpx.Client(
        base_url=f"{admin_rest_url}/admin/v1",
        headers={"authorization": f"Bearer {operator_secret}"},
        timeout=10,
    ) as admin:

        def made(path: str, body: dict[str, Any]) -> Any:
            answer = admin.post(path, json=body)
            answer.raise_for_status()
            return answer.json()

        existing = {h["label"]: h for h in admin.get("/habilitations").raise_for_status().json()}
        created = []
        for label, agent, scopes in SANDBOX_HABILITATIONS:
            if label in existing:
                continue
            habilitation = made(
                "/habilitations",
                {
                    "label": label,
                    "siret": SANDBOX_SIRET,
                    "scopes": list(scopes),
                    "contacts": [BY_KEY[agent].email],
                    "use_case": "Bac à sable",
                },
            )
            made(f"/habilitations/{habilitation['id']}/tokens", {"days": 365})
            created.append(habilitation)
        name, agent = SANDBOX_EDITOR
        if not any(editor["name"] == name for editor in admin.get("/editors").raise_for_status().json()):
            contacts = [BY_KEY[agent].email]
            editor = made("/editors", {"siret": SANDBOX_SIRET, "name": name, "contacts": contacts})
            made(f"/editors/{editor['id']}/tokens", {"days": 365})
            if created:
                made("/delegations", {"editor_id": editor["id"], "habilitation_id": created[0]["id"]})
