"""One JSON shape for a search response: the API and ``illustra search --json`` agree, and the
undated items a year filter leaves out are counted and can be included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from illustra.api import create_app
from illustra.cli import main
from illustra.collection import Collection
from illustra.encoders import register_encoder
from illustra.images import encode_stored
from illustra.index import build_index
from illustra.search import Filters, SearchService

from .fakes import FakeEncoder, solid
from .searchkit import colour_rows, embed_with

LINK_KEYS = {"item_url", "image_url", "thumbnail_url", "similar_url", "page_url"}


@pytest.fixture(scope="module")
def coll_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Colour plates, a third of them undated."""
    register_encoder("fake", FakeEncoder)
    rows = colour_rows()
    for i, r in enumerate(rows):
        if i % 3 == 0:
            r["year"] = None
    rows.append(
        {
            "id": "undated/red",
            "image": {"bytes": encode_stored(solid("red")), "path": None},
            "image_path": None,
            "title": "An undated red plate",
            "creator": "Anon",
            "year": None,
            "place": "London",
        }
    )
    root = tmp_path_factory.mktemp("shape") / "c"
    embed_with(Collection.create(root, rows, source={"kind": "test"}))
    build_index(Collection(root), "fake")
    return root


def test_cli_json_is_the_api_shape(coll_dir: Path) -> None:
    register_encoder("fake", FakeEncoder)
    cli = CliRunner().invoke(
        main,
        ["search", "--collection", str(coll_dir), "red", "-k", "3", "--offset", "1", "--json",
         "--year-from", "1800", "--where", "place=London"],
    )
    assert cli.exit_code == 0, cli.output
    from_cli = json.loads(cli.stdout)
    with TestClient(create_app(coll_dir), raise_server_exceptions=False) as client:
        api = client.get(
            "/api/search", params={"q": "red", "k": 3, "offset": 1, "year_from": 1800, "place": "London"}
        )
    assert api.status_code == 200, api.text
    from_api = api.json()
    assert set(from_cli) == set(from_api)
    for key in ("query", "k", "offset", "mode", "filters", "has_more", "kind", "model", "undated_excluded"):
        assert from_cli[key] == from_api[key], key
    assert from_cli["query"] == "red" and from_cli["k"] == 3 and from_cli["offset"] == 1
    assert from_cli["filters"] == {"year_from": 1800, "place": "London"}
    assert [r["id"] for r in from_cli["results"]] == [r["id"] for r in from_api["results"]]
    # The API adds its links; otherwise each result is the same.
    for c, a in zip(from_cli["results"], from_api["results"], strict=True):
        assert set(a) - set(c) == LINK_KEYS
        assert {k: a[k] for k in c} == c


def test_a_year_filter_counts_the_undated_items_it_leaves_out(coll_dir: Path) -> None:
    svc = SearchService(coll_dir)
    coll = svc.collection
    years = coll.dataset.data.column("year").to_pylist()
    undated = sum(1 for y in years if y is None)
    assert undated > 0
    plain = svc.search_text("red", k=100)
    assert plain.undated_excluded is None
    ranged = svc.search_text("red", k=100, filters=Filters(year_from=1700, year_to=2000))
    assert ranged.undated_excluded == undated
    assert all(h.metadata["year"] is not None for h in ranged.results)
    kept = svc.search_text("red", k=100, filters=Filters(year_from=1700, year_to=2000, include_undated=True))
    assert kept.undated_excluded is None
    assert sum(1 for h in kept.results if h.metadata["year"] is None) == undated
    assert kept.filters["include_undated"] is True
    # With another filter too, only the undated items that filter keeps are counted.
    london = svc.search_text("red", k=100, filters=Filters(year_from=1700, fields={"place": "London"}))
    places = coll.dataset.data.column("place").to_pylist()
    assert london.undated_excluded == sum(
        1 for y, p in zip(years, places, strict=True) if y is None and p == "London"
    )


def test_the_api_and_cli_offer_undated_items(coll_dir: Path) -> None:
    with TestClient(create_app(coll_dir), raise_server_exceptions=False) as client:
        left_out = client.get("/api/search", params={"q": "red", "year_from": 1700}).json()
        kept = client.get("/api/search", params={"q": "red", "year_from": 1700, "include_undated": "1"}).json()
        bad = client.get("/api/search", params={"q": "red", "year_from": 1700, "include_undated": "perhaps"})
    assert left_out["undated_excluded"] > 0 and kept["undated_excluded"] is None
    assert kept["filters"]["include_undated"] is True
    assert bad.status_code == 422 and "include undated items" in bad.json()["error"]["message"]
    cli = CliRunner().invoke(main, ["search", "--collection", str(coll_dir), "red", "--year-from", "1700"])
    assert cli.exit_code == 0 and "no known date were left out" in cli.stderr and "--include-undated" in cli.stderr
