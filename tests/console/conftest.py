"""The console's browser tests: a `make run` stack of their own and Debian's Chromium.

The stack is `python -m devstack`, as `make run` starts it, in a run directory of the test's
(its own Redis, PostgreSQL, providers, gateway, admin API and console), read from its banner.
Chromium is the machine's (`make test` installs Debian's package when missing): Playwright
never downloads a browser. axe-core, from the console's locked npm packages, is injected into
every page before its own scripts run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from console.settings import ASSETS_DIR
from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
AXE = ASSETS_DIR / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / os.environ.get("CONSOLE_SCREENSHOTS", ".run/console-screenshots")
"""Where the browser tests write each page's screenshot. `make screenshots` runs them with
``CONSOLE_SCREENSHOTS=docs/console`` (the ones the README links); `make test` keeps its own in
``.run/``, so that a run leaves the tree as it found it (the pages show the time of the run)."""
_BANNER_END = "Ctrl-C stops everything."
_START_SECONDS = 240.0


@dataclass(frozen=True)
class Stack:
    """A running `make run` stack."""

    console_url: str
    rest_url: str
    admin_rest_url: str
    admin_secret: str
    token: str
    """The demo token the banner exports (every scope, one day)."""
    run_dir: Path


def _banner_url(banner: str, name: str) -> str:
    match = re.search(rf"^{re.escape(name)}\s+(http://127\.0\.0\.1:\d+)", banner, re.MULTILINE)
    assert match is not None, banner
    return match.group(1)


def _banner_token(banner: str) -> str:
    match = re.search(r"^\s*export TOKEN=(\S+)$", banner, re.MULTILINE)
    assert match is not None, banner
    return match.group(1)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`python -m devstack` in a run directory of its own, shared by every browser test (one start)."""
    run_dir = tmp_path_factory.mktemp("console-stack")
    env = {
        **os.environ,
        "DEVSTACK_RUN_DIR": str(run_dir),
        "DEVSTACK_ANY_PORTS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    env.pop("JOURNAL_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + _START_SECONDS
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if _BANNER_END in line or time.monotonic() > deadline:
                break
        banner = "".join(lines)
        assert _BANNER_END in banner, banner
        yield Stack(
            console_url=_banner_url(banner, "console"),
            rest_url=_banner_url(banner, "gateway REST"),
            admin_rest_url=_banner_url(banner, "admin API REST"),
            admin_secret=(run_dir / "admin-secret").read_text().strip(),
            token=_banner_token(banner),
            run_dir=run_dir,
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the browser tests: the machine's, without sandbox nor network extras."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page of a fresh context (no cookie), with axe-core loaded before each document's scripts."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    context.add_init_script(path=str(AXE))
    opened = context.new_page()
    yield opened
    context.close()


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page's WCAG 2.1 A and AA rules."""
    result: dict[str, Any] = page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:120] for n in v["nodes"][:3]]}
        for v in result["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


def screenshot(page: Page, name: str) -> None:
    """The page's screenshot as <name>.png in `SCREENSHOTS`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
