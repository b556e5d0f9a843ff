"""The REST API and server-rendered pages, in process over a real collection (fake encoder)."""

from __future__ import annotations

import csv
import http.server
import io
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from PIL import Image
from starlette.testclient import TestClient

from illustra.api import create_app, serve_in_thread
from illustra.api.server import bind_socket
from illustra.api.templating import highlight
from illustra.cli import main
from illustra.encoders import register_encoder
from illustra.errors import BadInput
from illustra.index import build_index
from illustra.search.limits import MAX_K, MAX_OFFSET, MAX_QUERY_CHARS

from .apikit import ODD_IDS, build_web_collection
from .fakes import FakeEncoder, solid
from .searchkit import build_colour_collection


@pytest.fixture(scope="module")
def coll_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_encoder("fake", FakeEncoder)
    root = tmp_path_factory.mktemp("web") / "coll"
    build_web_collection(root)
    return root


@pytest.fixture(scope="module")
def client(coll_dir: Path) -> Iterator[TestClient]:
    register_encoder("fake", FakeEncoder)
    app = create_app(coll_dir, title="Colour plates")
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def png(colour: str = "blue", size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    solid(colour, size).save(buf, format="PNG")
    return buf.getvalue()


def assert_error(resp, status: int, code: str, *words: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    for w in words:
        assert w in body["error"]["message"], body["error"]["message"]
    return body


# -- text search ---------------------------------------------------------------------------------
def test_search_returns_the_documented_shape(client):
    r = client.get("/api/search", params={"q": "something red", "k": 4})
    assert r.status_code == 200
    body = r.json()
    assert {"results", "k", "offset", "has_more", "mode", "model", "notices", "query"} <= set(body)
    assert body["k"] == 4 and body["offset"] == 0 and body["has_more"] is True
    assert body["model"] == "fake" and body["mode"] == "visual" and body["query"] == "something red"
    assert isinstance(body["notices"], list)
    hits = body["results"]
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    assert all(h["id"].startswith("red/") for h in hits)
    h = hits[0]
    assert {"id", "score", "rank", "metadata", "explain", "thumbnail_url", "image_url", "item_url"} <= set(h)
    assert h["explain"]["visual_score"] == pytest.approx(h["score"], abs=1e-5)
    assert h["item_url"] == f"/api/items/{h['id']}"
    assert h["thumbnail_url"].endswith("/thumbnail") and h["image_url"].endswith("/image")
    assert h["metadata"]["title"].startswith("A red plate")
    # A server-side file path is not shown to clients.
    assert "image_path" not in h["metadata"]


def test_paging_is_consistent_and_ends(client):
    # Every solid-colour item of one colour ties; with a filter the ranking is exact and ties are
    # broken by row, so pages line up.
    f = {"q": "blue", "year_from": 1700}
    ten = client.get("/api/search", params={**f, "k": 10}).json()["results"]
    p1 = client.get("/api/search", params={**f, "k": 5}).json()
    p2 = client.get("/api/search", params={**f, "k": 5, "offset": 5}).json()
    assert [h["id"] for h in p1["results"] + p2["results"]] == [h["id"] for h in ten]
    assert [h["rank"] for h in p2["results"]] == [6, 7, 8, 9, 10]
    last = client.get("/api/search", params={"q": "blue", "k": 100, "offset": 40}).json()
    assert last["has_more"] is False and len(last["results"]) < 100
    beyond = client.get("/api/search", params={"q": "blue", "k": 10, "offset": 5000}).json()
    assert beyond["results"] == [] and beyond["has_more"] is False


def test_paging_without_filters_has_no_duplicates_among_ties(client):
    p1 = client.get("/api/search", params={"q": "blue", "k": 5}).json()["results"]
    p2 = client.get("/api/search", params={"q": "blue", "k": 5, "offset": 5}).json()["results"]
    assert len({h["id"] for h in p1 + p2}) == 10


def test_filters_narrow_results(client):
    got = client.get("/api/search", params={"q": "red", "k": 10, "year_from": 1830, "year_to": 1847}).json()
    assert len(got["results"]) == 10 and all(1830 <= h["metadata"]["year"] <= 1847 for h in got["results"])
    assert got["filters"] == {"year_from": 1830, "year_to": 1847}
    paris = client.get("/api/search", params={"q": "red", "k": 20, "place": "PARIS"}).json()["results"]
    assert paris and all(h["metadata"]["place"] == "Paris" for h in paris)
    titled = client.get("/api/search", params={"q": "red", "k": 50, "title_contains": "blue book"}).json()[
        "results"
    ]
    assert sorted(h["id"] for h in titled) == [f"books/b1/p{i}" for i in range(1, 5)]
    book = client.get("/api/search", params={"q": "red", "k": 50, "book_identifier": "b1"}).json()["results"]
    assert {h["id"] for h in book} == {f"books/b1/p{i}" for i in range(1, 5)}
    one_year = client.get("/api/search", params={"q": "red", "k": 50, "year": 1900}).json()["results"]
    assert {h["id"] for h in one_year} == set(ODD_IDS)
    none = client.get("/api/search", params={"q": "red", "year_from": 2500}).json()
    assert none["results"] == [] and none["has_more"] is False


def test_text_modes_fall_back_with_a_notice(client):
    body = client.get("/api/search", params={"q": "red", "mode": "hybrid", "k": 3}).json()
    assert body["mode"] == "visual"
    assert len(body["notices"]) == 1 and "text index" in body["notices"][0]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"q": "red", "k": "0"}, ["k"]),
        ({"q": "red", "k": str(MAX_K + 1)}, ["k", str(MAX_K)]),
        ({"q": "red", "k": "abc"}, ["k", "integer"]),
        ({"q": "red", "k": "99999999999999999999999"}, ["k"]),
        ({"q": "red", "offset": "-1"}, ["offset"]),
        ({"q": "red", "offset": str(MAX_OFFSET + 1)}, ["offset"]),
        ({"q": ""}, ["empty"]),
        ({"q": "   "}, ["empty"]),
        ({}, ["q"]),
        ({"q": "x" * (MAX_QUERY_CHARS + 1)}, ["q"]),
        ({"q": "red", "colour": "red"}, ["colour", "filterable fields", "place"]),
        ({"q": "red", "year_from": "1900", "year_to": "1800"}, ["first year", "after", "year_to"]),
        ({"q": "red", "year_from": "eighteen"}, ["year_from"]),
        ({"q": "red", "mode": "telepathy"}, ["mode"]),
        ({"q": "red", "place": "x" * 400}, ["place"]),
    ],
)
def test_bad_search_parameters_are_422_with_one_shape(client, params, words):
    assert_error(client.get("/api/search", params=params), 422, "bad_input", *words)


