"""The web page in headless Chromium, every state checked by axe-core (WCAG 2.1 AA) and at phone
width: search modes, filters, validation errors, the undated-items notice, result reasons, the item,
About and error pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from illustra.api import RunningServer, create_app, serve_in_thread
from illustra.collection import Collection
from illustra.encoders import register_encoder
from illustra.eval import taxonomy as tx

from .browserkit import PHONE, assert_accessible, assert_no_sideways_scroll, shot
from .fakes import FakeEncoder
from .pagekit import build_page_collection

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def coll_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_encoder("fake", FakeEncoder)
    root = tmp_path_factory.mktemp("page") / "coll"
    build_page_collection(root)
    # An in-domain evaluation, so the About page carries its figure and table.
    labels = {"egypt/1": "yellow", "egypt/2": "yellow", "scot/1": "green", "scot/2": "green",
              "cat/1": "red", "cat/2": "red", "scot/3": "blue", "pub/1": "blue"}
    coll = Collection(root)
    tx.save_result(coll, tx.evaluate_taxonomy(coll, labels, model="fake"))
    return root


@pytest.fixture(scope="module")
def server(coll_root: Path) -> Iterator[RunningServer]:
    running = serve_in_thread(create_app(coll_root, title="Ships and shores"))
    yield running
    running.stop()


def open_filters(page) -> None:
    if page.locator("details.filters[open]").count() == 0:
        page.locator("details.filters summary").click()


def test_every_page_state_is_accessible(page, server):
    url = server.url
    page.goto(url + "/")
    assert_accessible(page, "the home page")
    for mode in ("visual", "text", "hybrid"):
        page.goto(f"{url}/search?q=a+ship+at+sea&mode={mode}")
        assert page.locator("[data-results] > li").count() > 0
        assert_accessible(page, f"results in {mode} mode")
    open_filters(page)
    assert_accessible(page, "results with the filter panel open")
    page.locator("[data-results] details.why summary").first.click()
    page.locator("[data-results] details.report summary").first.click()
    assert_accessible(page, "results with a card's why and report panels open")
    page.goto(url + "/search?q=ship&year_from=1700")
    assert page.locator("[data-undated]").count() == 1
    assert_accessible(page, "the undated-items notice")
    page.goto(url + "/search?q=ship&year_from=2006&year_to=2003")
    assert_accessible(page, "a validation error")
    page.goto(url + "/search?q=red&year_from=2400")
    assert "No results" in page.locator(".empty").inner_text()
    assert_accessible(page, "empty results")
    page.goto(url + "/search?like=cat/1")
    assert_accessible(page, "more like this")
    page.goto(url + "/items/egypt/2")
    assert_accessible(page, "an item page")
    page.goto(url + "/about")
    page.wait_for_function("document.querySelector('img.eval-figure').naturalWidth > 0")
    assert_accessible(page, "the About page")
    page.goto(url + "/static/nope.css")
    assert_accessible(page, "a page that is not found under /static")


def test_error_page_under_static_is_styled_and_its_links_work(page, server):
    answer = page.goto(server.url + "/static/nope.css")
    assert answer is not None and answer.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    # The stylesheet loaded: the header has its dark background.
    background = page.evaluate("getComputedStyle(document.querySelector('.site-header')).backgroundColor")
    assert background == "rgb(31, 29, 26)"
    page.get_by_role("link", name="About", exact=True).click()
    page.wait_for_url(re.compile(r"/about$"))
    assert page.locator("h1").inner_text() == "About this collection"


@pytest.mark.parametrize(
    "path",
    ["/", "/search?q=a+ship+at+sea", "/search?q=ship&year_from=1700", "/search?q=ship&year_from=abc",
     "/items/egypt/2", "/items/egypt/3", "/about", "/static/nope.css"],
)
def test_no_page_scrolls_sideways_on_a_phone(page, server, path):
    page.set_viewport_size(PHONE)
    page.goto(server.url + path)
    if path == "/about":
        page.wait_for_function("document.querySelector('img.eval-figure').naturalWidth > 0")
    if path.startswith("/search"):
        open_filters(page)
    assert_no_sideways_scroll(page, path)


def test_validation_error_keeps_the_search_and_explains_beside_the_field(page, server):
    page.goto(server.url + "/search?q=ship")
    open_filters(page)
    page.fill("#year_from", "2006")
    page.fill("#year_to", "2003")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"year_to=2003"))
    assert page.input_value("#q") == "ship"
    assert page.input_value("#year_from") == "2006" and page.input_value("#year_to") == "2003"
    assert page.locator("details.filters").get_attribute("open") is not None
    error = page.locator("#year_to-error")
    assert error.is_visible()
    assert "The first year (2006) is after the last year (2003)" in error.inner_text()
    assert "year_to" not in page.locator("body").inner_text()
    shot(page, "validation-error")
    # Fixing the field and searching again works.
    page.fill("#year_to", "2010")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"year_to=2010"))
    assert page.locator("#year_to-error").count() == 0


def test_undated_items_can_be_included_and_left_out_again(page, server):
    page.goto(server.url + "/search?q=ship&year_from=1700")
    note = page.locator("[data-undated]")
    assert "3 items with no known date were left out" in note.inner_text()
    shot(page, "undated-left-out")
    note.get_by_role("link").click()
    page.wait_for_url(re.compile(r"include_undated=1"))
    ids = page.eval_on_selector_all("[data-results] .card-title a", "els => els.map(e => e.getAttribute('href'))")
    assert any(h.startswith("/items/undated/") for h in ids)
    assert "are included" in page.locator("[data-undated]").inner_text()
    assert page.is_checked("#include_undated")
    assert_accessible(page, "undated items included")
    page.locator("[data-undated]").get_by_role("link").click()
    page.wait_for_url(re.compile(r"year_from=1700$"))
    # The checkbox in the filter panel does the same.
    open_filters(page)
    page.check("#include_undated")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"include_undated=1"))
    assert "are included" in page.locator("[data-undated]").inner_text()


def test_mode_control_offers_each_mode_once(page, server):
    page.goto(server.url + "/")
    labels = page.locator("fieldset.modes label").all_inner_texts()
    assert [x.strip() for x in labels] == ["Pictures", "Catalogue text", "Both"]
    assert page.is_checked("input[name=mode][value=hybrid]")
    page.get_by_label("Catalogue text").check()
    page.fill("#q", "pyramids")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"mode=text"))
    assert page.is_checked("input[name=mode][value=text]")


def test_result_reason_in_words_and_why_numbers_by_keyboard(page, server):
    page.goto(server.url + "/search?q=ship&year_from=1700")
    first = page.locator("[data-results] > li").first
    assert first.locator(".reason").inner_text() == (
        "Matched the picture; the title mentions ship and the keywords include ship"
    )
    numbers = first.locator("details.why .why-numbers")
    assert not numbers.is_visible()
    first.locator("details.why summary").focus()
    page.keyboard.press("Enter")
    assert numbers.is_visible() and "fused #1" in numbers.inner_text()
    shot(page, "result-why")
    page.keyboard.press("Enter")
    assert not numbers.is_visible()


def test_phone_layout_of_results_and_about(page, server):
    page.set_viewport_size(PHONE)
    page.goto(server.url + "/search?q=ship&year_from=1700")
    assert_accessible(page, "results on a phone")
    shot(page, "phone-results", full=False)
    page.goto(server.url + "/about")
    page.wait_for_function("document.querySelector('img.eval-figure').naturalWidth > 0")
    width = page.evaluate("document.querySelector('img.eval-figure').getBoundingClientRect().width")
    assert width <= PHONE["width"]
    shot(page, "phone-about")
