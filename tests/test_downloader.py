"""Downloads against a real HTTP server on 127.0.0.1 that misbehaves in the ways real ones do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from illustra.cli import main
from illustra.collection import Collection
from illustra.errors import DownloadError
from illustra.sources import BLFlickrSource, DownloadConfig, Downloader, ManifestSource, ingest
from illustra.sources.downloader import check_url

from .ingest_helpers import ImageServer, Route, by_id, image_bytes, read_tsv, serve

MAX_BYTES = 200_000
TIMEOUT = 0.5


@pytest.fixture
def server() -> Iterator[ImageServer]:
    jpeg = image_bytes("red", (64, 48))
    state = ImageServer(
        routes={
            "/ok1.jpg": Route(body=jpeg),
            "/ok2.png": Route(body=image_bytes("blue", fmt="PNG"), content_type="image/png"),
            "/generic.jpg": Route(body=jpeg, content_type="application/octet-stream"),
            "/slow.jpg": Route(body=jpeg, delay=TIMEOUT * 3),
            "/flaky.jpg": Route(body=jpeg, fail_first=1),
            "/down.jpg": Route(body=jpeg, fail_first=100),
            "/cut.jpg": Route(body=jpeg, truncate_to=len(jpeg) // 2),
            "/half.jpg": Route(body=jpeg[: len(jpeg) // 2]),
            "/page.html": Route(body=b"<html><body>hello</body></html>", content_type="text/html"),
            "/html-named.jpg": Route(body=b"<html><body>hello</body></html>"),
            "/huge.jpg": Route(body=b"\xff\xd8\xff" + b"\0" * (MAX_BYTES + 10)),
            "/endless.jpg": Route(stream_bytes=100_000_000),
            "/typed-text.jpg": Route(body=jpeg, content_type="text/plain"),
        }
    )
    yield from serve(state)


def config(tmp_path: Path, **kw: object) -> DownloadConfig:
    args: dict[str, object] = {
        "timeout": TIMEOUT,
        "retries": 1,
        "backoff": 0.01,
        "max_bytes": MAX_BYTES,
        "concurrency": 4,
    }
    args.update(kw)
    return DownloadConfig(**args)  # type: ignore[arg-type]


def write_manifest(path: Path, server: ImageServer, names: list[str]) -> Path:
    lines = ["id,image_url,title"]
    for name in names:
        url = name if "://" in name else server.url("/" + name)
        lines.append(f"{name.split('/')[-1].split('.')[0]},{url},Title of {name}")
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = ["ok1.jpg", "ok2.png", "generic.jpg", "flaky.jpg"]
BAD = {
    "missing": "HTTP 404",
    "slow": "timed out",
    "down": "HTTP 500",
    "cut": "connection error",
    "half": "not a valid image",
    "page": "content-type text/html is not an image",
    "html-named": "not a valid image: not an image",
    "huge": "over the 200000-byte limit",
    "endless": "over the 200000-byte limit",
    "typed-text": "content-type text/plain is not an image",
    "e": "unsupported URL scheme 'ftp'",
}
BAD_PATHS = [
    "missing.jpg",
    "slow.jpg",
    "down.jpg",
    "cut.jpg",
    "half.jpg",
    "page.html",
    "html-named.jpg",
    "huge.jpg",
    "endless.jpg",
    "typed-text.jpg",
    "ftp://127.0.0.1/e.jpg",
]


def test_each_failure_is_logged_with_its_reason_and_nothing_is_lost(
    server: ImageServer, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", server, GOOD + BAD_PATHS)
    summary = ingest(tmp_path / "c", ManifestSource(manifest, download=config(tmp_path)))

    coll = Collection(tmp_path / "c")
    assert len(coll) == len(GOOD) + len(BAD) == summary.added
    with_image = {coll.ids[i] for i in range(len(coll)) if coll.has_stored_image(i)}
    assert with_image == {"ok1", "ok2", "generic", "flaky"}
    failures = by_id(read_tsv(tmp_path / "c" / "download_failures.tsv"))
    assert set(failures) == set(BAD)
    for item_id, reason in BAD.items():
        assert reason in failures[item_id]["reason"], (item_id, failures[item_id])
    assert failures["missing"]["url"] == server.url("/missing.jpg")
    # Failed rows keep their metadata and URL.
    row = coll.metadata(coll.row_of("missing"))
    assert row["title"] == "Title of missing.jpg" and row["image_path"] == server.url("/missing.jpg")
    # Retries: transient failures are retried once (retries=1), permanent ones are not.
    assert server.hits["/flaky.jpg"] == 2
    assert server.hits["/down.jpg"] == 2
    assert server.hits["/slow.jpg"] == 2
    assert server.hits["/missing.jpg"] == 1
    assert server.hits["/page.html"] == 1
    assert server.hits["/huge.jpg"] == 1
    assert summary.counts["download_downloaded"] == 4 and summary.counts["download_failed"] == len(BAD)
    # Originals are cached under a hash of the id.
    assert len([p for p in (tmp_path / "c" / "downloads").rglob("*") if p.is_file()]) == 4


def test_oversized_stream_is_cut_off_early(server: ImageServer, tmp_path: Path) -> None:
    with Downloader(config(tmp_path), tmp_path / "c") as dl:
        got = dl.fetch("endless", server.url("/endless.jpg"))
    assert got.image is None and "byte limit" in (got.error or "")
    # The server could not push its 100 MB: the client hung up just past the limit (what was sent
    # beyond that sits in socket buffers).
    assert server.sent["/endless.jpg"] < 25_000_000


def test_rerun_downloads_nothing_new_and_retries_failures(server: ImageServer, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", server, ["ok1.jpg", "ok2.png", "missing.jpg"])
    ingest(tmp_path / "c", ManifestSource(manifest, download=config(tmp_path)))
    hits_before = dict(server.hits)

    # The missing image appears on the server; a re-run fetches only that one.
    server.routes["/missing.jpg"] = Route(body=image_bytes("green"))
    again = ingest(tmp_path / "c", ManifestSource(manifest, download=config(tmp_path)))

    assert server.hits["/ok1.jpg"] == hits_before["/ok1.jpg"] == 1
    assert server.hits["/ok2.png"] == hits_before["/ok2.png"] == 1
    assert server.hits["/missing.jpg"] == 2
    assert again.added == 0 and again.images_filled == 1 and again.already_present == 2
    coll = Collection(tmp_path / "c")
    assert coll.ids.tolist() == ["ok1", "ok2", "missing"]
    assert all(coll.has_image(i) for i in range(3))
    assert read_tsv(tmp_path / "c" / "download_failures.tsv") == []

    third = ingest(tmp_path / "c", ManifestSource(manifest, download=config(tmp_path)))
    assert third.added == 0 and third.already_present == 3
    assert server.hits["/missing.jpg"] == 2


def test_cache_is_reused_after_an_interrupted_run(server: ImageServer, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", server, ["ok1.jpg", "ok2.png"])
    cache = tmp_path / "cache"
    ingest(tmp_path / "c1", ManifestSource(manifest, download=config(tmp_path, cache_dir=cache)))
    hits = server.total_hits()
    # A collection that never got written (e.g. the run was interrupted) finds the originals cached.
    summary = ingest(tmp_path / "c2", ManifestSource(manifest, download=config(tmp_path, cache_dir=cache)))
    assert server.total_hits() == hits
    assert summary.counts["download_cached"] == 2
    assert Collection(tmp_path / "c2").manifest["counts"]["with_image"] == 2


def test_damaged_cache_entry_is_fetched_again(server: ImageServer, tmp_path: Path) -> None:
    with Downloader(config(tmp_path), tmp_path / "c") as dl:
        assert dl.fetch("ok1", server.url("/ok1.jpg")).image is not None
        dl.cache_path("ok1").write_bytes(b"garbage")
        again = dl.fetch("ok1", server.url("/ok1.jpg"))
    assert again.image is not None and not again.from_cache
    assert server.hits["/ok1.jpg"] == 2


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://host/x.jpg", "data:image/png;base64,AAAA", "//host/x"]
)
def test_only_http_and_https_urls(url: str) -> None:
    with pytest.raises(DownloadError, match="unsupported URL scheme"):
        check_url(url)


def test_bl_preset_downloads_the_chosen_size(server: ImageServer, tmp_path: Path, bl_sample: Path) -> None:
    lines = bl_sample.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:] if line.count("\t") == 24][:3]
    col = header.index("flickr_small_source")
    for i, fields in enumerate(rows):
        fields[col] = server.url(f"/bl{i}_m.jpg")
        server.routes[f"/bl{i}_m.jpg"] = Route(body=image_bytes("red"))
    manifest = tmp_path / "bl.tsv"
    manifest.write_text(
        "\n".join(["\t".join(header), *("\t".join(f) for f in rows)]) + "\n", encoding="utf-8"
    )
    result = CliRunner().invoke(
        main,
        [
            "ingest",
            "manifest",
            str(manifest),
            "--preset",
            "bl-flickr",
            "--download",
            "--size",
            "small",
            "--timeout",
            "2",
            "--collection",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("3 added, 0 skipped")
    assert "downloads: 3 fetched, 0 from cache, 0 failed" in result.stderr
    coll = Collection(tmp_path / "c")
    assert all(coll.has_image(i) for i in range(3))
    assert coll.metadata(0)["image_path"] == server.url("/bl0_m.jpg")
    assert BLFlickrSource(manifest, size="small").describe()["image_column"] == "flickr_small_source"
