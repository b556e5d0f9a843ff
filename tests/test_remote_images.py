"""Pictures fetched from their source URL when an item stores none (``--images remote``, or a BL
Flickr manifest ingested without ``--download``), against a real HTTP server on 127.0.0.1 that
serves real images, a slow answer, a 404, an oversized file and HTML dressed up as a JPEG."""

from __future__ import annotations

import io
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image
from starlette.testclient import TestClient

from illustra.api import create_app, serve_in_thread
from illustra.api.remote_images import RemoteImages, remote_for
from illustra.collection import Collection
from illustra.search import SearchService
from illustra.settings import current
from illustra.sources import BLFlickrSource, ingest
from illustra.textindex import build_text_index

from .blsample import bl_lines, write_bl_manifest
from .ingest_helpers import ImageServer, Route, image_bytes, serve

TIMEOUT = 0.5  # remote_timeout: connect and per-read; a whole fetch gets twice this
MAX_BYTES = 100_000
# Slow enough to trip the read timeout, and well inside what the test waits for.
SLOW = TIMEOUT * 3
LIMIT = TIMEOUT * 2 + 1.5  # the longest any answer may take here


def noisy_jpeg(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG of a few kB (noise does not compress), so cache sizes are easy to reason about."""
    im = Image.frombytes("RGB", size, bytes((seed * 131 + i * 7919) % 251 for i in range(size[0] * size[1] * 3)))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


PICTURES = {f"/p{i}.jpg": noisy_jpeg(i) for i in range(4)}
PNG = image_bytes("blue", (40, 30), fmt="PNG")


@pytest.fixture
def server() -> Iterator[ImageServer]:
    routes = {path: Route(body=body) for path, body in PICTURES.items()}
    routes.update(
        {
            "/blue.png": Route(body=PNG, content_type="image/png"),
            "/slow.jpg": Route(body=PICTURES["/p0.jpg"], delay=SLOW),
            "/gentle.jpg": Route(body=PICTURES["/p1.jpg"], delay=0.3),
            "/huge.jpg": Route(body=b"\xff\xd8\xff" + b"\0" * (MAX_BYTES + 10)),
            "/endless.jpg": Route(stream_bytes=50_000_000),
            "/html.jpg": Route(body=b"<html><body>not a picture</body></html>"),
            "/page.html": Route(body=b"<html><body>hello</body></html>", content_type="text/html"),
        }
    )
    yield from serve(ImageServer(routes=routes))


def closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone.jpg"


def remote_collection(root: Path, urls: dict[str, str]) -> Collection:
    rows = [{"id": item, "image": None, "image_path": url, "title": f"Plate {item}"} for item, url in urls.items()]
    rows.append({"id": "stored", "image": {"bytes": PICTURES["/p3.jpg"], "path": None}, "title": "Stored"})
    rows.append({"id": "bare", "image": None, "image_path": "scans/missing.tif", "title": "No picture"})
    Collection.create(root, rows, source={"kind": "test"})
    # Catalogue text only (nothing embedded): enough to serve and search in text mode.
    build_text_index(Collection(root), semantic=False, progress=False)
    return Collection(root)


def make_app(root: Path, **changes: object):
    values: dict[str, object] = {"url_fetch_private": True, "remote_timeout": TIMEOUT, "remote_max_bytes": MAX_BYTES}
    cfg = current().replace(**{**values, **changes})
    return create_app(SearchService(root, settings=cfg))


@pytest.fixture
def coll(tmp_path: Path, server: ImageServer) -> Path:
    urls = {name.strip("/").split(".")[0]: server.url(name) for name in [*PICTURES, *server.routes]}
    urls.update(missing=server.url("/missing.jpg"), dead=closed_port_url())
    urls["dead2"] = urls["dead"].replace("gone", "also-gone")
    remote_collection(tmp_path / "coll", urls)
    return tmp_path / "coll"


def decoded(body: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(body))
    im.load()
    return im


def test_collection_knows_which_items_have_a_picture_url(coll: Path) -> None:
    c = Collection(coll)
    p0, stored, bare = c.row_of("p0"), c.row_of("stored"), c.row_of("bare")
    assert c.image_url(p0) is not None and c.image_url(p0).endswith("/p0.jpg")
    assert c.has_image(p0) and not c.has_stored_image(p0)
    assert c.image_url(stored) is None and c.has_image(stored) and c.has_stored_image(stored)
    assert c.image_url(bare) is None and not c.has_image(bare)


def test_image_and_thumbnail_are_fetched_once_then_served_from_the_cache(coll: Path, server: ImageServer) -> None:
    client = TestClient(make_app(coll))
    r = client.get("/api/items/p0/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == PICTURES["/p0.jpg"] and "x-illustra-image-error" not in r.headers
    assert server.hits["/p0.jpg"] == 1
    again = client.get("/api/items/p0/image")
    assert again.content == r.content and again.headers["etag"] == r.headers["etag"]
    assert client.get("/api/items/p0/image", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    thumb = client.get("/api/items/p0/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert decoded(thumb.content).size == (64, 48)
    assert client.get("/api/items/p0/thumbnail", headers={"If-None-Match": thumb.headers["etag"]}).status_code == 304
    png = client.get("/api/items/blue/image")
    assert png.headers["content-type"] == "image/png" and png.content == PNG
    assert server.hits["/p0.jpg"] == 1  # everything after the first request came from the cache
    # Cached on disk in the collection, so a restarted server does not fetch again either.
    assert any((coll / "cache" / "remote").rglob("*"))
    restarted = TestClient(make_app(coll))
    assert restarted.get("/api/items/p0/image").content == PICTURES["/p0.jpg"]
    assert restarted.get("/api/items/p0/thumbnail").content == thumb.content
    assert server.hits["/p0.jpg"] == 1
    # A stored picture is still served from the collection.
    assert client.get("/api/items/stored/image").content == PICTURES["/p3.jpg"]


def test_item_json_says_whether_the_picture_was_fetched_or_why_not(coll: Path) -> None:
    client = TestClient(make_app(coll))
    item = client.get("/api/items/p1").json()
    assert item["has_image"] is True and item["image_status"] == {"source": "remote", "state": "not_fetched"}
    client.get("/api/items/p1/thumbnail")
    assert client.get("/api/items/p1").json()["image_status"]["state"] == "fetched"
    client.get("/api/items/missing/image")
    status = client.get("/api/items/missing").json()["image_status"]
    assert status["state"] == "unavailable" and status["error"]["code"] == "not_found"
    assert "404" in status["error"]["message"]
    assert "image_status" not in client.get("/api/items/stored").json()


FAILURES = {
    "slow": "timeout",
    "missing": "not_found",
    "huge": "too_large",
    "endless": "too_large",
    "html": "not_an_image",
    "page": "not_an_image",
    "dead": "unreachable",
}


@pytest.mark.parametrize("route", ["image", "thumbnail"])
def test_a_picture_that_cannot_be_had_is_a_placeholder_with_the_reason_in_time(
    coll: Path, server: ImageServer, route: str
) -> None:
    client = TestClient(make_app(coll))
    for item, code in FAILURES.items():
        started = time.monotonic()
        r = client.get(f"/api/items/{item}/{route}")
        took = time.monotonic() - started
        assert took < LIMIT, (item, took)
        assert r.status_code == 200, item
        assert r.headers["content-type"] == "image/png" and decoded(r.content).format == "PNG"
        assert r.headers["x-illustra-image"] == "placeholder"
        assert r.headers["x-illustra-image-error"] == code, (item, r.headers["x-illustra-image-reason"])
        assert r.headers["x-illustra-image-reason"]
        assert r.headers["cache-control"] == "no-store" and "etag" not in r.headers
        status = client.get(f"/api/items/{item}").json()["image_status"]
        assert status["state"] == "unavailable" and status["error"]["code"] == code
    # Failures are remembered for a while: asking again does not go back to the source.
    hits = server.total_hits()
    started = time.monotonic()
    for item in FAILURES:
        assert client.get(f"/api/items/{item}/{route}").headers["x-illustra-image-error"] == FAILURES[item]
    assert server.total_hits() == hits and time.monotonic() - started < 1.0


def test_a_dead_host_is_not_asked_again_for_its_other_pictures(coll: Path) -> None:
    app = make_app(coll)
    client = TestClient(app)
    assert client.get("/api/items/dead/thumbnail").headers["x-illustra-image-error"] == "unreachable"
    remote = remote_for(app.state.illustra)
    fetches = remote.fetches
    r = client.get("/api/items/dead2/thumbnail")
    assert r.headers["x-illustra-image-error"] == "unreachable" and remote.fetches == fetches


def test_failures_are_tried_again_after_a_while(coll: Path, server: ImageServer) -> None:
    client = TestClient(make_app(coll, remote_retry_after=0.2))
    client.get("/api/items/missing/image")
    client.get("/api/items/missing/image")
    assert server.hits["/missing.jpg"] == 1
    time.sleep(0.3)
    client.get("/api/items/missing/image")
    assert server.hits["/missing.jpg"] == 2


def test_the_cache_keeps_to_its_cap_dropping_the_least_recently_shown(coll: Path, server: ImageServer) -> None:
    sizes = [len(PICTURES[f"/p{i}.jpg"]) for i in range(3)]
    cap = sum(sizes) - 1  # two pictures fit, three do not
    app = make_app(coll, remote_cache_bytes=cap)
    client = TestClient(app)
    for item in ("p0", "p1", "p0", "p2"):  # p0 shown again before p2 comes: p1 is the oldest
        assert client.get(f"/api/items/{item}/image").status_code == 200
    remote = remote_for(app.state.illustra)
    on_disk = [f for f in (coll / "cache" / "remote").rglob("*") if f.is_file()]
    assert len(on_disk) == 2 and sum(f.stat().st_size for f in on_disk) <= cap
    assert remote.cache.total_bytes <= cap
    assert [server.hits[f"/p{i}.jpg"] for i in range(3)] == [1, 1, 1]
    client.get("/api/items/p0/image")
    client.get("/api/items/p2/image")
    assert [server.hits[f"/p{i}.jpg"] for i in range(3)] == [1, 1, 1]
    client.get("/api/items/p1/image")  # evicted, so fetched again
    assert server.hits["/p1.jpg"] == 2


def test_a_cache_directory_can_be_chosen(coll: Path, tmp_path: Path) -> None:
    where = tmp_path / "elsewhere"
    client = TestClient(make_app(coll, remote_cache_dir=str(where)))
    assert client.get("/api/items/p2/image").status_code == 200
    assert [f for f in where.rglob("*") if f.is_file()] and not (coll / "cache" / "remote").exists()


def test_concurrent_requests_for_one_picture_fetch_it_once(coll: Path, server: ImageServer) -> None:
    running = serve_in_thread(make_app(coll))
    try:
        def get(route: str) -> httpx.Response:
            return httpx.get(f"{running.url}/api/items/gentle/{route}", timeout=10)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(get, ["image", "thumbnail"] * 4))
    finally:
        running.stop()
    assert all(a.status_code == 200 and "x-illustra-image-error" not in a.headers for a in answers)
    assert {a.content for a in answers if a.headers["content-type"] == "image/jpeg"} >= {PICTURES["/p1.jpg"]}
    assert server.hits["/gentle.jpg"] == 1


def test_private_addresses_follow_the_url_fetch_private_setting(coll: Path, server: ImageServer) -> None:
    client = TestClient(make_app(coll, url_fetch_private=False))
    r = client.get("/api/items/p0/thumbnail")
    assert r.headers["x-illustra-image-error"] == "refused" and "url_fetch_private" in r.headers["x-illustra-image-reason"]
    assert server.total_hits() == 0


def test_remote_pictures_can_be_switched_off(coll: Path, server: ImageServer) -> None:
    client = TestClient(make_app(coll, remote_images=False))
    r = client.get("/api/items/p0/image")
    assert r.status_code == 200 and r.headers["x-illustra-image-error"] == "disabled"
    assert server.total_hits() == 0
    assert client.get("/api/items/stored/image").content == PICTURES["/p3.jpg"]


def test_pages_say_in_words_why_a_picture_could_not_be_fetched(coll: Path) -> None:
    client = TestClient(make_app(coll))
    page = client.get("/items/missing").text
    assert "The picture could not be fetched from its source: the source does not have the picture (HTTP 404)." in page
    ok = client.get("/items/p0").text
    assert "could not be fetched" not in ok and "/api/items/p0/image" in ok
    cards = client.get("/search", params={"q": "Plate", "mode": "text", "k": 30}).text
    assert "Picture could not be fetched: the source does not have the picture (HTTP 404)" in cards
    assert "/api/items/p2/thumbnail" in cards


# -- a BL Flickr manifest ingested without --download ---------------------------------------------
FLICKR_HOST = re.compile(r"https?://farm\d+\.staticflickr\.com")


def bl_remote_collection(root: Path, server: ImageServer, rows: int = 24) -> Collection:
    """A BL manifest whose Flickr picture URLs point at ``server`` (each serving a small JPEG),
    ingested without --download, with its keyword index built."""
    text = "\n".join(bl_lines(rows=rows, short=2))
    text = FLICKR_HOST.sub(server.url("/flickr"), text)
    for n, path in enumerate(sorted(set(re.findall(re.escape(server.url("")) + r"(/flickr/[^\t\s]+)", text)))):
        server.routes[path] = Route(body=image_bytes((n * 37 % 256, 90, 160), (60, 40)))
    manifest = write_bl_manifest(root.parent / "bl.tsv", text.split("\n"))
    ingest(root, BLFlickrSource(manifest))
    coll = Collection(root)
    build_text_index(coll, semantic=False, progress=False)
    return Collection(root)


def test_bl_manifest_without_download_shows_its_flickr_pictures(tmp_path: Path, server: ImageServer) -> None:
    coll = bl_remote_collection(tmp_path / "bl", server)
    with_url = [r for r in range(len(coll)) if coll.image_url(r)]
    assert with_url and all(coll.image_url(r).startswith(server.url("/flickr/")) for r in with_url)
    client = TestClient(make_app(tmp_path / "bl"))
    item = str(coll.ids[with_url[0]])
    r = client.get(f"/api/items/{item}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert decoded(r.content).size == (60, 40)
    assert client.get(f"/api/items/{item}").json()["image_status"]["state"] == "fetched"


def test_remote_images_class_is_usable_on_its_own(tmp_path: Path, server: ImageServer) -> None:
    from illustra.api.remote_images import RemoteConfig, RemoteUnavailable

    remote = RemoteImages(RemoteConfig(cache_dir=None, timeout=TIMEOUT, max_bytes=MAX_BYTES, allow_private=True))
    assert remote.get(server.url("/p0.jpg")) == PICTURES["/p0.jpg"]
    assert remote.get(server.url("/p0.jpg")) == PICTURES["/p0.jpg"]  # memory cache without a directory
    assert server.hits["/p0.jpg"] == 1
    with pytest.raises(RemoteUnavailable) as exc:
        remote.get("ftp://127.0.0.1/x.jpg")
    assert exc.value.code == "bad_url"
    remote.close()
