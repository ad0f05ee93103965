"""The citizen and the public charts in Chromium, over the calls the test makes.

Over the browser tests' `make run` stack (tests/console/conftest.py): the calls are made on the
gateway's REST front with the sandbox FranceConnect tokens (the FranceConnect modality). The
journal records them, and the console reads them back through the gateway's citizen route with
the access token the sandbox provider issued at sign-in; the usage recorder counts them, and the
statistics page charts them.
"""

from __future__ import annotations

import datetime as dt
import re
import time

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from devstack.demo import DEMO_ORGANISATION, DEMO_USE_CASE
from devstack.france_connect import people
from gateway.pings import PINGS
from tests.console.conftest import AXE, Stack, accessibility_violations, screenshot
from tests.people import RECIPIENT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

_QUOTIENT = "/v3/dss/quotient_familial/france_connect"
_CITIZEN, _OTHER = people()[0].token, people()[1].token
"""The first sandbox person (CNAF and C2S scopes), and another of the CNAF's households."""


def _call(stack: Stack, token: str) -> None:
    """One quotient familial call about the person of ``token`` (FranceConnect modality)."""
    response = httpx.get(
        f"{stack.rest_url}{_QUOTIENT}",
        params={"recipient": RECIPIENT},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    # Found or not, a provider call was made about the person, and the journal keeps it.
    assert response.status_code in {200, 404}, response.text


def _sign_in(page: Page, stack: Stack, token: str, *, shots: bool = False) -> None:
    """Through the console's FranceConnect button and the sandbox provider's page, as ``token``'s person."""
    page.goto(f"{stack.console_url}/mes-donnees")
    expect(page.locator("h1")).to_have_text("Qui a consulté mes données ?")
    if shots:
        assert accessibility_violations(page) == []
        screenshot(page, "mes-donnees-connexion")
    page.get_by_role("link", name="S'identifier avec FranceConnect").click()
    expect(page.locator("h1")).to_have_text("Connexion avec FranceConnect (bac à sable)")
    if shots:
        screenshot(page, "franceconnect-bac-a-sable")
    page.locator(f'input[name="person"][value="{token}"]').check()
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("#resume")).to_be_visible()


def _rows(page: Page) -> int:
    return page.locator("#consultations tbody tr").count()


def _await_rows(page: Page, expected: int) -> None:
    """Reload until the page lists ``expected`` accesses (the journal writes off the request path)."""
    deadline = time.monotonic() + 30
    while _rows(page) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    assert _rows(page) == expected


def test_a_citizen_sees_exactly_the_accesses_about_them(stack: Stack, browser: Browser) -> None:
    # Two browsers: two citizens, each with their own cookies.
    contexts = [
        browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR") for _ in range(2)
    ]
    try:
        for context in contexts:
            context.add_init_script(path=str(AXE))
        citizen, other = (context.new_page() for context in contexts)
        _sign_in(citizen, stack, _CITIZEN, shots=True)
        _sign_in(other, stack, _OTHER)
        # Other tests of the session may have asked about these persons: count from here.
        before, other_before = _rows(citizen), _rows(other)

        _call(stack, _OTHER)
        _call(stack, _CITIZEN)
        _call(stack, _CITIZEN)

        _await_rows(citizen, before + 2)
        _await_rows(other, other_before + 1)
        newest = citizen.locator("#consultations tbody tr").first
        expect(newest).to_contain_text("Quotient familial")
        # The body's name and the habilitation's purpose, as the registry holds them.
        expect(newest).to_contain_text(DEMO_ORGANISATION)
        expect(newest).to_contain_text(f"SIRET {RECIPIENT}")
        expect(newest).to_contain_text(DEMO_USE_CASE)
        assert accessibility_violations(citizen) == []
        screenshot(citizen, "mes-donnees")

        # Signed out, the page asks to sign in again; the URL never named the person.
        assert re.fullmatch(rf"{re.escape(stack.console_url)}/mes-donnees", citizen.url)
        citizen.get_by_role("button", name="Se déconnecter de « Mes données »").click()
        expect(citizen.get_by_role("link", name="S'identifier avec FranceConnect")).to_be_visible()
    finally:
        for context in contexts:
            context.close()


def _today_s_bar(page: Page, key: str) -> int:
    """The value of today's bar (UTC) in the chart of ``key``; 0 when the day has no bar."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    bar = page.locator(f'figure[data-key="{key}"] rect[data-day="{today}"]')
    return int(float(bar.get_attribute("data-value") or 0)) if bar.count() else 0


def test_the_statistics_chart_counts_the_calls_made(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.console_url}/statistiques")
    before = {key: _today_s_bar(page, key) for key in ("toutes", "cnaf.quotient_familial")}
    for _ in range(3):
        _call(stack, _CITIZEN)
    deadline = time.monotonic() + 30
    while _today_s_bar(page, "cnaf.quotient_familial") < before["cnaf.quotient_familial"] + 3:
        assert time.monotonic() < deadline, "the usage counts did not land"
        time.sleep(0.5)
        page.reload()
    # The three successful calls, and nothing else, in both charts.
    assert _today_s_bar(page, "cnaf.quotient_familial") == before["cnaf.quotient_familial"] + 3
    assert _today_s_bar(page, "toutes") == before["toutes"] + 3
    expect(page.locator('figure[data-key="cnaf.quotient_familial"] h3')).to_have_text(
        "Quotient familial CAF & MSA"
    )
    assert accessibility_violations(page) == []
    screenshot(page, "statistiques")


def test_the_status_page_charts_each_ping_s_availability(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.console_url}/statut")
    charts = page.locator("#disponibilites figure")
    expect(charts).to_have_count(len(PINGS))
    # The gateway samples every ping from its start: today has a bar for those it has learnt about.
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert page.locator(f'#disponibilites rect[data-day="{today}"]').count() >= 1
    for bar in page.locator(f'#disponibilites rect[data-day="{today}"]').all():
        assert 0 <= float(bar.get_attribute("data-value") or -1) <= 100
    expect(page.locator("#incidents")).to_be_visible()
    assert accessibility_violations(page) == []
    page.locator("#disponibilites").evaluate("element => element.scrollIntoView()")
    screenshot(page, "statut-disponibilites")
