"""Facets, permalinks, exports and "my library" on the page, in headless Chromium with every
request to anywhere but this machine blocked: marking results, the examples tray, "find more like
these", saving and combining facets, the permalink and export links, and the library kept in the
browser and exported; every state checked by axe-core and at phone width."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from illustra.api import RunningServer, create_app, serve_in_thread
from illustra.encoders import register_encoder
from illustra.facets import FacetStore

from .browserkit import PHONE, assert_accessible, assert_no_sideways_scroll, shot
from .facetkit import build_facet_collection
from .fakes import FakeEncoder

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def coll_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_encoder("fake", FakeEncoder)
    return build_facet_collection(tmp_path_factory.mktemp("browser_facets") / "coll").root


@pytest.fixture(scope="module")
def server(coll_root: Path) -> Iterator[RunningServer]:
    running = serve_in_thread(create_app(coll_root, title="Colours"))
    yield running
    running.stop()


def card(page: Any, item_id: str) -> Any:
    return page.locator(f'[data-marks][data-id="{item_id}"]')


def result_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("[data-results] [data-marks]", "els => els.map(e => e.dataset.id)")


def test_mark_examples_find_more_save_and_combine_facets(page, server, coll_root, offline):
    for f in FacetStore(coll_root).list():
        FacetStore(coll_root).delete(f.name)
    url = server.url
    page.goto(url + "/search?q=red&mode=visual&k=12")
    assert page.locator("[data-tray]").is_hidden()  # nothing marked yet
    ids = result_ids(page)
    reds = [i for i in ids if i.startswith("red/")]
    card(page, reds[0]).locator('[data-mark="positive"]').click()
    card(page, reds[1]).locator('[data-mark="positive"]').click()
    other = next(i for i in ids if not i.startswith("red/"))
    card(page, other).locator('[data-mark="negative"]').click()
    assert card(page, reds[0]).locator('[data-mark="positive"]').get_attribute("aria-pressed") == "true"
    tray = page.locator("[data-tray]")
    assert tray.is_visible()
    assert tray.locator('[data-tray-list="positive"] li').count() == 2
    assert tray.locator('[data-tray-list="negative"] li').count() == 1
    assert "Marked as not wanted" in page.locator("[data-tray-status]").inner_text()
    assert_accessible(page, "results with marked examples and the tray")
    shot(page, "facets-tray")

    # The marks survive a reload (kept in the browser), and a counter-example can change sides.
    page.reload()
    assert page.locator('[data-tray-list="positive"] li').count() == 2
    card(page, other).locator('[data-mark="positive"]').click()
    card(page, other).locator('[data-mark="negative"]').click()
    assert page.locator('[data-tray-list="negative"] li').count() == 1

    page.get_by_role("link", name="Find more like these").click()
    page.wait_for_url(re.compile(r"ex="))
    assert "Pictures like your marked examples" in page.locator(".query-banner").inner_text()
    found = result_ids(page)
    assert found and reds[0] not in found and reds[1] not in found  # the examples are left out
    assert all(i.startswith("red/") for i in found[:4])
    assert_accessible(page, "find more like these")

    page.fill("#facet-name", "reds")
    page.get_by_role("button", name="Save as facet").click()
    page.wait_for_url(re.compile(r"facet=reds"))
    assert "Ranked by the facet" in page.locator(".query-banner").inner_text()
    assert all(i.startswith("red/") for i in result_ids(page)[:6])
    assert [f.name for f in FacetStore(coll_root).list()] == ["reds"]
    # A name that exists: one message, nothing saved.
    page.fill("#facet-name", "REDS")
    page.get_by_role("button", name="Save as facet").click()
    expect(page.locator("[data-tray-status]")).to_contain_text("exists already")
    assert [f.name for f in FacetStore(coll_root).list()] == ["reds"]

    # A second facet, then both combined from the saved facets' form.
    page.get_by_role("button", name="Clear examples").click()
    page.goto(url + "/search?q=yellow&mode=visual&k=12")
    yellows = [i for i in result_ids(page) if i.startswith("yellow/")]
    card(page, yellows[0]).locator('[data-mark="positive"]').click()
    page.fill("#facet-name", "warm")
    page.get_by_role("button", name="Save as facet").click()
    page.wait_for_url(re.compile(r"facet=warm"))
    saved = page.locator(".saved-facets")
    saved.get_by_label("reds").check()
    saved.get_by_label("warm").check()
    saved.get_by_role("button", name="Rank by the chosen facets").click()
    page.wait_for_url(re.compile(r"facet=reds.*facet=warm|facet=reds%2Cwarm"))
    assert "reds × warm" in page.locator(".query-banner").inner_text()
    assert_accessible(page, "two facets combined")
    shot(page, "facets-combined")

    # The permalink opens the same results; the CSV export holds them.
    shown = result_ids(page)
    permalink = page.locator("[data-permalink]").get_attribute("href")
    assert permalink and "fdef=" in permalink and "built=" in permalink and "model=fake" in permalink
    page.goto(url + permalink)
    assert result_ids(page) == shown
    csv_href = page.get_by_role("link", name="CSV").get_attribute("href")
    got = page.request.get(url + csv_href)
    assert got.ok
    rows = list(csv.DictReader(io.StringIO(got.text())))
    assert [r["id"] for r in rows[: len(shown)]] == shown
    iiif = page.request.get(url + page.get_by_role("link", name="IIIF manifest").get_attribute("href"))
    assert json.loads(iiif.text())["type"] == "Manifest"
    page.set_viewport_size(PHONE)
    assert_no_sideways_scroll(page, "facet results with the tray")


def test_my_library_is_kept_in_the_browser_and_exported(page, server, offline):
    page.goto(server.url + "/library")
    assert "Your library is empty" in page.locator("[data-library-empty]").inner_text()
    assert_accessible(page, "an empty library")
    page.goto(server.url + "/search?q=green&mode=visual&k=6")
    ids = result_ids(page)
    for item_id in ids[:3]:
        card(page, item_id).locator("[data-keep]").click()
    card(page, ids[2]).locator("[data-keep]").click()  # taken out again
    assert card(page, ids[0]).locator("[data-keep]").get_attribute("aria-pressed") == "true"
    page.get_by_role("link", name="My library").click()
    page.wait_for_selector("[data-library-shown]")
    kept = page.eval_on_selector_all("[data-library-item]", "els => els.map(e => e.dataset.libraryItem)")
    assert kept == ids[:2]
    assert_accessible(page, "my library")
    shot(page, "my-library")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8"))))
    assert [r["id"] for r in rows] == ids[:2] and rows[0]["permalink"].endswith("/items/" + ids[0])
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export IIIF manifest").click()
    manifest = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert len(manifest["items"]) == 2
    page.locator(f'[data-library-remove="{ids[0]}"]').click()
    page.reload()  # a reload re-sends the stored list: the removed item is gone
    page.goto(server.url + "/library")
    page.wait_for_selector("[data-library-shown]")
    assert page.eval_on_selector_all("[data-library-item]", "els => els.map(e => e.dataset.libraryItem)") == ids[1:2]
    page.set_viewport_size(PHONE)
    assert_no_sideways_scroll(page, "my library")
