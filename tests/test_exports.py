"""Exports of result sets, facets and a saved selection: CSV with exactly the promised columns, and
IIIF Presentation 3 manifests that iiif-prezi3's own model reads back, whose canvases are the
pictures' sizes and whose painting annotations point at images the server really serves. Built
without any network access; limits are one clear message."""

from __future__ import annotations

import csv
import io
import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from starlette.testclient import TestClient

from illustra.api import create_app, serve_in_thread
from illustra.cli import main
from illustra.collection import Collection
from illustra.exports import CSV_COLUMNS
from illustra.facets import FacetDefinition, FacetStore

from .facetkit import build_facet_collection, colour_of


@pytest.fixture(scope="module")
def coll_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from illustra.encoders import register_encoder

    from .fakes import FakeEncoder

    register_encoder("fake", FakeEncoder)
    root = build_facet_collection(tmp_path_factory.mktemp("exports") / "coll").root
    FacetStore(root).create("reds", FacetDefinition.of(["red/00", "red/01"], ["blue/00"]))
    return root


@pytest.fixture(scope="module")
def client(coll_root: Path):
    with TestClient(create_app(coll_root), raise_server_exceptions=False) as c:
        yield c


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_of_a_search_has_exactly_the_promised_columns(client):
    r = client.get("/api/export", params={"q": "red", "mode": "visual", "k": 8, "place": "London", "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    header = next(csv.reader(io.StringIO(r.text)))
    assert header == CSV_COLUMNS == [
        "id", "title", "creator", "date", "place", "publisher", "source URL", "score", "rank", "permalink"
    ]
    got = rows(r.text)
    api = client.get("/api/search", params={"q": "red", "mode": "visual", "k": 8, "place": "London"}).json()
    assert [g["id"] for g in got] == [h["id"] for h in api["results"]]
    assert [int(g["rank"]) for g in got] == list(range(1, 9))
    assert float(got[0]["score"]) == pytest.approx(api["results"][0]["score"], abs=1e-6)
    assert {g["place"] for g in got} == {"London"} and got[0]["title"].startswith("A red plate")
    assert got[0]["date"] == str(api["results"][0]["metadata"]["year"])
    assert {g["permalink"] for g in got} == {"http://testserver" + api["permalink"]}


def test_a_long_export_pages_through_the_same_ranking(client):
    r = client.get("/api/export", params={"q": "red", "mode": "visual", "k": 1500, "format": "csv"})
    got = rows(r.text)
    assert len(got) == 48  # every item with a picture: the export is not cut at one page
    page = client.get("/api/search", params={"q": "red", "mode": "visual", "k": 48}).json()
    assert [g["id"] for g in got] == [h["id"] for h in page["results"]]


def test_export_limits_are_one_clear_message(client):
    for params in ({"q": "red", "k": 10_001}, {"q": "red", "k": 10_001, "format": "iiif"}):
        r = client.get("/api/export", params=params)
        assert r.status_code == 422
        assert r.json()["error"]["message"] == "an export holds at most 10,000 items; 10,001 were asked for"
    r = client.get("/api/facets/reds/export", params={"k": 20_000})
    assert r.json()["error"]["message"] == "an export holds at most 10,000 items; 20,000 were asked for"
    r = client.post("/api/export/selection", json={"ids": [f"x{i}" for i in range(10_001)]})
    assert r.status_code == 422 and "10000" in r.json()["error"]["message"]
    assert client.get("/api/export", params={"q": "red", "format": "pdf"}).status_code == 422
    assert client.get("/api/export", params={"format": "csv"}).json()["error"]["code"] == "bad_input"


def test_formula_looking_text_is_guarded(tmp_path, coll_root):
    from illustra.exports.build import ExportSet
    from illustra.exports.items import ExportItem
    from illustra.exports.table import to_csv

    item = ExportItem("=cmd", 1, 0.5, {"title": "+SUM(A1)", "creator": "@x", "place": "-1"}, "http://s/i", None, None)
    got = rows(to_csv(ExportSet([item], None, "t")))[0]
    assert (got["id"], got["title"], got["creator"], got["place"]) == ("'=cmd", "'+SUM(A1)", "'@x", "'-1")
    assert got["permalink"] == "http://s/i"  # a selection's rows link to their items


def test_iiif_manifest_of_a_facet_round_trips_and_points_at_real_images(coll_root):
    from iiif_prezi3 import Manifest

    server = serve_in_thread(create_app(coll_root))
    try:
        import httpx

        r = httpx.get(f"{server.url}/api/facets/reds/export", params={"format": "iiif", "k": 5})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/ld+json")
        assert r.headers["access-control-allow-origin"] == "*"
        doc = r.json()
        # iiif-prezi3's own model reads it back, unchanged.
        again = json.loads(Manifest(**doc).json())
        assert again == doc
        assert doc["@context"] == "http://iiif.io/api/presentation/3/context.json" and doc["type"] == "Manifest"
        assert doc["id"] == str(r.url)
        assert doc["homepage"][0]["id"].startswith(f"{server.url}/search?fdef=")
        assert doc["homepage"][0]["format"] == "text/html"
        assert len(doc["items"]) == 5
        coll = Collection(coll_root)
        for canvas in doc["items"]:
            assert canvas["type"] == "Canvas"
            [page] = canvas["items"]
            [anno] = page["items"]
            assert anno["motivation"] == "painting" and anno["target"] == canvas["id"]
            body = anno["body"]
            assert body["type"] == "Image" and body["format"] == "image/jpeg"
            got = httpx.get(body["id"])
            assert got.status_code == 200
            with Image.open(io.BytesIO(got.content)) as im:
                assert im.size == (canvas["width"], canvas["height"]) == (body["width"], body["height"])
            labels = {m["label"]["en"][0]: m["value"]["none"][0] for m in canvas["metadata"]}
            row = coll.row_of(labels["Identifier"])
            assert labels["Title"] == coll.metadata(row)["title"] and labels["Place"] == coll.metadata(row)["place"]
            assert colour_of(labels["Identifier"]) == "red" and int(labels["Rank"]) >= 1
        assert {m["label"]["en"][0] for m in doc["metadata"]} >= {"Query", "Model", "Index built", "Items"}
    finally:
        server.stop()


def test_manifests_are_built_without_touching_the_network(monkeypatch, client):
    calls: list[object] = []
    real = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        calls.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: guarded(None, a))  # type: ignore[arg-type]
    import importlib

    import iiif_prezi3

    importlib.reload(iiif_prezi3)
    r = client.get("/api/export", params={"q": "green", "k": 3, "format": "iiif"})
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    assert calls == []
    monkeypatch.setattr(socket.socket, "connect", real)


def test_catalogue_entries_without_a_picture_are_counted_not_painted(client):
    r = client.get("/api/export", params={"q": "Catalogue entry", "mode": "text", "k": 50, "format": "iiif"})
    doc = r.json()
    assert all(c["items"][0]["items"][0]["body"]["id"] for c in doc["items"])
    csv_rows = rows(client.get("/api/export", params={"q": "Catalogue entry", "mode": "text", "k": 50}).text)
    entries = sum(1 for g in csv_rows if g["id"].startswith("text-only/"))
    assert entries == 2 and len(doc["items"]) == len(csv_rows) - entries
    assert "2 catalogue entries without a picture" in doc["summary"]["en"][0]


def test_a_saved_selection_exports_in_its_order(client):
    ids = ["blue/03", "nope", "red/01", "text-only/0"]
    r = client.post("/api/export/selection", json={"ids": ids, "format": "csv"})
    assert r.status_code == 200, r.text
    got = rows(r.text)
    assert [g["id"] for g in got] == ["blue/03", "red/01", "text-only/0"]
    assert [g["rank"] for g in got] == ["1", "2", "3"] and got[0]["score"] == ""
    assert got[0]["permalink"] == "http://testserver/items/blue/03"
    doc = client.post("/api/export/selection", json={"ids": ids, "format": "iiif"}).json()
    identifiers = [
        next(m["value"]["none"][0] for m in c["metadata"] if m["label"]["en"] == ["Identifier"]) for c in doc["items"]
    ]
    assert identifiers == ["blue/03", "red/01"]  # the catalogue entry has no picture to paint
    assert "homepage" not in doc
    assert any("1 ids not in this collection" in m["value"]["none"][0] for m in doc["metadata"])
    r = client.post("/api/export/selection", json={"ids": ["nope"]})
    assert r.status_code == 404 and "none of the selected items" in r.json()["error"]["message"]


def test_exports_from_the_command_line(coll_root, tmp_path):
    out = tmp_path / "reds.csv"
    res = CliRunner().invoke(main, ["export", "--collection", str(coll_root), "--facet", "reds", "--format", "csv",
                                    "-k", "7", "--year-from", "1800", "--output", str(out)])
    assert res.exit_code == 0, res.stderr
    got = rows(out.read_text(encoding="utf-8"))
    assert len(got) == 7 and all(int(g["date"]) >= 1800 for g in got)
    assert "permalink: http://127.0.0.1:8000/search?fdef=" in res.stderr
    man = tmp_path / "like.json"
    res = CliRunner().invoke(main, ["export", "--collection", str(coll_root), "--like", "green/00", "--format", "iiif",
                                    "--base-url", "https://pictures.example.org/", "--output", str(man)])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(man.read_text(encoding="utf-8"))
    assert doc["homepage"][0]["id"].startswith("https://pictures.example.org/search?like=green%2F00")
    assert doc["items"][0]["items"][0]["items"][0]["body"]["id"].startswith("https://pictures.example.org/api/items/")
    res = CliRunner().invoke(main, ["export", "--collection", str(coll_root), "red", "--format", "csv", "-k", "10001",
                                    "--output", str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and res.stderr == "error: an export holds at most 10,000 items; 10,001 were asked for\n"
    assert not (tmp_path / "x.csv").exists()
