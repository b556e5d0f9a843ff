"""Grouping search results: near-duplicates folded into one result, results from one book folded
into one, the same through the service, the API over HTTP, the page and the command; paging stays
consistent; the cluster and item-duplicates routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from illustra.api import RunningServer, create_app, serve_in_thread
from illustra.cli import main
from illustra.collection import Collection
from illustra.duplicates import build_duplicates
from illustra.encoders import register_encoder
from illustra.search import SearchService
from illustra.search.collapse import GroupingRequest

from .dupkit import BOOKS, PLATES, THRESHOLD, build_reuse_collection, plate_id
from .fakes import FakeEncoder

NO_GROUPS = GroupingRequest(collapse=False, group_books=False)
DEFAULT = GroupingRequest()  # what the front ends ask for unless told otherwise


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_encoder("fake", FakeEncoder)
    root = tmp_path_factory.mktemp("reuse") / "coll"
    build_reuse_collection(root)
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same collection with its near-duplicates found."""
    register_encoder("fake", FakeEncoder)
    root = tmp_path_factory.mktemp("reuse-built") / "coll"
    build_duplicates(build_reuse_collection(root), THRESHOLD)
    return root


@pytest.fixture(scope="module")
def server(built: Path) -> Iterator[RunningServer]:
    register_encoder("fake", FakeEncoder)
    running = serve_in_thread(create_app(built, title="Plates printed again"))
    yield running
    running.stop()


def ids(resp) -> list[str]:
    return [h.id for h in resp.results]


def test_text_matches_are_grouped_by_book(root: Path) -> None:
    svc = SearchService(root)
    plain = svc.search_text("castle", k=20, mode="text", grouping=NO_GROUPS)
    assert len(plain.results) == 2 * PLATES and plain.grouping is None
    assert all(h.same_book is None for h in plain.results)
    grouped = svc.search_text("castle", k=20, mode="text", grouping=DEFAULT)
    assert [h.metadata["book_identifier"] for h in grouped.results] == ["R1", "R2"]
    assert [h.same_book_count for h in grouped.results] == [PLATES - 1, PLATES - 1]
    assert grouped.results[0].id == plain.results[0].id
    assert grouped.grouping == {"duplicates": False, "books": True, "depth": 100, "ranked": 2 * PLATES,
                                "complete": True, "folded": 2 * PLATES - 2}
    folded = grouped.results[0].same_book or []
    assert [h.metadata["book_identifier"] for h in folded] == ["R1"] * (PLATES - 1)
    # Folded results keep their place in the ungrouped ranking.
    plain_rank = {h.id: h.rank for h in plain.results}
    assert all(h.rank == plain_rank[h.id] for h in folded)
    # Pictures are not grouped by book unless asked; hybrid matches are.
    assert svc.search_like("R4/p1", k=5, grouping=DEFAULT).grouping is None
    assert svc.search_like("R4/p1", k=5, grouping=GroupingRequest(group_books=True)).grouping["books"] is True
    assert svc.search_text("river", k=5, mode="hybrid", grouping=DEFAULT).grouping["books"] is True
    # Callers that ask for nothing (evaluation, exports) get the ranking itself.
    assert svc.search_text("castle", k=20, mode="text").grouping is None


def test_near_duplicates_fold_into_their_best_match(built: Path) -> None:
    svc = SearchService(built)
    like = svc.search_like(plate_id("R1", 0), k=5, grouping=DEFAULT)
    assert like.grouping is not None and like.grouping["duplicates"] is True
    first = like.results[0]
    assert first.id == plate_id("R2", 0) and first.score == pytest.approx(1.0)
    assert first.similar_count == 1 and [h.id for h in first.similar or []] == [plate_id("R3", 3)]
    assert plate_id("R3", 3) not in ids(like)
    every = svc.search_like(plate_id("R1", 0), k=5, grouping=GroupingRequest(collapse=False))
    assert ids(every)[:2] == [plate_id("R2", 0), plate_id("R3", 3)] and every.grouping is None
    # Both at once: a near-copy in another book folds as "similar", the rest of a book as "book".
    text = svc.search_text("castle", k=5, mode="text", grouping=DEFAULT)
    top = text.results[0]
    assert top.id == plate_id("R1", 0)
    assert [h.id for h in top.similar or []] == [plate_id("R2", 0)]
    assert {h.id for h in top.same_book or []} == {plate_id("R1", p) for p in range(1, PLATES)}
    assert text.results[1].id == plate_id("R2", 1)  # R2's best plate left once its copy was folded


@pytest.mark.parametrize("grouping", [GroupingRequest(), GroupingRequest(group_books=True)])
def test_pages_of_a_grouped_ranking_agree(built: Path, grouping: GroupingRequest) -> None:
    svc = SearchService(built)
    whole = svc.search_like(plate_id("R4", 2), k=50, grouping=grouping)
    assert not whole.has_more
    paged, offset = [], 0
    while True:
        page = svc.search_like(plate_id("R4", 2), k=2, offset=offset, grouping=grouping)
        paged.extend(page.results)
        assert [h.rank for h in page.results] == list(range(offset + 1, offset + 1 + len(page.results)))
        if not page.has_more:
            break
        offset += 2
    assert [h.id for h in paged] == ids(whole)
    assert [h.similar_count for h in paged] == [h.similar_count for h in whole.results]
    assert len(paged) < len(Collection(built)) - 1  # something was folded


