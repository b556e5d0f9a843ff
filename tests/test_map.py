"""The collection map: layout (UMAP on a sample, the rest placed), resuming, quantised positions,
region labels, the command's refusals, the binary API and the Map page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from illustra.api import RunningServer, create_app, serve_in_thread
from illustra.cli import main
from illustra.collection import Collection
from illustra.encoders import register_encoder
from illustra.guardrails.feedback import FeedbackStore
from illustra.map import MapStore, build_map, layout_path
from illustra.map import layout as lay
from illustra.map.labels import words

from .dupkit import BOOKS, PLATES, build_reuse_collection, plate_id
from .fakes import FakeEncoder


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_encoder("fake", FakeEncoder)
    root = tmp_path_factory.mktemp("map") / "coll"
    build_reuse_collection(root)
    return root


@pytest.fixture(scope="module")
def built(root: Path) -> dict:
    return build_map(Collection(root))


@pytest.fixture(scope="module")
def server(root: Path, built: dict) -> Iterator[RunningServer]:
    register_encoder("fake", FakeEncoder)
    running = serve_in_thread(create_app(root, title="Plates"))
    yield running
    running.stop()


def clustered(n: int, d: int = 24, centres: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d)) * 3
    x = (c[rng.integers(0, centres, n)] + rng.standard_normal((n, d))).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_every_picture_gets_a_position_and_regions_get_names(root: Path, built: dict) -> None:
    assert built["method"] == "umap" and built["placed"] == len(BOOKS) * PLATES == built["items"]
    assert not (root / "map" / "work").exists()  # the work folder goes once the map is written
    m = MapStore(Collection(root)).require()
    assert m.x.dtype == np.uint16 and len(m.x) == len(BOOKS) * PLATES
    assert int(m.x.max()) <= lay.SCALE and int(m.y.max()) <= lay.SCALE
    # The layout fills the square along its longer side.
    assert max(int(m.x.max()) - int(m.x.min()), int(m.y.max()) - int(m.y.min())) > lay.SCALE * 0.9
    # Identical pictures (one plate printed three times) lie together.
    coll = Collection(root)
    a = [coll.row_of(plate_id(b, p)) for b, p in (("R1", 0), ("R2", 0), ("R3", 3))]
    spread = max(np.hypot(int(m.x[i]) - int(m.x[j]), int(m.y[i]) - int(m.y[j])) for i in a for j in a)
    assert spread < lay.SCALE * 0.2
    assert {lab["level"] for lab in m.labels} <= {2, 4, 8, 16, 32} and m.labels
    named = {w for lab in m.labels for w in lab["words"]}
    assert named & {"castle", "castles", "river", "udolpho", "rhine", "thames"}
    assert not named & {"the", "plate", "of"}
    assert all(0 <= lab["x"] <= 1 and 0 <= lab["y"] <= 1 and lab["count"] >= 3 for lab in m.labels)
    assert words("The Castle of Udolpho, plate 3") == ["castle", "udolpho"]


def test_sampled_fit_places_the_rest_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x = clustered(400)
    np.save(tmp_path / "v.npy", x)
    v = np.load(tmp_path / "v.npy", mmap_mode="r")
    plan = lay.LayoutPlan("t", 400, 24, "file:1", sample=120, neighbours=10, min_dist=0.1, seed=0)
    monkeypatch.setattr(lay, "CHUNK_ROWS", 70)
    full, method = lay.compute_layout(v, plan, tmp_path / "full")
    assert method == "umap+placed" and np.isfinite(full).all()

    class Stop(Exception):
        pass

    def stop(phase: str, done: int, total: int) -> None:
        if phase == "placing" and done == 2:
            raise Stop

    with pytest.raises(Stop):
        lay.compute_layout(v, plan, tmp_path / "work", stop)
    chunks = sorted((tmp_path / "work").glob("placed-*.npz"))
    assert len(chunks) == 2 and (tmp_path / "work" / "fit.npz").is_file()
    stamps = {p: p.stat().st_mtime_ns for p in chunks}
    again, _ = lay.compute_layout(v, plan, tmp_path / "work")
    assert {p: p.stat().st_mtime_ns for p in chunks} == stamps
    np.testing.assert_allclose(again, full, atol=1e-5)
    # A placed point lies among the fitted points of its own cluster.
    sample = np.sort(np.random.default_rng(1).choice(400, 120, replace=False))
    rest = np.setdiff1d(np.arange(400), sample)
    nearest = np.argmax(x[rest] @ x[sample].T, axis=1)
    dist = np.hypot(*(full[rest] - full[sample][nearest]).T)
    extent = np.ptp(full, axis=0).max()
    assert np.median(dist) < 0.1 * extent


def test_placement_and_quantisation() -> None:
    pts = np.array([[0, 0], [1, 0], [0, 1]], np.float32)
    xy = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    np.testing.assert_allclose(lay.place(pts, xy, pts[:1] + 1e-4, 1)[0], [0, 0])
    near_first = lay.place(pts, xy, pts[:1] + 1e-4, 2)[0]  # pulled towards the second, less
    assert 0 < near_first[0] < 5 and near_first[1] == 0
    qx, qy, bounds = lay.quantise(np.array([[0, 0], [2, 1], [np.nan, np.nan]], np.float32))
    assert qx.tolist()[:2] == [0, lay.SCALE] and qx[2] == lay.NO_POSITION == qy[2]
    assert qy[0] > qy[1]  # y grows downwards on screen
    assert bounds["x1"] - bounds["x0"] == pytest.approx(bounds["y1"] - bounds["y0"])


def test_command_refuses_what_it_cannot_map(tmp_path: Path, root: Path) -> None:
    text_only = tmp_path / "text"
    Collection.create(text_only, [{"id": "a", "title": "No picture"}], source={"kind": "test"})
    res = CliRunner().invoke(main, ["map", "--collection", str(text_only)])
    assert res.exit_code == 4 and "no picture vectors" in res.stderr and res.stderr.count("\n") == 1
    assert not layout_path(Collection(text_only)).exists()
    res = CliRunner().invoke(main, ["map", "--collection", str(root), "--sample", "1"])
    assert res.exit_code == 2 and "--sample" in res.stderr


def test_api_serves_binary_positions_titles_and_highlights(server: RunningServer, root: Path) -> None:
    coll = Collection(root)
    n = len(coll)
    with httpx.Client(base_url=server.url, timeout=60) as c:
        meta = c.get("/api/map").json()
        assert meta["items"] == n and meta["placed"] == n and meta["no_position"] == 65535
        assert len(meta["chunks"]) == 1 and meta["chunks"][0]["count"] == n
        pts = c.get(meta["chunks"][0]["url"])
        assert pts.headers["content-type"] == "application/octet-stream" and len(pts.content) == 4 * n
        xy = np.frombuffer(pts.content, "<u2").reshape(-1, 2)
        m = MapStore(coll).require()
        assert xy[:, 0].tolist() == m.x.tolist() and xy[:, 1].tolist() == m.y.tolist()
        assert c.get("/api/map/points/3").status_code == 404

        rows = [coll.row_of(plate_id("R2", 1)), 0, 10_000]
        got = c.get("/api/map/items", params={"rows": ",".join(map(str, rows))}).json()["items"]
        assert [g["row"] for g in got] == rows[:2]
        assert got[0]["title"] == "Castles of the Rhine, plate 2" and got[0]["page_url"] == "/items/R2/p1"
        assert got[0]["thumbnail_url"] == "/api/items/R2/p1/thumbnail"
        assert c.get("/api/map/items", params={"rows": "1,x"}).status_code == 422

        def marked(**params: str) -> set[int]:
            r = c.get("/api/map/highlight", params=params)
            assert r.status_code == 200, r.text
            bits = np.unpackbits(np.frombuffer(r.content, np.uint8), bitorder="little")[:n]
            assert int(r.headers["x-illustra-matches"]) == int(bits.sum())
            return set(np.flatnonzero(bits).tolist())

        castle = marked(q="castle", mode="text")
        assert {str(coll.ids[r]).split("/")[0] for r in castle} == {"R1", "R2"} and len(castle) == 2 * PLATES
        assert {str(coll.ids[r]) for r in marked(book_identifier="R3")} == {plate_id("R3", p) for p in range(PLATES)}
        assert marked() == set()
        bad = c.get("/api/map/highlight", params={"q": "castle", "colour": "red"})
        assert bad.status_code == 422 and "unknown parameter" in bad.json()["error"]["message"]

        # An item its owner hid leaves the map.
        FeedbackStore(root).hide(plate_id("R4", 4))
        hidden_row = coll.row_of(plate_id("R4", 4))
        xy = np.frombuffer(c.get("/api/map/points/0").content, "<u2").reshape(-1, 2)
        assert xy[hidden_row].tolist() == [65535, 65535] and xy[0].tolist() != [65535, 65535]

        page = c.get("/map", params={"q": "castle", "mode": "text"})
        assert page.status_code == 200 and "<canvas" in page.text and "/static/map.js" in page.text
        assert 'data-highlight="/api/map/highlight?q=castle&amp;mode=text"' in page.text
        assert "Regions of the map" in page.text
        results = c.get("/search", params={"q": "castle", "mode": "text"}).text
        assert 'href="/map?q=castle&amp;mode=text"' in results


def test_nothing_is_served_before_the_map_is_built(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    build_reuse_collection(fresh)
    running = serve_in_thread(create_app(fresh))
    try:
        with httpx.Client(base_url=running.url, timeout=30) as c:
            message = "the collection map has not been built yet; run 'illustra map'"
            for path in ("/api/map", "/api/map/points/0", "/api/map/items?rows=1", "/api/map/highlight?q=x"):
                r = c.get(path)
                assert r.status_code == 409 and r.json() == {"error": {"code": "not_built", "message": message}}
            page = c.get("/map")
            assert page.status_code == 409 and "There is no map of this collection yet" in page.text
            assert "illustra map --collection" in page.text
            assert "See these results on the map" not in c.get("/search", params={"q": "castle"}).text
    finally:
        running.stop()
