"""The console in Chromium, over a running `make run` stack: each page, its data, its accessibility.

One stack and one browser for every browser test (tests/console/conftest.py). Each page is
checked for its data from the running mesh and for axe-core's serious or critical violations,
and its screenshot is written (into docs/console/ by `make screenshots`). The operator's
journeys go through the admin API as the console calls it.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from console.agents import BY_KEY
from console.catalogue import apis
from gateway.pings import BY_ID, PINGS
from tests.console.conftest import Stack, accessibility_violations, screenshot
from tests.people import LEFEBVRE_QUERY, RECIPIENT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

_QUOTIENT = "/v3/dss/quotient_familial/identite"
_MAINTAINED = BY_ID["men_scolarite"]
_SCHEDULED = BY_ID["ants"]
_PARIS = ZoneInfo("Europe/Paris")


def _visit(page: Page, stack: Stack, path: str, heading: str, name: str) -> None:
    """Open ``path``; its first heading, no serious or critical axe violation, its screenshot."""
    response = page.goto(f"{stack.console_url}{path}")
    assert response is not None and response.status == 200, path
    expect(page.locator("h1")).to_have_text(heading)
    assert accessibility_violations(page) == [], path
    screenshot(page, name)


def _sign_in(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.console_url}/connexion")
    page.get_by_label("Secret d'opérateur").fill(stack.admin_secret)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("h1")).to_have_text("Habilitations")


def test_the_public_pages_show_the_mesh_s_data(stack: Stack, page: Page) -> None:
    _visit(page, stack, "/", "API Particulier", "accueil")
    _visit(page, stack, "/catalogue", "Catalogue des API", "catalogue")
    expect(page.locator(".fr-card")).to_have_count(len(apis()))
    _visit(page, stack, "/catalogue/cnaf.quotient_familial", "Quotient familial CAF & MSA", "catalogue-fiche")
    expect(page.locator("code", has_text="CnafService/GetQuotientFamilialByIdentity")).to_be_visible()
    _visit(page, stack, "/developpeurs", "Documentation pour les développeurs", "developpeurs")
    for path in ("/api/pings", "/api/proofs_avoided", _QUOTIENT):
        expect(page.locator("h3", has_text=re.compile(f"{re.escape(path)}$")).first).to_be_visible()
    expect(
        page.get_by_text(f'curl -gi -H "Authorization: Bearer $TOKEN" \'{stack.rest_url}{_QUOTIENT}?')
    ).to_be_visible()
    _visit(page, stack, "/statistiques", "Statistiques", "statistiques")
    proofs = httpx.get(f"{stack.rest_url}/api/proofs_avoided").json()
    figure = f"{proofs['proofs_avoided']:,}".replace(",", "\u202f")
    expect(page.locator(".fr-callout__title")).to_have_text(f"{figure} justificatifs évités")
    _visit(page, stack, "/statut", "Statut des services", "statut")
    rows = page.locator("#etats tbody tr")
    expect(rows).to_have_count(len(PINGS))
    for ping in PINGS:
        expect(rows.filter(has_text=ping.label)).to_have_count(1)


def test_an_operator_prolongs_then_revokes_a_token(stack: Stack, page: Page) -> None:
    operator = {"authorization": f"Bearer {stack.admin_secret}"}
    with httpx.Client(base_url=stack.admin_rest_url, headers=operator) as admin:
        _prolong_and_revoke(stack, page, admin)


def _prolong_and_revoke(stack: Stack, page: Page, admin: httpx.Client) -> None:
    """A token the admin API issued, prolonged then revoked in the console, as the admin API then says."""
    habilitation = admin.post(
        "/admin/v1/habilitations",
        json={"label": "CCAS de Villeurbanne", "siret": RECIPIENT, "scopes": ["cnaf_quotient_familial"]},
    ).json()
    issued = admin.post(f"/admin/v1/habilitations/{habilitation['id']}/tokens", json={"days": 10}).json()
    token_id = issued["token"]["id"]

    _sign_in(page, stack)
    assert accessibility_violations(page) == []
    screenshot(page, "operateur-habilitations")
    page.get_by_role("link", name="CCAS de Villeurbanne").click()
    expect(page.locator("h1")).to_have_text("CCAS de Villeurbanne")
    assert accessibility_violations(page) == []
    screenshot(page, "operateur-habilitation")
    row = page.locator("#jetons tbody tr", has_text=token_id)
    row.get_by_role("button", name="Prolonger de 30 jours").click()
    prolonged = admin.get(f"/admin/v1/habilitations/{habilitation['id']}").json()["tokens"][0]
    # Prolonged to 30 days from now, past the 10 days it was issued for.
    expires = dt.datetime.fromisoformat(prolonged["expires_at"])
    assert expires > dt.datetime.now(dt.UTC) + dt.timedelta(days=29)
    row.get_by_role("button", name="Révoquer").click()
    expect(row.locator(".token-state")).to_have_text("revoked")
    (revoked,) = admin.get("/admin/v1/tokens", params={"habilitation_id": habilitation["id"]}).json()
    assert (revoked["state"], revoked["revoked_reason"]) == ("revoked", "révoqué depuis la console")


def test_an_operator_opens_a_maintenance_window_and_the_status_page_shows_it(
    stack: Stack, page: Page
) -> None:
    _sign_in(page, stack)
    page.get_by_role("link", name="Maintenances").click()
    page.get_by_label("Service").select_option(_MAINTAINED.id)
    page.get_by_label("Durée, en minutes").fill("45")
    page.get_by_role("button", name="Ouvrir la fenêtre").click()
    expect(page.locator("#fenetres")).to_contain_text(_MAINTAINED.label)
    assert accessibility_violations(page) == []
    screenshot(page, "operateur-maintenances")

    ping = httpx.get(f"{stack.rest_url}/api/{_MAINTAINED.id}/ping").json()
    assert ping["status"] == "maintenance"
    end = dt.datetime.fromisoformat(ping["until"]).astimezone(dt.UTC)
    _visit(page, stack, "/statut", "Statut des services", "statut-maintenance")
    expect(page.locator("#maintenances")).to_contain_text(_MAINTAINED.label)
    row = page.locator("#etats tbody tr", has_text=_MAINTAINED.label)
    expect(row).to_contain_text("En maintenance")
    shown = end.astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y %H:%M")
    expect(row).to_contain_text(shown)

    # Closed in the console: the admin API ends it now, on every gateway.
    page.get_by_role("link", name="Maintenances").click()
    page.get_by_role("button", name="Terminer maintenant").click()
    expect(page.locator("#fenetres")).to_contain_text("Aucune fenêtre de maintenance")
    assert httpx.get(f"{stack.rest_url}/api/{_MAINTAINED.id}/ping").json()["status"] != "maintenance"

    page.get_by_role("link", name="Journal d'audit").click()
    expect(page.locator("#verification")).to_contain_text("Chaîne intègre")
    newest = page.locator("#entrees tbody tr")
    expect(newest.nth(0)).to_contain_text("maintenance.close")
    expect(newest.nth(1)).to_contain_text("maintenance.open")
    expect(newest.nth(1)).to_contain_text(_MAINTAINED.id)
    assert accessibility_violations(page) == []
    screenshot(page, "operateur-audit")


def test_a_maintenance_scheduled_shows_on_the_status_page_with_its_start_and_end(
    stack: Stack, page: Page
) -> None:
    _sign_in(page, stack)
    page.get_by_role("link", name="Maintenances").click()
    start = (dt.datetime.now(_PARIS) + dt.timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    page.get_by_label("Service").select_option(_SCHEDULED.id)
    page.get_by_label("Début, heure de Paris").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Durée, en minutes").fill("90")
    page.get_by_role("button", name="Ouvrir la fenêtre").click()
    expect(page.locator("#fenetres")).to_contain_text("Programmée")
    # Not yet: the ping answers as before.
    assert httpx.get(f"{stack.rest_url}/api/{_SCHEDULED.id}/ping").json()["status"] != "maintenance"

    _visit(page, stack, "/statut", "Statut des services", "statut-maintenance-prevue")
    row = page.locator("#maintenances-prevues tbody tr", has_text=_SCHEDULED.label)
    expect(row).to_contain_text(start.strftime("%d/%m/%Y 10:00"))
    expect(row).to_contain_text(start.strftime("%d/%m/%Y 11:30"))
    expect(page.locator("#maintenances")).not_to_contain_text(_SCHEDULED.label)

    # Cancelled in the console: the status page no longer announces it.
    page.goto(f"{stack.console_url}/operateur/maintenance")
    page.get_by_role("button", name="Annuler").click()
    page.goto(f"{stack.console_url}/statut")
    expect(page.locator("#maintenances-prevues")).not_to_contain_text(_SCHEDULED.label)


def _holder_sign_in(page: Page, stack: Stack, agent: str) -> None:
    """Sign in through the sandbox as the fictional agent of key ``agent``."""
    page.goto(f"{stack.console_url}/agent/connexion")
    # The DSFR draws the radio button under its label: the label is what a person clicks.
    page.locator(f"label[for='agent-{agent}']").click()
    expect(page.get_by_label(BY_KEY[agent].name)).to_be_checked()
    assert accessibility_violations(page) == []
    screenshot(page, "agent-connexion")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("h1")).to_have_text("Mes habilitations")


def _until_known(gateway: httpx.Client) -> None:
    """Wait for the gateway's registry snapshot to hold the token just issued (a change is taken
    within about two seconds): a call before is refused 00101, and counted in no habilitation."""
    deadline = time.monotonic() + 10
    # The introspection is the gateway's own route: it reads the token, and no API counts it.
    while gateway.get("/api/introspect").status_code == 401:
        assert time.monotonic() < deadline, "the gateway never learnt the token"
        time.sleep(0.1)


def test_a_holder_sees_their_calls_and_revokes_a_token_the_gateway_then_refuses(
    stack: Stack, page: Page
) -> None:
    """The chart's bars add up to the calls made; the token revoked in the console is refused next."""
    agent = BY_KEY["ccas"]
    operator = {"authorization": f"Bearer {stack.admin_secret}"}
    with httpx.Client(base_url=stack.admin_rest_url, headers=operator) as admin:
        habilitation = admin.post(
            "/admin/v1/habilitations",
            json={
                "label": "Centre social de test",
                "siret": RECIPIENT,
                "scopes": ["cnaf_quotient_familial"],
                "contacts": [agent.email],
            },
        ).json()
        issued = admin.post(f"/admin/v1/habilitations/{habilitation['id']}/tokens", json={"days": 30}).json()
    bearer = {"authorization": f"Bearer {issued['jwt']}"}
    with httpx.Client(base_url=stack.rest_url, headers=bearer, timeout=30) as gateway:
        _until_known(gateway)
        answers = [gateway.get(_QUOTIENT, params=LEFEBVRE_QUERY).status_code for _ in range(3)]
        # A scope the habilitation lacks: refused, and counted with its code.
        answers.append(
            gateway.get("/v3/dss/complementaire_sante_solidaire/identite", params=LEFEBVRE_QUERY).status_code
        )
    assert answers == [200, 200, 200, 403]
    console = {
        "authorization": f"Bearer {(stack.run_dir / 'console-admin-secret').read_text().strip()}",
        "x-acting-for": agent.email,
    }
    activity_path = f"/admin/v1/holder/habilitations/{habilitation['id']}/activity"
    with httpx.Client(base_url=stack.admin_rest_url, headers=console) as holder:
        for _ in range(100):  # the gateway writes its counts every USAGE_FLUSH_SECONDS
            rows = holder.get(activity_path, params={"window": "30h"}).json()["rows"]
            if sum(row["calls"] for row in rows) == len(answers):
                break
            time.sleep(0.1)

    _holder_sign_in(page, stack, "ccas")
    assert accessibility_violations(page) == []
    screenshot(page, "agent-habilitations")
    page.get_by_role("link", name="Centre social de test").click()
    expect(page.locator("h1")).to_have_text("Centre social de test")
    caption = page.locator("#chart-caption")
    expect(caption).to_contain_text("appels sur les 30 dernières heures, par tranche d'une heure")
    bars = page.locator("#chart g.console-bar")
    succeeded = sum(int(bar.get_attribute("data-ok") or 0) for bar in bars.all())
    refused = sum(int(bar.get_attribute("data-errors") or 0) for bar in bars.all())
    assert (succeeded, refused) == (3, 1)
    expect(page.locator("#erreurs tbody tr")).to_have_count(1)
    expect(page.locator("#erreurs")).to_contain_text("00100")
    expect(page.locator("#dernieres-requetes tbody tr")).to_have_count(4)
    expect(page.locator("#dernieres-requetes")).not_to_contain_text("LEFEBVRE")
    assert accessibility_violations(page) == []
    page.locator("#appels").scroll_into_view_if_needed()
    screenshot(page, "agent-habilitation")

    row = page.locator("#jetons tbody tr", has_text=issued["token"]["id"])
    row.get_by_role("button", name="Révoquer").click()
    expect(row.locator(".token-state")).to_have_text("revoked")
    refused_now = httpx.get(f"{stack.rest_url}{_QUOTIENT}", params=LEFEBVRE_QUERY, headers=bearer, timeout=30)
    assert refused_now.status_code == 401, refused_now.text

    for window, per_bar in (("10m", "par tranche de 10 minutes"), ("8d", "par tranche de 6 heures")):
        page.goto(f"{stack.console_url}/agent/habilitations/{habilitation['id']}?fenetre={window}")
        expect(page.locator("#chart-caption")).to_contain_text(per_bar)
        total = sum(
            int(bar.get_attribute("data-ok") or 0) for bar in page.locator("#chart g.console-bar").all()
        )
        assert total == 3, window

    # The holder maps their FranceConnect client to the habilitation (issue 22: the holder may).
    page.get_by_label("Identifiant du client FranceConnect").fill("c0ffee01")
    page.get_by_role("button", name="Associer à cette habilitation").click()
    expect(page.locator("h1")).to_have_text("Centre social de test")
    expect(page.get_by_text("c0ffee01")).to_be_visible()
    operator_view = httpx.get(
        f"{stack.admin_rest_url}/admin/v1/france_connect_clients",
        headers={"authorization": f"Bearer {stack.admin_secret}"},
    ).json()
    assert {"client_id": "c0ffee01", "habilitation_id": habilitation["id"]}.items() <= next(
        c for c in operator_view if c["client_id"] == "c0ffee01"
    ).items()


