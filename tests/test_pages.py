"""The server-rendered page's HTML (no browser): error pages under any path, validation errors
kept beside their fields, the mode control, the undated-items notice and result reasons in words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from starlette.testclient import TestClient

from illustra.api import create_app
from illustra.encoders import register_encoder

from .fakes import FakeEncoder
from .pagekit import build_page_collection
from .searchkit import build_colour_collection


@pytest.fixture(scope="module")
def coll_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_encoder("fake", FakeEncoder)
    root = tmp_path_factory.mktemp("pages") / "coll"
    build_page_collection(root)
    return root


@pytest.fixture(scope="module")
def client(coll_dir: Path) -> Iterator[TestClient]:
    register_encoder("fake", FakeEncoder)
    with TestClient(create_app(coll_dir, title="Ships and shores"), raise_server_exceptions=False) as c:
        yield c


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def visible_text(html: str) -> str:
    doc = soup(html)
    for tag in doc(["script", "style", "head"]):
        tag.decompose()
    return " ".join(doc.get_text(" ").split())


def words(tag) -> str:
    return " ".join(tag.get_text(" ").split())


def query_of(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query)


# -- 1. error pages link from the app's root, whatever path failed ----------------------------------
@pytest.mark.parametrize("path", ["/static/nope.css", "/static/deep/er/nope.js", "/no/such/page"])
def test_error_page_links_are_root_relative(client, path):
    r = client.get(path)
    assert r.status_code == 404 and "Not found" in r.text
    doc = soup(r.text)
    assert [link["href"] for link in doc.select("link[rel=stylesheet]")] == ["/static/style.css"]
    assert [s["src"] for s in doc.select("script[src]")] == ["/static/app.js"]
    nav = [a["href"] for a in doc.select("header a")]
    assert nav == ["/", "/", "/library", "/map", "/about", "/docs"]
    assert not [a["href"] for a in doc.select("a[href]") if a["href"].startswith("/static/")]


def test_error_page_links_under_a_mount_point(coll_dir):
    with TestClient(create_app(coll_dir), root_path="/pictures", raise_server_exceptions=False) as c:
        r = c.get("/static/nope.css")
        assert r.status_code == 404
        doc = soup(r.text)
        assert doc.select_one("link[rel=stylesheet]")["href"] == "/pictures/static/style.css"
        assert doc.select_one("nav a[href$='/about']")["href"] == "/pictures/about"


# -- 3. a validation error keeps what the reader typed, beside the field ---------------------------
def test_validation_error_keeps_the_search_and_marks_the_field(client):
    r = client.get(
        "/search",
        params={"q": "ship", "year_from": "2006", "year_to": "2003", "place": "London", "mode": "text",
                "title_contains": "storm", "include_undated": "1"},
    )
    assert r.status_code == 422
    doc = soup(r.text)
    assert doc.select_one("#q")["value"] == "ship"
    assert doc.select_one("#year_from")["value"] == "2006"
    assert doc.select_one("#year_to")["value"] == "2003"
    assert doc.select_one("#title_contains")["value"] == "storm"
    assert doc.select_one("#f-place option[selected]")["value"] == "London"
    assert doc.select_one("input[name=mode][checked]")["value"] == "text"
    assert doc.select_one("#include_undated").has_attr("checked")
    assert doc.select_one("details.filters").has_attr("open")
    # The message sits beside the field it is about, tied to it for screen readers.
    field = doc.select_one("#year_to")
    assert field["aria-invalid"] == "true"
    described = doc.select_one("#" + field["aria-describedby"].split()[0])
    assert "The first year (2006) is after the last year (2003)" in described.get_text()
    text = visible_text(r.text)
    for name in ("year_from", "year_to", "parameter"):
        assert name not in text


def test_validation_error_for_a_word_in_a_year(client):
    r = client.get("/search", params={"q": "ship", "year_from": "abc"})
    assert r.status_code == 422
    doc = soup(r.text)
    assert doc.select_one("#q")["value"] == "ship"
    field = doc.select_one("#year_from")
    assert field["value"] == "abc" and field["aria-invalid"] == "true"
    described = doc.select_one("#" + field["aria-describedby"].split()[0])
    assert "The first year must be a year" in described.get_text() and "'abc'" in described.get_text()
    assert doc.select_one("details.filters").has_attr("open")
    assert "year_from" not in visible_text(r.text)


def test_validation_error_on_a_hidden_parameter_is_shown_in_words(client):
    r = client.get("/search", params={"q": "ship", "k": "lots"})
    assert r.status_code == 422
    assert soup(r.text).select_one("#q")["value"] == "ship"
    text = visible_text(r.text)
    assert "The number of results must be" in text and "(parameter" not in text


# -- 4. each mode offered once ---------------------------------------------------------------------
def mode_choices(html: str) -> list[tuple[str, str, bool]]:
    doc = soup(html)
    return [
        (i["value"], " ".join(i.parent.get_text(" ").split()), i.has_attr("checked"))
        for i in doc.select("input[name=mode]")
    ]


def test_mode_control_offers_each_mode_once_with_the_default_chosen(client):
    assert mode_choices(client.get("/").text) == [
        ("visual", "Pictures", False),
        ("text", "Catalogue text", False),
        ("hybrid", "Both", True),
    ]
    chosen = mode_choices(client.get("/search", params={"q": "ship", "mode": "visual"}).text)
    assert [c[0] for c in chosen if c[2]] == ["visual"]


def test_mode_control_is_left_out_when_one_mode_is_possible(tmp_path):
    from illustra.index import build_index

    build_index(build_colour_collection(tmp_path / "c"), "fake")
    with TestClient(create_app(tmp_path / "c")) as c:
        html = c.get("/").text
        assert mode_choices(html) == [] and "Default" not in visible_text(html)


# -- 5. undated items left out by a year filter ------------------------------------------------------
def test_year_filter_says_how_many_undated_items_it_left_out(client):
    r = client.get("/search", params={"q": "ship", "year_from": "1700", "place": "", "k": "5"})
    doc = soup(r.text)
    note = doc.select_one("[data-undated]")
    assert note is not None and "3 items with no known date were left out" in words(note)
    include = note.select_one("a")
    assert query_of(include["href"]) == {
        "q": ["ship"], "year_from": ["1700"], "include_undated": ["1"], "k": ["5"]
    }
    with_undated = client.get(include["href"])
    doc = soup(with_undated.text)
    ids = [a["href"] for a in doc.select("[data-results] .card-title a")]
    assert any(h.startswith("/items/undated/") for h in ids)
    note = doc.select_one("[data-undated]")
    assert "Items with no known date are included" in words(note)
    assert query_of(note.select_one("a")["href"]) == {"q": ["ship"], "year_from": ["1700"], "k": ["5"]}
    assert doc.select_one("#include_undated").has_attr("checked")
    # The active filters say so in words too.
    assert "undated items: included" in visible_text(with_undated.text)


def test_no_undated_note_without_a_year_filter(client):
    assert soup(client.get("/search", params={"q": "ship"}).text).select_one("[data-undated]") is None


# -- 6. why a result is here, in words -------------------------------------------------------------
def card_reasons(html: str) -> dict[str, str]:
    """Each card's reason in words, without the "Weak match:" badge (checked on its own)."""
    doc = soup(html)
    for badge in doc.select(".reason [data-weak]"):
        badge.decompose()
    return {
        li.select_one(".card-title a")["href"].removeprefix("/items/"): " ".join(
            li.select_one(".reason").get_text(" ").split()
        )
        for li in doc.select("[data-results] > li")
    }


