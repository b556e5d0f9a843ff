"""The Map view in headless Chromium with every request to anywhere but this machine blocked:
the points are drawn from the binary chunks, the search is highlighted, a hover names the
picture, zooming in shows thumbnails, a click opens the item; axe-core checks the page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from illustra.api import RunningServer, create_app, serve_in_thread
from illustra.collection import Collection
from illustra.encoders import register_encoder
from illustra.map import build_map

from .browserkit import PHONE, assert_accessible, assert_no_sideways_scroll, shot
from .dupkit import PLATES, build_crowded_collection
from .fakes import FakeEncoder

pytestmark = pytest.mark.browser
PAPER = (247, 244, 238)
ROW = 7  # a castle plate: highlighted, hovered, opened


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    register_encoder("fake", FakeEncoder)
    root = tmp_path_factory.mktemp("map-page") / "coll"
    build_crowded_collection(root)
    build_map(Collection(root))
    running = serve_in_thread(create_app(root, title="Plates"))
    yield running
    running.stop()


def wait_until(page: Any, expression: str, timeout: float = 15.0) -> None:
    """Poll a JavaScript expression until it is true (``page.wait_for_function`` compiles its
    predicate with eval, which the page's content security policy rightly forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def inked_pixels(page: Any) -> int:
    """Canvas pixels that are not the paper colour."""
    return page.evaluate(
        """paper => { const c = document.querySelector('[data-map] canvas');
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
             for (let i = 0; i < d.length; i += 4)
               if (Math.abs(d[i] - paper[0]) + Math.abs(d[i+1] - paper[1]) + Math.abs(d[i+2] - paper[2]) > 30) n++;
             return n; }""",
        list(PAPER),
    )


def test_map_draws_highlights_names_zooms_and_opens(page: Any, server: RunningServer, offline: list[str]) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{server.url}/map?q=castle&mode=text")
    page.wait_for_selector("[data-map][data-loaded='1']")
    assert page.get_attribute("[data-map]", "data-marked") == str(2 * PLATES)
    wait_until(page, "document.querySelector('[data-map]').dataset.painted === '1'")
    assert inked_pixels(page) > 50
    assert "Highlighted: 10 results" in page.inner_text("[data-map-matches]")
    assert any("/api/map/points/0" in u for u in requests)
    shot(page, "map-overview")
    assert_accessible(page, "the map with a search highlighted")

    # Hover a point: its title. Click it: its item.
    at = page.evaluate(f"window.illustraMap.screenOf({ROW})")
    box = page.locator("[data-map] canvas").bounding_box()
    page.mouse.move(box["x"] + at[0], box["y"] + at[1])
    wait_until(page, "document.querySelector('[data-map-tip]').textContent.length > 0")
    title = page.inner_text("[data-map-tip]")
    assert title.startswith(("The castle of Udolpho", "Castles of the Rhine", "A journey", "River scenery"))

    # Zoomed in, pictures appear (the whole map holds too many points for them).
    assert not any("/thumbnail" in u for u in requests)
    assert page.get_attribute("[data-map]", "data-thumbs") == "0"
    for _ in range(4):
        page.click("[data-zoom='in']")
    wait_until(page, "document.querySelector('[data-map]').dataset.thumbs > 0")
    assert any("/thumbnail" in u for u in requests)
    shot(page, "map-zoomed")

    page.click("[data-zoom='reset']")
    page.wait_for_timeout(200)
    at = page.evaluate(f"window.illustraMap.screenOf({ROW})")
    with page.expect_navigation():
        page.mouse.click(box["x"] + at[0], box["y"] + at[1])
    assert "/items/" in page.url
    assert page.locator("h1").inner_text() == title.split(" (")[0]


def test_map_without_a_search_and_on_a_phone(page: Any, server: RunningServer, offline: list[str]) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{server.url}/map")
    page.wait_for_selector("[data-map][data-loaded='1']")
    assert page.get_attribute("[data-map]", "data-marked") is None
    assert inked_pixels(page) > 50
    # Keyboard: the canvas takes focus, arrows move, + zooms.
    page.focus("[data-map] canvas")
    before = page.evaluate("window.illustraMap.view.cx")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("window.illustraMap.view.cx") > before
    page.keyboard.press("+")
    assert_no_sideways_scroll(page, "the map on a phone")
    assert_accessible(page, "the map on a phone")
    page.goto(f"{server.url}/search?q=castle&mode=text")
    page.click("[data-map-link]")
    page.wait_for_selector("[data-map][data-loaded='1']")
    assert page.get_attribute("[data-map]", "data-marked") == str(2 * PLATES)


def test_results_fold_and_expand_in_the_page(page: Any, server: RunningServer, offline: list[str]) -> None:
    page.goto(f"{server.url}/search?q=castle&mode=text")
    book = page.locator("details[data-folded='book']").first
    assert book.locator("summary").inner_text().startswith(f"+{PLATES - 1} more from this book")
    assert not book.locator("img").first.is_visible()
    book.locator("summary").click()
    assert book.locator("img").count() == PLATES - 1 and book.locator("img").first.is_visible()
    assert_accessible(page, "results grouped by book, one group open")
    page.click("text=Show each result")
    assert page.locator("details[data-folded='book']").count() == 0
    assert page.locator("[data-results] > li").count() == 2 * PLATES
