"""Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by Playwright (never a
downloaded browser), one browser per test module, a fresh context per test, screenshots saved
as test artefacts, and the checks every page state must pass: axe-core (WCAG 2.1 AA, npm's
``axe-core``, installed by scripts/setup.sh) and no sideways scrolling on a phone."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
# Every WCAG 2.0 and 2.1 rule at levels A and AA, plus axe's best practices; any impact fails.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("chromium is not installed: run bash scripts/setup.sh", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.set_default_timeout(10_000)
    yield pg
    context.close()
    # No script errors or content-security-policy violations on any page visited
    # (4xx answers, such as a refusal's 403, are deliberate).
    assert [p for p in problems if "status of 4" not in p] == []


def shot(page: Any, name: str, full: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def assert_accessible(page: Any, state: str) -> None:
    """Fail on any axe-core violation in the page as it stands (``state`` names it in the message).

    The script is evaluated through the browser's debugging protocol, so the page's strict content
    security policy (no inline script) still holds for everything else.
    """
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run scripts/setup.sh (npm ci) to install axe-core")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
             .then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' + n.failureSummary)})))""",
        AXE_TAGS,
    )
    assert result == [], f"accessibility problems on {state}:\n" + json.dumps(result, indent=1)[:6000]


def assert_no_sideways_scroll(page: Any, state: str) -> None:
    """The page is no wider than its viewport (call with a phone-sized viewport)."""
    width = page.evaluate("document.scrollingElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    if width > viewport:
        wide = page.evaluate(
            """vw => [...document.querySelectorAll('body *')]
                 .filter(e => e.getBoundingClientRect().right > vw + 0.5)
                 .slice(0, 5).map(e => e.tagName.toLowerCase() + '.' + e.className + ' ' +
                   Math.round(e.getBoundingClientRect().right))""",
            viewport,
        )
        pytest.fail(f"{state} scrolls sideways at {viewport} px: {width} px wide; too wide: {wide}")


def block_remote(context: Any, local_hosts: set[str] = LOCAL_HOSTS) -> list[str]:
    """Refuse every request of a browser context that leaves this machine; the list records them."""
    blocked: list[str] = []

    def guard(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in local_hosts:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    return blocked


@pytest.fixture
def offline(page: Any) -> Iterator[list[str]]:
    """Every request leaving this machine is refused and recorded (the test asserts none)."""
    blocked = block_remote(page.context)
    yield blocked
    assert blocked == []