def test_result_cards_give_a_reason_in_words_and_numbers_on_request(client):
    html = client.get("/search", params={"q": "ship", "year_from": "1700"}).text
    reasons = card_reasons(html)
    assert reasons["dated/ship"] == "Matched the picture; the title mentions ship and the keywords include ship"
    assert reasons["scot/1"] == "Matched the picture"
    doc = soup(html)
    # A card whose catalogue words matched is never a weak match.
    ship = next(li for li in doc.select("[data-results] > li") if li.select_one('a[href="/items/dated/ship"]'))
    assert ship.select_one("[data-weak]") is None
    card = doc.select_one("[data-results] > li")
    assert card.select_one(".reason em").get_text() == "ship"
    why = card.select_one("details.why")
    assert why.select_one("summary").get_text(" ").strip().startswith("Why")
    assert re.search(r"picture \d\.\d{3}", why.get_text(" ")) and "fused #1" in why.get_text(" ")
    assert "fused #" not in card.select_one(".card-body").get_text(" ").split("Why")[0]

    text = card_reasons(client.get("/search", params={"q": "pyramids", "mode": "text"}).text)
    assert text["egypt/2"] == "The title mentions pyramids and the keywords include pyramid"
    visual = card_reasons(client.get("/search", params={"q": "red", "mode": "visual"}).text)
    assert set(visual.values()) == {"Matched the picture"}
    like = card_reasons(client.get("/search", params={"like": "cat/1"}).text)
    assert set(like.values()) == {"Looks like the chosen picture"}


def test_upload_with_a_bad_filter_keeps_the_filters(client):
    from .test_browser import png_bytes

    r = client.post(
        "/search/image",
        files={"image": ("q.png", png_bytes("red"), "image/png")},
        data={"year_from": "abc", "place": "London"},
    )
    assert r.status_code == 422
    doc = soup(r.text)
    assert doc.select_one("#year_from")["value"] == "abc"
    assert doc.select_one("#year_from")["aria-invalid"] == "true"
    assert doc.select_one("#f-place option[selected]")["value"] == "London"
    assert "year_from" not in visible_text(r.text)
