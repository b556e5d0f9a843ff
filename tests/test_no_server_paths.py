"""No public response shows where files live on the server: every route of the app, with normal and
error inputs, is walked and no answer may contain the collection's directory, the test's temporary
directory or a system path recorded by a source (the CLI may show paths; the API and page never)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from illustra.api import create_app
from illustra.collection import Collection
from illustra.encoders import register_encoder
from illustra.guardrails import OWNER_FILE
from illustra.images import encode_stored
from illustra.index import build_index

from .fakes import FakeEncoder, solid
from .searchkit import colour_rows, embed_with

SYSTEM_DIR = "/usr/share/openclipart"


def _rows() -> list[dict]:
    rows = colour_rows(3)
    for i, row in enumerate(rows):
        row["image_path"] = f"{SYSTEM_DIR}/png/{i}.png"
    rows.append(
        {
            "id": "plain/local",
            "image": {"bytes": encode_stored(solid("red", (20, 20))), "path": None},
            "title": "A plate with a local file",
            "image_path": f"{SYSTEM_DIR}/png/local.png",
            "year": 1800,
        }
    )
    return rows


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, list[str]]]:
    register_encoder("fake", FakeEncoder)
    base = tmp_path_factory.mktemp("paths")
    root = base / "coll"
    source = {"kind": "openclipart", "png_root": f"{SYSTEM_DIR}/png", "svg_root": f"{SYSTEM_DIR}/svg"}
    coll = Collection.create(root, _rows(), source=source)
    embed_with(coll)
    build_index(Collection(root), "fake")
    (root / OWNER_FILE).write_text(json.dumps({"terms": {}}), encoding="utf-8")
    forbidden = [str(root), str(root.resolve()), str(base), str(tmp_path_factory.getbasetemp()), "/usr/share"]
    with TestClient(create_app(root), raise_server_exceptions=False) as client:
        yield client, forbidden


def _png() -> bytes:
    buf = io.BytesIO()
    solid("red", (40, 40)).save(buf, format="PNG")
    return buf.getvalue()


ITEM_IDS = ["red/00", "plain/local", "no/such/item", "x" * 300, "../../etc/passwd"]
QUERIES: list[dict[str, str]] = [
    {},
    {"q": "red"},
    {"q": "red", "k": "0"},
    {"q": "red", "nonsense": "1"},
    {"k": "5", "offset": "2"},
    {"q": "red", "year_from": "1900", "year_to": "1800"},
    {"like": "no/such/item"},
    {"like": "red/00"},
]


def _bodies(method: str, path: str) -> list[dict]:
    if method != "POST":
        return [{}]
    if path.endswith("/report"):
        return [
            {"json": {"query": "red", "reason": "other"}},
            {"json": {"reason": ""}},
            {"data": {"reason": "other", "query": "red", "return_to": "/search?q=red"}},
            {"content": b"[" * 6000, "headers": {"content-type": "application/json"}},
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
        ]
    return [
        {"files": {"image": ("q.png", _png(), "image/png")}},
        {"files": {"file": ("q.png", _png(), "image/png")}},
        {"files": {"image": ("q.png", b"not an image", "image/png")}},
        {"files": {"image": ("q.png", b"", "image/png")}},
        {"data": {"url": "file:///etc/passwd"}},
        {"data": {"k": "3"}},
    ]


def _check(r, forbidden: list[str], what: str) -> None:
    text = r.content.decode("utf-8", "replace")
    for f in forbidden:
        assert f not in text, f"{what} -> {r.status_code} shows {f!r}: {text[:300]}"
        assert quote(f) not in text, f"{what} -> {r.status_code} shows {quote(f)!r}"


def all_routes(routes: list) -> Iterator:
    """The app's routes, with included routers flattened (none of ours has a prefix)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from all_routes(inner.routes)
        else:
            yield route


def test_no_route_shows_a_server_path(env):
    client, forbidden = env
    seen = 0
    for route in all_routes(client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route, Mount):
            for tail in ("/", "/nothing", "/../../../../etc/passwd"):
                _check(client.get(route.path + tail), forbidden, route.path + tail)
            continue
        assert isinstance(route, (APIRoute, Route))
        ids = ITEM_IDS if "{item_id" in route.path else [None]
        for item_id in ids:
            url = route.path
            if item_id is not None:
                url = url.replace("{item_id:path}", quote(item_id, safe="/"))
            for method in sorted(route.methods or {"GET"}):
                if method == "HEAD":
                    continue
                for params in QUERIES:
                    for body in _bodies(method, route.path):
                        r = client.request(method, url, params=params, **body)
                        _check(r, forbidden, f"{method} {url} {params} {list(body)}")
                        seen += 1
                # The wrong method too.
                other = "DELETE" if method != "DELETE" else "GET"
                _check(client.request(other, url), forbidden, f"{other} {url}")
    assert seen > 100
    for url in ("/api/nothing", "/nothing/here", "/docs", "/openapi.json", "/api/about", "/about"):
        _check(client.get(url), forbidden, url)


def test_about_keeps_what_is_not_a_path(env):
    client, _ = env
    about = client.get("/api/about").json()
    card = about["collection"]
    assert card["items"] == 25 and "path" not in card
    sources = card["sources"]
    assert [s["kind"] for s in sources] == ["openclipart"]
    assert "png_root" not in sources[0]["details"]
    assert about["guardrails"]["owner_file"] == OWNER_FILE
    assert "Location" not in about["markdown"] and "openclipart" in about["markdown"]


def test_item_and_search_json_leave_out_file_paths(env):
    client, _ = env
    item = client.get("/api/items/plain/local").json()
    assert "image_path" not in item["metadata"] and item["metadata"]["title"].startswith("A plate")
    hits = client.get("/api/search", params={"q": "red", "k": 50}).json()["results"]
    assert hits and all("image_path" not in h["metadata"] for h in hits)


def test_messages_quote_the_collection_as_a_name(env, tmp_path: Path):
    client, forbidden = env
    r = client.get("/api/items/no/such/item")
    assert r.status_code == 404 and "no/such/item" in r.json()["error"]["message"]
    _check(r, forbidden, "404")
