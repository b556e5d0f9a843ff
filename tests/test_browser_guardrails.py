"""Guardrails in real headless Chromium against a real uvicorn server on 127.0.0.1: notices and
refusals on the page, "Report this result", hidden items, and the About page's cards."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from illustra.api import RunningServer, create_app, serve_in_thread
from illustra.collection import Collection
from illustra.encoders import register_encoder
from illustra.eval import taxonomy as tx
from illustra.guardrails import terms as gterms
from illustra.guardrails.feedback import FeedbackStore
from illustra.index import build_index

from .browserkit import assert_accessible, shot
from .fakes import FakeEncoder, solid
from .searchkit import build_colour_collection

pytestmark = pytest.mark.browser



@pytest.fixture(scope="module")
def coll_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_encoder("fake", FakeEncoder)
    root = tmp_path_factory.mktemp("guard") / "coll"
    build_index(build_colour_collection(root), "fake")
    return root


@pytest.fixture(scope="module")
def server(coll_root: Path) -> Iterator[RunningServer]:
    running = serve_in_thread(create_app(coll_root, title="Colour plates"))
    yield running
    running.stop()








def face_png() -> bytes:
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()


def test_content_note_block_and_language_notice(page, server):
    page.goto(server.url + "/")
    page.keyboard.type("savages in red")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=savages"))
    notes = page.locator(".notices").inner_text()
    assert "Content note: 'savage' has long been used to dehumanise people" in notes
    assert page.locator("[data-results] > li").count() > 0  # a note, not a refusal
    assert_accessible(page, "a content note")
    shot(page, "guardrails-content-note")

    slur = str(gterms.shipped()["terms"]["slur"][0])
    page.goto(server.url + "/search?q=" + slur)
    alert = page.locator(".alert-refused")
    assert "The server refused this search." in alert.inner_text()
    assert "contains a term this collection blocks" in alert.inner_text()
    assert page.locator("[data-results] > li").count() == 0
    assert_accessible(page, "a blocked query")

    page.goto(server.url + "/search?q=le+chat+rouge")
    assert "evaluated in English" in page.locator(".notices").inner_text()
    assert_accessible(page, "the language notice")
    shot(page, "guardrails-language-notice")


def test_face_upload_is_refused_with_an_explanation(page, server):
    page.goto(server.url + "/")
    page.set_input_files("#image", files=[{"name": "me.jpg", "mimeType": "image/jpeg", "buffer": face_png()}])
    page.wait_for_url(re.compile(r"/search/image$"))
    alert = page.locator(".alert-refused").inner_text()
    assert "a face dominates" in alert and "out of scope" in alert
    assert page.locator("[data-results] > li").count() == 0
    assert_accessible(page, "a refused upload")
    shot(page, "guardrails-face-refused")
    # A picture of something else is searched as usual.
    buf = io.BytesIO()
    solid("green", (120, 90)).save(buf, format="PNG")
    page.goto(server.url + "/")
    page.set_input_files(
        "#image", files=[{"name": "g.png", "mimeType": "image/png", "buffer": buf.getvalue()}]
    )
    page.wait_for_url(re.compile(r"/search/image$"))
    assert page.locator("[data-results] > li").count() > 0


def test_report_a_result_and_the_owner_hides_it(page, server, coll_root):
    page.goto(server.url + "/search?q=something+blue")
    first = page.locator("[data-results] > li").first
    item_href = first.locator(".card-title a").get_attribute("href")
    item_id = item_href.removeprefix("/items/")
    first.get_by_text("Report this result").click()
    first.get_by_label("Why?").select_option("offensive or harmful")
    first.get_by_label("Details").fill("a caption I object to")
    assert_accessible(page, "the report form")
    shot(page, "guardrails-report-form")
    first.get_by_role("button", name="Send report").click()
    page.wait_for_url(re.compile(r"/items/.+/report$"))
    assert "your report was recorded" in page.locator("h1").inner_text()
    assert_accessible(page, "report sent")
    shot(page, "guardrails-report-sent")
    page.get_by_role("link", name="Back to the results").click()
    page.wait_for_url(re.compile(r"/search\?q=something\+blue$"))

    (report,) = FeedbackStore(coll_root).list()
    assert report["item_id"] == item_id and report["query"] == "something blue"
    assert report["reason"] == "offensive or harmful: a caption I object to"

    FeedbackStore(coll_root).hide(item_id)
    page.reload()
    hrefs = page.eval_on_selector_all(
        "[data-results] .card-title a", "els => els.map(e => e.getAttribute('href'))"
    )
    assert item_href not in hrefs and len(hrefs) > 0
    FeedbackStore(coll_root).unhide(item_id)


def test_about_page_states_missing_evaluation_then_shows_it(page, server, coll_root):
    page.goto(server.url + "/about")
    statement = page.locator("[data-no-evaluation]").inner_text()
    assert statement.startswith("No in-domain evaluation has been run for this model on this collection.")
    assert "Surveillance and facial recognition, always." in page.locator("[data-model-card]").inner_text()
    assert_accessible(page, "the About page without an evaluation")
    shot(page, "guardrails-about-no-evaluation")

    coll = Collection(coll_root)
    labels = {f"{c}/{j:02d}": c for c in ("red", "green", "blue", "yellow") for j in range(6)}
    result = tx.evaluate_taxonomy(coll, labels, model="fake")
    tx.save_result(coll, result)
    page.reload()
    assert page.locator("[data-no-evaluation]").count() == 0
    text = page.locator("[data-evaluation]").inner_text()
    assert result["measured"] in text and "accuracy 100.0%" in text
    page.wait_for_function("document.querySelector('img.eval-figure').naturalWidth > 0")
    assert page.locator(".eval-table tbody tr").count() == 4
    assert_accessible(page, "the About page with an evaluation")
    shot(page, "guardrails-about-evaluation")
