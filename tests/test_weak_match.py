"""Saying when nothing matches: the weak-match level of a collection and model, measured from
nonsense probes with the real ``lite`` encoder, marks results below it in the one JSON shape, and
the API, CLI, card and page (real Chromium against a real server) say so when every result is weak."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from illustra.api import RunningServer, create_app, serve_in_thread
from illustra.cards import card_markdown
from illustra.cli import main
from illustra.collection import Collection
from illustra.images import encode_stored
from illustra.index import build_index
from illustra.search import SearchService, weak
from illustra.search.shape import response_json
from illustra.textindex import build_text_index

from .searchkit import colour_rows, embed_with

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def coll_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A drawing of a cat and one of a dog among plain colour plates, embedded with ``lite``."""
    rows = colour_rows(2)
    for name in ("cat", "dog"):
        im = Image.open(DATA / f"{name}.png").convert("RGB")
        rows.append({"id": f"drawing/{name}", "image": {"bytes": encode_stored(im), "path": None},
                     "title": f"A drawing of a {name}", "year": 1850, "place": "London"})
    root = tmp_path_factory.mktemp("weak") / "coll"
    coll = Collection.create(root, rows, source={"kind": "test"})
    embed_with(coll, "lite")
    build_index(Collection(root), "lite")
    build_text_index(Collection(root), semantic=False, progress=False)
    return root


def test_the_level_is_measured_once_stored_and_remeasured_when_vectors_change(coll_root: Path) -> None:
    coll = Collection(coll_root)
    svc = SearchService(coll, "lite")
    found = svc.weak_match()
    assert found is not None and found["probes"] == weak.N_PROBES
    assert found["probe_best"]["min"] <= found["level"] <= found["probe_best"]["max"]
    assert weak.stored(coll, "lite") == found
    # A second service reads it from the collection rather than measuring again.
    assert SearchService(Collection(coll_root), "lite").weak_match() == found
    # Vectors embedded again: the stored level no longer describes them.
    changed = Collection(coll_root)
    changed.manifest["embeddings"]["lite"]["updated"] = "2000-01-01T00:00:00Z"
    assert weak.stored(changed, "lite") is None


def test_a_query_with_a_picture_is_strong_and_one_without_is_plainly_weak(coll_root: Path) -> None:
    svc = SearchService(coll_root, "lite")
    level = svc.weak_match()["level"]  # type: ignore[index]
    cat = svc.search_text("a cat", k=5, mode="visual")
    assert cat.results[0].id == "drawing/cat" and cat.results[0].score >= level
    assert cat.results[0].weak is False and not cat.nothing_matches
    assert weak.NOTHING_MATCHES not in cat.notices
    assert all(h.weak for h in cat.results[1:])  # the colour plates are weak matches for a cat
    horse = svc.search_text("a man on a horse", k=5, mode="visual")
    assert all(h.weak and h.score < level for h in horse.results)
    assert horse.nothing_matches and weak.NOTHING_MATCHES in horse.notices
    shaped = response_json(horse)
    assert shaped["weak_match"] == {"level": level, "nothing_matches": True}
    assert all(r["weak"] is True for r in shaped["results"])
    # A later page of a strong query is weaker than the first, but something did match.
    later = svc.search_text("a dog", k=3, offset=6, mode="visual")
    assert all(h.weak for h in later.results) and not later.nothing_matches


def test_hybrid_results_whose_words_matched_are_never_weak(coll_root: Path) -> None:
    svc = SearchService(coll_root, "lite")
    resp = svc.search_text("plate horse", k=5, mode="hybrid")
    worded = [h for h in resp.results if h.explain.get("matched_terms")]
    assert worded and all(h.weak is False for h in worded)
    assert not resp.nothing_matches
    # Catalogue-text mode has no picture score to judge.
    text = svc.search_text("plate", k=5, mode="text")
    assert all(h.weak is None for h in text.results) and text.weak_level is None
    assert "weak_match" in response_json(text) and response_json(text)["weak_match"] is None


def test_the_cli_json_and_the_model_card_show_the_level(coll_root: Path) -> None:
    out = CliRunner().invoke(
        main, ["search", "--collection", str(coll_root), "--model", "lite", "--mode", "visual",
               "a man on a horse", "-k", "3", "--json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["weak_match"]["nothing_matches"] is True and weak.NOTHING_MATCHES in data["notices"]
    card = card_markdown(Collection(coll_root), ["lite"])
    level = weak.stored(Collection(coll_root), "lite")["level"]  # type: ignore[index]
    assert "### When nothing matches" in card and f"below {level:.3f}" in card
    assert "nonsense probe queries" in card


def test_the_card_says_when_the_level_is_not_measured_yet(tmp_path: Path) -> None:
    coll = Collection.create(tmp_path / "c", colour_rows(1), source={"kind": "test"})
    embed_with(coll)
    assert "Not measured yet" in card_markdown(Collection(coll.root), ["fake"])


@pytest.fixture(scope="module")
def server(coll_root: Path) -> Iterator[RunningServer]:
    running = serve_in_thread(create_app(coll_root, model="lite", title="Drawings"))
    yield running
    running.stop()


@pytest.mark.browser
def test_the_page_says_nothing_matches_and_marks_weak_cards(page, server) -> None:
    page.goto(server.url + "/search?q=a+man+on+a+horse&mode=visual")
    notices = page.locator("ul.notices").inner_text()
    assert weak.NOTHING_MATCHES in notices
    assert page.locator("li.card").count() > 0
    assert page.locator("li.card [data-weak]").count() == page.locator("li.card").count()
    page.goto(server.url + "/search?q=a+cat&mode=visual")
    assert weak.NOTHING_MATCHES not in (page.locator("#results").inner_text())
    first = page.locator("li.card").first
    assert first.locator("[data-weak]").count() == 0
    page.goto(server.url + "/about")
    assert "When nothing matches" in page.locator("[data-model-card='lite']").inner_text()