def test_repeated_filter_is_refused(client):
    assert_error(client.get("/api/search?q=red&place=Paris&place=London"), 422, "bad_input", "place", "once")


def test_unknown_api_routes_and_methods_use_the_error_shape(client):
    assert_error(client.get("/api/nothing/here"), 404, "not_found", "/api/nothing/here")
    assert_error(client.post("/api/search", data={"q": "red"}), 405, "method_not_allowed")
    assert_error(client.delete("/api/items/red/00"), 405, "method_not_allowed")


def test_collection_describes_itself(client):
    body = client.get("/api/collection").json()
    assert body["size"] == 60 and body["embedded"] == 57 and body["model"] == "fake"
    assert body["year_range"] == {"min": 1700, "max": 1900}
    assert {"place", "creator", "book_identifier"} <= set(body["filterable_fields"])
    assert body["field_values"]["place"] == ["Edinburgh", "London", "Oxford", "Paris"]
    assert body["index"]["kind"] == "flat" and body["built"]
    assert body["has_books"] is True and body["default_mode"] == "visual"


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/search", "/api/search/image", "/api/collection"} <= set(paths)
    assert any(p.startswith("/api/items/") and p.endswith("/thumbnail") for p in paths)


# -- items -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("item_id", [*ODD_IDS, "red/00", "books/b1/p3"])
def test_item_urls_round_trip_odd_ids(client, item_id):
    r = client.get(f"/api/items/{quote(item_id, safe='/')}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == item_id and body["has_image"] is True
    # The links the API hands out lead back to the same item.
    assert client.get(body["item_url"]).json()["id"] == item_id
    assert client.get(body["thumbnail_url"]).headers["content-type"] == "image/jpeg"
    similar = client.get(body["similar_url"], params={"k": 3}).json()
    assert len(similar["results"]) == 3 and item_id not in [h["id"] for h in similar["results"]]


def test_unicode_id_found_by_search_links(client):
    hits = client.get("/api/search", params={"q": "green", "k": 20, "year": 1900}).json()["results"]
    assert hits[0]["id"] == "ü/ß/漢字" and len(hits) == len(ODD_IDS)
    assert hits[0]["item_url"] == "/api/items/%C3%BC/%C3%9F/%E6%BC%A2%E5%AD%97"
    assert client.get(hits[0]["item_url"]).json()["metadata"]["creator"] == "Odd, Ada"


def test_an_id_ending_in_a_route_suffix_stays_reachable(client):
    # "odd" is not an item, "odd/image" is: the bare path answers the item's metadata...
    assert client.get("/api/items/odd/image").json()["id"] == "odd/image"
    # ...and its own suffix routes work as usual.
    r = client.get("/api/items/odd/image/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"


def test_similar_excludes_the_item_and_takes_filters(client):
    body = client.get("/api/items/green/00/similar", params={"k": 5}).json()
    ids = [h["id"] for h in body["results"]]
    assert "green/00" not in ids and all(i.startswith("green/") for i in ids)
    assert body["query"] == "green/00" and body["kind"] == "like"
    paris = client.get("/api/items/green/00/similar", params={"k": 5, "place": "Paris"}).json()["results"]
    assert paris and all(h["metadata"]["place"] == "Paris" for h in paris)
    assert_error(client.get("/api/items/green/00/similar", params={"k": 0}), 422, "bad_input", "k")
    assert_error(client.get("/api/items/green/00/similar", params={"nope": 1}), 422, "bad_input", "nope")
    assert_error(client.get("/api/items/no/such/thing/similar"), 404, "item_not_found", "no/such/thing")


def test_image_and_thumbnail_with_etags(client, coll_dir):
    img = client.get("/api/items/red/00/image")
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(img.content)).size == (40, 30)
    etag = img.headers["etag"]
    assert etag.startswith('"') and "max-age" in img.headers["cache-control"]
    again = client.get("/api/items/red/00/image", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    weak_list = client.get("/api/items/red/00/image", headers={"If-None-Match": f'"nope", W/{etag}'})
    assert weak_list.status_code == 304
    other = client.get("/api/items/red/01/image", headers={"If-None-Match": etag})
    assert other.status_code == 200

    thumb = client.get("/api/items/books/b1/p1/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["etag"] != client.get("/api/items/books/b1/p1/image").headers["etag"]
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 256
    assert (
        client.get(
            "/api/items/books/b1/p1/thumbnail", headers={"If-None-Match": thumb.headers["etag"]}
        ).status_code
        == 304
    )
    cached = list((coll_dir / "cache" / "thumbs").rglob("*.jpg"))
    assert cached and any(p.read_bytes() == thumb.content for p in cached)


def test_item_without_image(client):
    body = client.get("/api/items/books/b3/text-only").json()
    assert body["has_image"] is False
    assert_error(client.get("/api/items/books/b3/text-only/thumbnail"), 404, "no_image")
    assert_error(client.get("/api/items/books/b3/text-only/image"), 404, "no_image")
    assert_error(client.get("/api/items/books/b3/text-only/similar"), 404, "item_not_found", "no image")


def test_book_lists_the_other_items_of_the_same_book(client):
    body = client.get("/api/items/books/b1/p2/book").json()
    assert body["book_identifier"] == "b1" and body["total"] == 3
    assert [h["id"] for h in body["results"]] == ["books/b1/p1", "books/b1/p3", "books/b1/p4"]
    page = client.get("/api/items/books/b1/p2/book", params={"k": 2, "offset": 2}).json()
    assert [h["id"] for h in page["results"]] == ["books/b1/p4"] and page["has_more"] is False
    alone = client.get("/api/items/books/b2/p1/book").json()
    assert alone["total"] == 0 and alone["results"] == []
    assert_error(client.get("/api/items/red/00/book"), 404, "no_book", "book identifier")


def test_book_on_a_collection_without_books(tmp_path):
    coll = build_colour_collection(tmp_path / "plain")
    build_index(coll, "fake")
    with TestClient(create_app(tmp_path / "plain")) as c:
        assert_error(c.get("/api/items/red/00/book"), 404, "no_book", "book_identifier")
        assert c.get("/api/collection").json()["has_books"] is False


@pytest.mark.parametrize(
    "path",
    [
        "/api/items/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/items/%2e%2e/%2e%2e/etc/passwd/image",
        "/api/items/%252e%252e%252f%252e%252e%252fetc%252fpasswd/image",
        "/api/items//etc/passwd",
        "/api/items//etc/passwd/image",
        "/api/items/%2Fetc%2Fpasswd/thumbnail",
        "/api/items/..%5c..%5cwindows%5cwin.ini/image",
        "/api/items/red/00/../../../../etc/passwd",
    ],
)
def test_path_traversal_never_reads_files(client, path):
    r = client.get(path)
    assert r.status_code in (404, 422)
    assert b"root:" not in r.content and b"[fonts]" not in r.content


def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_literal_dot_dot_paths_over_real_http(coll_dir):
    """Clients normalise ``..``; a raw request does not. Uvicorn must hand them to routing as ids."""
    server = serve_in_thread(create_app(coll_dir))
    try:
        for path in [
            "/api/items/../../../../etc/passwd",
            "/api/items/../../../../etc/passwd/image",
            "/static/../../../../etc/passwd",
            "/static/..%2f..%2f..%2fetc%2fpasswd",
        ]:
            status, data = _raw_get(server.url, path)
            assert status in (400, 404), path
            assert b"root:" not in data
    finally:
        server.stop()


# -- image search ----------------------------------------------------------------------------------
def test_upload_search_finds_the_colour(client):
    r = client.post(
        "/api/search/image", files={"image": ("q.png", png("blue"), "image/png")}, params={"k": 5}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "image" and len(body["results"]) == 5
    assert all(h["metadata"]["title"].lower().count("blue") for h in body["results"])
    # Filters as form fields work the same as in the query string.
    r2 = client.post(
        "/api/search/image",
        files={"image": ("q.png", png("blue"), "image/png")},
        data={"k": "3", "place": "London", "year_from": "1800"},
    )
    hits = r2.json()["results"]
    assert len(hits) == 3 and all(h["metadata"]["place"] == "London" for h in hits)


def test_upload_errors(client, coll_dir):
    assert_error(client.post("/api/search/image", data={"k": "3"}), 422, "bad_input", "image")
    assert_error(
        client.post("/api/search/image", content=b"abc", headers={"content-type": "image/png"}),
        422,
        "bad_input",
        "multipart",
    )
    not_image = client.post("/api/search/image", files={"image": ("x.png", b"hello, I am text", "image/png")})
    assert_error(not_image, 422, "bad_image")
    bad_k = client.post(
        "/api/search/image", files={"image": ("q.png", png(), "image/png")}, params={"k": MAX_K + 1}
    )
    assert_error(bad_k, 422, "bad_input", "k")
    unknown = client.post(
        "/api/search/image", files={"image": ("q.png", png(), "image/png")}, data={"shape": "round"}
    )
    assert_error(unknown, 422, "bad_input", "shape")
    with TestClient(app_with(coll_dir, upload_max_bytes=2000), raise_server_exceptions=False) as small:
        big = png("red", (400, 400)) + b"\0" * 5000
        assert_error(
            small.post("/api/search/image", files={"image": ("big.png", big, "image/png")}), 413, "too_large"
        )

        # Even without a Content-Length the body is cut off once it passes the limit.
        def chunks():
            yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'
            for _ in range(200):
                yield b"\0" * 4096

        streamed = small.post(
            "/api/search/image", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert_error(streamed, 413, "too_large")


def app_with(coll_dir: Path, **changes):
    """An app over the test collection whose settings object has ``changes``."""
    from illustra.search import SearchService
    from illustra.settings import current

    return create_app(SearchService(coll_dir, settings=current().replace(**changes)))


def test_upload_field_may_be_named_file(client):
    r = client.post("/api/search/image", files={"file": ("q.png", png("blue"), "image/png")}, params={"k": 3})
    assert r.status_code == 200, r.text
    assert len(r.json()["results"]) == 3
    # One image per request.
    both = client.post(
        "/api/search/image",
        files=[("image", ("a.png", png(), "image/png")), ("file", ("b.png", png(), "image/png"))],
    )
    assert_error(both, 422, "bad_input")
    other = client.post("/api/search/image", files={"picture": ("q.png", png(), "image/png")})
    assert_error(other, 422, "bad_input", "'image'", "'file'")


@pytest.mark.parametrize("field", ["image", "file"])
def test_an_empty_upload_says_the_file_is_empty(client, field):
    r = client.post("/api/search/image", files={field: ("q.png", b"", "image/png")})
    body = assert_error(r, 422, "bad_input", "empty", field)
    assert "no image" not in body["error"]["message"]


def test_size_limit_messages_agree(coll_dir):
    """Over the limit by declared length, as the body streams in, or in the file part: one message,
    one way of writing the size, the limit from the app's settings object."""
    with TestClient(app_with(coll_dir, upload_max_bytes=2000), raise_server_exceptions=False) as small:
        answers = [
            # the file part alone is over the limit; the whole body is within the fence
            small.post("/api/search/image", files={"image": ("a.png", b"\0" * 3000, "image/png")}),
            # the body is over the fence by its declared length
            small.post("/api/search/image", files={"image": ("a.png", b"\0" * 400_000, "image/png")}),
            # a report body over the fence
            small.post("/api/items/red/00/report", content=b"x" * 400_000),
        ]

        def chunks():
            yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'
            for _ in range(200):
                yield b"\0" * 4096

        answers.append(
            small.post(
                "/api/search/image", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
            )
        )
        messages = {assert_error(r, 413, "too_large")["error"]["message"] for r in answers}
    assert messages == {"the image is larger than the 2 kB upload limit"}


def test_long_input_is_cut_in_messages(client):
    long_id = "x" * 20_000
    for suffix in ("", "/image", "/thumbnail", "/similar", "/book"):
        r = client.get(f"/api/items/{long_id}{suffix}")
        body = assert_error(r, 404, "item_not_found")
        assert len(body["error"]["message"]) < 200 and "xxxxxxxxxx" in body["error"]["message"]
    r = client.post(f"/api/items/{long_id}/report", json={"reason": "other"})
    assert r.status_code == 404 and len(r.json()["error"]["message"]) < 200
    r = client.get(f"/api/nothing/{long_id}")
    assert r.status_code == 404 and len(r.json()["error"]["message"]) < 200
    r = client.delete(f"/api/items/{long_id}")
    assert r.status_code == 405 and len(r.json()["error"]["message"]) < 200
    r = client.post("/api/search/image", files={"y" * 20_000: ("q.png", png(), "image/png")})
    assert r.status_code == 422 and len(r.json()["error"]["message"]) < 200
    r = client.get("/api/search", params={"q": "red", "z" * 20_000: "1"})
    assert r.status_code == 422 and len(r.json()["error"]["message"]) < 500
    # A page shows the same short message.
    page = client.get(f"/items/{long_id}")
    assert page.status_code == 404 and long_id not in page.text


def test_every_route_has_a_body_size_fence(coll_dir):
    app = app_with(coll_dir, upload_max_bytes=100_000)
    with TestClient(app) as c:
        big = c.post("/api/search/image", files={"image": ("big.png", b"\0" * 2_000_000, "image/png")})
        assert_error(big, 413, "too_large")
        report = c.post("/api/items/red/00/report", content=b"x" * 2_000_000)
        assert_error(report, 413, "too_large")


def test_hostile_uploads_are_422_never_500(client, hostile_dir):
    with open(hostile_dir / "EXPECTED.tsv", encoding="utf-8") as fh:
        expected = {row["file"]: row["expected"] for row in csv.DictReader(fh, delimiter="\t")}
    assert expected
    for name, verdict in expected.items():
        data = (hostile_dir / name).read_bytes()
        r = client.post(
            "/api/search/image", files={"image": (name, data, "application/octet-stream")}, params={"k": 2}
        )
        if verdict == "accept":
            assert r.status_code == 200, (name, r.text)
            assert len(r.json()["results"]) == 2
        else:
            assert r.status_code == 422, (name, r.status_code, r.text)
            assert r.json()["error"]["code"] in ("bad_image", "bad_input"), name


@pytest.fixture
def image_host() -> Iterator[str]:
    """A small HTTP server on 127.0.0.1 serving a picture, a redirect, a big file and a 404."""
    picture = png("blue")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/blue.png":
                self._send(200, picture, "image/png")
            elif self.path == "/to-file":
                self.send_response(302)
                self.send_header("Location", "file:///etc/passwd")
                self.end_headers()
            elif self.path == "/to-blue":
                self.send_response(301)
                self.send_header("Location", "/blue.png")
                self.end_headers()
            elif self.path == "/big.png":
                self._send(200, picture + b"\0" * 50_000, "image/png")
            else:
                self._send(404, b"nope", "text/plain")

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_url_fetch_is_refused_unless_enabled(client, image_host):
    r = client.post("/api/search/image", data={"url": f"{image_host}/blue.png"})
    assert_error(r, 403, "refused", "allow_url_fetch")


def test_url_fetch_when_enabled_is_bounded(coll_dir, image_host):
    with TestClient(app_with(coll_dir, allow_url_fetch=True), raise_server_exceptions=False) as client:
        # Loopback is not a public address: refused unless explicitly allowed.
        assert_error(
            client.post("/api/search/image", data={"url": f"{image_host}/blue.png"}), 403, "refused", "public"
        )
    allowed = app_with(coll_dir, allow_url_fetch=True, url_fetch_private=True)
    with TestClient(allowed, raise_server_exceptions=False) as client:
        ok = client.post("/api/search/image", data={"url": f"{image_host}/blue.png", "k": "3"})
        assert ok.status_code == 200 and ok.json()["results"][0]["id"].startswith(("blue/", "books/b1"))
        assert client.post("/api/search/image", data={"url": f"{image_host}/to-blue"}).status_code == 200
        assert_error(
            client.post("/api/search/image", data={"url": f"{image_host}/to-file"}), 422, "bad_input", "http"
        )
        assert_error(
            client.post("/api/search/image", data={"url": "file:///etc/passwd"}), 422, "bad_input", "http"
        )
        assert_error(
            client.post("/api/search/image", data={"url": f"{image_host}/missing"}), 502, "download_error", "404"
        )
        assert_error(
            client.post("/api/search/image", data={"url": "http://127.0.0.1:99999/x.png"}), 422, "bad_input"
        )
    small = app_with(coll_dir, allow_url_fetch=True, url_fetch_private=True, upload_max_bytes=20_000)
    with TestClient(small, raise_server_exceptions=False) as client:
        big = client.post("/api/search/image", data={"url": f"{image_host}/big.png"})
        assert_error(big, 413, "too_large", "20 kB upload limit")


# -- pages -----------------------------------------------------------------------------------------
def test_search_page_renders_results_and_keeps_state(client):
    r = client.get("/search", params={"q": "red", "year_from": "1800", "year_to": "", "place": ""})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    assert html.count('class="card"') == 24 and 'loading="lazy"' in html
    assert 'value="red"' in html and 'value="1800"' in html
    assert "More like this" in html and "/search?like=red%2F" in html
    assert "data-load-more" in html and "offset=24" in html
    assert "year from: <strong>1800</strong>" in html
    partial = client.get("/search", params={"q": "red", "offset": 24, "partial": 1}).text
    assert "<html" not in partial and 'class="card"' in partial


def test_page_shows_notices_above_results_and_refusals(client):
    html = client.get("/search", params={"q": "red", "mode": "text"}).text
    assert html.index("text index") < html.index('class="grid"')
    refused = client.post("/search/image", data={"url": "https://example.org/x.png"})
    assert refused.status_code == 403
    assert "The server refused this search." in refused.text and "allow_url_fetch" in refused.text


def test_page_escapes_catalogue_text(client):
    html = client.get("/items/books/b2/p1").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert 'href="javascript:' not in html


def test_page_empty_state_and_bad_input(client):
    empty = client.get("/search", params={"q": "red", "year_from": "2500"})
    assert empty.status_code == 200 and "No results" in empty.text
    bad = client.get("/search", params={"q": "red", "year_from": "1900", "year_to": "1800"})
    assert bad.status_code == 422 and "is after the last year" in bad.text
    gone = client.get("/search", params={"upload": "not-a-token"})
    assert gone.status_code == 422 and "upload it again" in gone.text
    assert client.get("/items/no/such/item").status_code == 404
    assert "Not found" in client.get("/no/such/page").text


def test_page_upload_then_more(client):
    r = client.post("/search/image", files={"image": ("q.png", png("purple"), "image/png")}, data={"k": "4"})
    assert r.status_code == 200, r.text
    assert r.text.count('class="card"') == 4 and "cannot be kept in a link" in r.text
    token = re.search(r'name="upload" value="([^"]+)"', r.text).group(1)
    more = client.get("/search", params={"upload": token, "k": 4, "offset": 4})
    assert more.status_code == 200 and more.text.count('class="card"') == 4
    assert client.get(f"/search/upload/{token}").headers["content-type"] == "image/png"
    bad = client.post("/search/image", files={"image": ("x.png", b"not an image", "image/png")})
    assert bad.status_code == 422 and "That search did not work" in bad.text


def test_item_and_about_pages(client):
    html = client.get(f"/items/{quote('ü/ß/漢字', safe='/')}").text
    assert "Odd item ü/ß/漢字 in green" in html and "More like this" in html
    book = client.get("/items/books/b1/p2").text
    assert "From the same book" in book and book.count("books/b1/p") >= 3
    assert 'href="https://library.example.org/b1#page2"' in book
    about = client.get("/about").text
    for words in ("English", "in-domain testing", "face recognition", "60"):
        assert words in about


def test_text_and_hybrid_modes_explain_and_highlight(tmp_path):
    from illustra.collection import Collection
    from illustra.textindex import build_text_index

    from .textkit import build_book_collection

    coll = build_book_collection(tmp_path / "books")
    build_index(coll, "fake")
    build_text_index(Collection(tmp_path / "books"), semantic=False, progress=False)
    with TestClient(create_app(tmp_path / "books")) as c:
        info = c.get("/api/collection").json()
        assert info["modes"] == ["visual", "text", "hybrid"] and info["default_mode"] == "hybrid"
        body = c.get("/api/search", params={"q": "pyramids", "mode": "text", "k": 3}).json()
        assert body["mode"] == "text" and body["notices"] == []
        top = body["results"][0]
        assert top["id"] == "egypt/2"
        assert "pyramids" in top["explain"]["matched_terms"] and "title" in top["explain"]["matched_fields"]
        assert top["explain"]["text_score"] is not None and top["explain"]["fused_rank"] == 1
        html = c.get("/search", params={"q": "pyramids", "mode": "text"}).text
        assert "The <mark>pyramids</mark> of Gizeh" in html
        # A match in a field the card does not otherwise show is shown, marked, under the title.
        assert re.search(r"Keywords:</span> <mark>pyramid</mark>", html)
        assert 'value="text" checked' in html and "searched catalogue text" in html
        # Catalogue entries without a picture can match the text: no broken thumbnail for them.
        nubia = c.get("/api/search", params={"q": "Nubie", "mode": "text", "k": 1}).json()["results"][0]
        assert nubia["id"] == "egypt/3" and nubia["has_image"] is False
        page = c.get("/search", params={"q": "Nubie", "mode": "text", "k": 1}).text
        assert "No picture" in page and "/api/items/egypt/3/thumbnail" not in page


def test_catalogue_only_collection_is_served(tmp_path):
    from illustra.collection import Collection
    from illustra.textindex import build_text_index

    from .textkit import build_book_collection

    build_book_collection(tmp_path / "cat", embed=False)
    build_text_index(Collection(tmp_path / "cat"), semantic=False, progress=False)
    with TestClient(create_app(tmp_path / "cat", warm=True), raise_server_exceptions=False) as c:
        assert c.get("/api/collection").json()["default_mode"] == "text"
        body = c.get("/api/search", params={"q": "pyramids"}).json()
        assert body["mode"] == "text" and body["results"][0]["id"] == "egypt/2"
        assert_error(c.get("/api/items/egypt/2/similar"), 409, "not_embedded")
        upload = c.post("/api/search/image", files={"image": ("q.png", png(), "image/png")})
        assert_error(upload, 409, "not_embedded")
        item = c.get("/items/egypt/2")
        assert item.status_code == 200 and "not embedded" in item.text
        assert c.get("/search", params={"q": "pyramids"}).status_code == 200


def test_highlight_escapes_before_marking():
    assert str(highlight("Ships & <boats>", ["ship"])) == "<mark>Ships</mark> &amp; &lt;boats&gt;"
    assert str(highlight("Tom & Amps", ["amp"])) == "Tom &amp; <mark>Amps</mark>"
    assert str(highlight("<b>", [])) == "&lt;b&gt;"


def test_result_cards_highlight_matched_terms():
    from illustra.api.templating import make_templates

    env = make_templates().env
    hit = {
        "id": "x",
        "rank": 1,
        "score": 0.5,
        "page_url": "/items/x",
        "thumbnail_url": "/t",
        "like_page_url": "/l",
        "metadata": {"title": "A <ship> at sea", "creator": "Turner", "year": 1840, "place": "Margate"},
        "explain": {
            "visual_score": 0.31,
            "text_score": 2.5,
            "fused_rank": 3,
            "matched_terms": ["ship", "sea"],
            "matched_fields": {"title": ["ship", "sea"], "place": []},
        },
    }
    resp = {"query": "a ship at sea", "kind": "text", "mode": "hybrid"}
    html = env.get_template("result_card.html").render(hit=hit, root="", resp=resp, share_url="/search?q=x")
    assert "A &lt;<mark>ship</mark>&gt; at <mark>sea</mark>" in html
    assert "picture 0.310" in html and "text 2.500" in html and "fused #3" in html
    assert "<mark>Margate</mark>" not in html


# -- serving -----------------------------------------------------------------------------------------
def test_busy_port_is_a_clear_error(coll_dir):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(BadInput, match="already in use"):
            bind_socket("127.0.0.1", port)
        result = CliRunner().invoke(main, ["serve", "--collection", str(coll_dir), "--port", str(port)])
        assert result.exit_code == 2 and "already in use" in result.output
    finally:
        taken.close()


def test_served_over_real_http(coll_dir):
    import httpx

    server = serve_in_thread(create_app(coll_dir))
    try:
        r = httpx.get(f"{server.url}/api/search", params={"q": "yellow", "k": 2})
        assert r.status_code == 200 and r.json()["results"][0]["id"].startswith(("yellow/", "animals/"))
    finally:
        server.stop()
