"""A BL Flickr manifest ingested without --download, in headless Chromium: the result cards show the
Flickr pictures (a local server stands in for Flickr), and a picture the source no longer has is a
placeholder, then the reason in words; every state checked by axe-core and at phone width."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from illustra.api import RunningServer, serve_in_thread
from illustra.collection import Collection

from .browserkit import PHONE, assert_accessible, assert_no_sideways_scroll, shot
from .ingest_helpers import ImageServer, serve
from .test_remote_images import bl_remote_collection, make_app

pytestmark = pytest.mark.browser

QUERY = "/search?q=London&mode=text&k=12"
ALL_LOADED = "() => [...document.querySelectorAll('[data-results] img')].every(i => i.complete && i.naturalWidth > 0)"
SIZES = "[...document.querySelectorAll('[data-results] li.card')].map(c => { const i = c.querySelector('img'); " \
    "return [c.querySelector('.card-title a').getAttribute('href'), i ? i.naturalWidth : 0, i ? i.naturalHeight : 0]; })"


@pytest.fixture(scope="module")
def flickr() -> Iterator[ImageServer]:
    yield from serve(ImageServer())


@pytest.fixture(scope="module")
def bl(tmp_path_factory: pytest.TempPathFactory, flickr: ImageServer) -> Path:
    root = tmp_path_factory.mktemp("bl-remote") / "bl"
    bl_remote_collection(root, flickr)
    return root


@pytest.fixture(scope="module")
def server(bl: Path) -> Iterator[RunningServer]:
    running = serve_in_thread(make_app(bl))
    yield running
    running.stop()


def load_cards(page, url: str) -> list[list]:
    page.goto(url)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # cards load their pictures lazily
    page.wait_for_function(ALL_LOADED)
    return page.evaluate(SIZES)


def test_result_cards_show_the_flickr_pictures_of_a_manifest_ingested_without_download(
    page, server: RunningServer, flickr: ImageServer, bl: Path
) -> None:
    cards = load_cards(page, server.url + QUERY)
    assert len(cards) >= 6
    # Every card shows its fetched picture (60x40), none the 256-px placeholder or "No picture".
    assert [c[1:] for c in cards] == [[60, 40]] * len(cards), cards
    assert page.locator("[data-results] .noimage").count() == 0
    assert sum(n for path, n in flickr.hits.items() if path.startswith("/flickr/")) == len(cards)
    shot(page, "remote-pictures-cards")
    assert_accessible(page, "result cards with remote pictures")

    # The source loses one picture: its card shows the placeholder, then (once the failure is
    # known) the reason in words; the item page says it too.
    coll = Collection(bl)
    item_path = cards[0][0]
    item_id = item_path.rsplit("/items/", 1)[1]
    url = coll.image_url(coll.row_of(item_id))
    assert url is not None
    del flickr.routes[url.removeprefix(flickr.url(""))]
    # Its picture is cached already, so the page goes on showing it ...
    assert load_cards(page, server.url + QUERY)[0][1:] == [60, 40]
    # ... until the cache is cleared (here: a server started afresh with an empty cache).
    for f in (bl / "cache").rglob("*"):
        if f.is_file():
            f.unlink()
    fresh = serve_in_thread(make_app(bl))
    try:
        cards = load_cards(page, fresh.url + QUERY)
        assert cards[0][1:] == [256, 256] and all(c[1:] == [60, 40] for c in cards[1:])
        page.goto(fresh.url + QUERY)
        words = page.locator("[data-results] li.card").first.locator(".noimage")
        assert "Picture could not be fetched: the source does not have the picture (HTTP 404)" in words.inner_text()
        assert_accessible(page, "a card whose remote picture could not be fetched")
        page.set_viewport_size(PHONE)
        assert_no_sideways_scroll(page, "a card whose remote picture could not be fetched")
        page.goto(fresh.url + item_path)
        assert "could not be fetched from its source" in page.locator(".item-media").inner_text()
        assert_accessible(page, "an item page whose remote picture could not be fetched")
        shot(page, "remote-picture-unavailable-item")
    finally:
        fresh.stop()