def test_an_editor_sees_their_delegations(stack: Stack, page: Page) -> None:
    _holder_sign_in(page, stack, "editeur")
    page.get_by_role("link", name="Éditeur de démonstration").click()
    expect(page.locator("h1")).to_have_text("Éditeur de démonstration")
    expect(page.locator("#jetons tbody tr")).to_have_count(1)
    assert accessibility_violations(page) == []
    screenshot(page, "agent-editeur")
    page.locator("#delegations").get_by_role("link").first.click()
    expect(page.locator("h1")).to_have_text("CCAS de démonstration - quotient familial")
    expect(page.locator("#chart")).to_be_visible()
    assert accessibility_violations(page) == []
    page.locator("#appels").scroll_into_view_if_needed()
    screenshot(page, "agent-delegation")


def test_an_operator_invites_a_body_and_is_shown_its_secret_once(stack: Stack, page: Page) -> None:
    _sign_in(page, stack)
    page.get_by_role("link", name="Invitations").click()
    expect(page.locator("h1")).to_have_text("Invitations")
    page.get_by_label("Éditeur").select_option(label="Éditeur de démonstration")
    page.get_by_label("Adresse électronique du titulaire invité").fill("accueil@mairie-invitee.example")
    for label, value in (
        ("Prénom", "Responsable"),
        ("Nom", "Conformité"),
        ("Adresse électronique", "dpd@mairie-invitee.example"),
        ("Téléphone", "+33 1 23 45 67 89"),
        ("Fonction", "Déléguée à la protection des données"),
    ):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Inviter").click()
    expect(page.locator("#secret code")).not_to_be_empty()
    expect(page.locator("#invitations tbody tr").first).to_contain_text("En attente")
    # Never in the address bar: the answer of the POST shows it, once.
    assert page.url == f"{stack.console_url}/operateur/invitations"
    assert accessibility_violations(page) == []
    screenshot(page, "operateur-invitations")
    page.goto(f"{stack.console_url}/operateur/invitations")
    expect(page.locator("#secret")).to_have_count(0)