def test_api_groups_and_checks_its_parameters(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        body = c.get("/api/search", params={"q": "castle", "mode": "text"}).json()
        assert body["grouping"]["books"] is True and body["grouping"]["duplicates"] is True
        top = body["results"][0]
        assert top["more_from_book"]["count"] == PLATES - 1 and top["more_from_book"]["book_identifier"] == "R1"
        assert top["similar"]["count"] == 1 and top["similar"]["results"][0]["id"] == plate_id("R2", 0)
        assert top["similar"]["results"][0]["page_url"] == "/items/R2/p0"
        flat = c.get("/api/search", params={"q": "castle", "mode": "text", "collapse": "false",
                                            "group_books": "0"}).json()
        assert flat["grouping"] is None and len(flat["results"]) == 2 * PLATES
        assert "similar" not in flat["results"][0] and "more_from_book" not in flat["results"][0]
        bad = c.get("/api/search", params={"q": "castle", "collapse": "perhaps"})
        assert bad.status_code == 422
        assert bad.json()["error"]["message"] == (
            "collapse near-duplicates must be true or false, got 'perhaps' (parameter collapse)"
        )
        like = c.get(f"/api/items/{plate_id('R1', 0)}/similar", params={"collapse": "true", "k": 3}).json()
        assert like["results"][0]["similar"]["count"] == 1

        dups = c.get(f"/api/items/{plate_id('R1', 0)}/duplicates").json()
        assert dups["total"] == 2 and dups["books"] == 2 and dups["other_books"] == 2
        assert {r["id"] for r in dups["results"]} == {plate_id("R2", 0), plate_id("R3", 3)}
        assert all(r["score"] == pytest.approx(1.0) for r in dups["results"]) and dups["threshold"] == THRESHOLD
        same_book = c.get(f"/api/items/{plate_id('R1', 1)}/duplicates").json()
        assert same_book["total"] == 1 and same_book["other_books"] == 0
        alone = c.get(f"/api/items/{plate_id('R4', 4)}/duplicates").json()
        assert alone["total"] == 0 and alone["cluster"] is None and alone["results"] == []
        missing = c.get("/api/items/nope/duplicates")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "item_not_found"

        clusters = c.get("/api/clusters").json()
        assert clusters["total"] == 2 and clusters["items_in_clusters"] == 5
        assert [x["size"] for x in clusters["clusters"]] == [3, 2]
        assert clusters["clusters"][0]["books"] == 3 and clusters["clusters"][1]["books"] == 1
        item = clusters["clusters"][0]["items"][0]
        assert item["duplicates_url"] == f"/api/items/{item['id']}/duplicates"
        assert c.get("/api/clusters", params={"min_size": 3}).json()["total"] == 1
        paged = c.get("/api/clusters", params={"k": 1, "offset": 1, "members": 1}).json()
        assert paged["has_more"] is False and len(paged["clusters"][0]["items"]) == 1
        assert c.get("/api/clusters", params={"min_size": 1}).status_code == 422
        doc = c.get("/openapi.json").json()
        assert "/api/clusters" in doc["paths"] and "/api/items/{item_id}/duplicates" in doc["paths"]
        names = {p["name"] for p in doc["paths"]["/api/search"]["get"]["parameters"]}
        assert {"collapse", "group_books"} <= names


def test_routes_say_when_nothing_is_built(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    build_reuse_collection(fresh)
    running = serve_in_thread(create_app(fresh))
    try:
        with httpx.Client(base_url=running.url, timeout=30) as c:
            for path in ("/api/clusters", f"/api/items/{plate_id('R1', 0)}/duplicates"):
                r = c.get(path)
                assert r.status_code == 409 and r.json() == {"error": {
                    "code": "not_built",
                    "message": "near-duplicates have not been found for this collection yet; run 'illustra duplicates'",
                }}
            # Searching still works, with nothing to collapse; the item page says nothing of reuse.
            body = c.get(f"/api/items/{plate_id('R1', 0)}/similar").json()
            assert body["grouping"] is None and len(body["results"]) == 10
            assert "also appears" not in c.get(f"/items/{plate_id('R1', 0)}").text
            # A build while the server runs is picked up by the next request.
            build_duplicates(Collection(fresh), THRESHOLD)
            assert c.get("/api/clusters").json()["total"] == 2
    finally:
        running.stop()


def test_item_page_and_results_page_show_reuse(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        html = c.get(f"/items/{plate_id('R1', 0)}").text
        assert "This picture also appears in 2 other items / 2 books" in html
        assert 'href="/items/R2/p0"' in html and 'href="/items/R3/p3"' in html
        page = c.get("/search", params={"q": "castle", "mode": "text"}).text
        assert "+1 similar" in page and f"+{PLATES - 1} more from this book" in page
        assert "Show every copy" in page and "Show each result" in page
        assert "collapse=0" in page and "group_books=0" in page
        assert "book_identifier=R1" in page  # "every result from this book"
        flat = c.get("/search", params={"q": "castle", "mode": "text", "collapse": "0", "group_books": "0"}).text
        assert "more from this book" not in flat and "Fold near-duplicates" in flat and "Group results by book" in flat


def test_command_collapses_unless_told_not_to(built: Path) -> None:
    def search(*extra: str) -> dict:
        res = CliRunner().invoke(main, ["search", "--collection", str(built), "--like", plate_id("R1", 0),
                                        "-k", "3", "--json", *extra])
        assert res.exit_code == 0, res.stderr
        return json.loads(res.stdout)

    assert search()["results"][0]["similar"]["count"] == 1
    assert [r["id"] for r in search("--no-collapse")["results"]][:2] == [plate_id("R2", 0), plate_id("R3", 3)]
    by_book = search("--group-books")
    assert by_book["grouping"]["books"] is True
    text = CliRunner().invoke(main, ["search", "--collection", str(built), "castle", "--mode", "text"])
    assert "+1 similar, +4 more from this book" in text.stdout
    assert set(BOOKS) >= {r["metadata"]["book_identifier"] for r in by_book["results"]}
