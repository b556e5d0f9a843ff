"""Near-duplicates: the neighbour graph against exact search, clusters, resuming, the command's
listings and exports, and its refusals."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from illustra.cli import main
from illustra.collection import Collection
from illustra.duplicates import (
    DEFAULT_THRESHOLD,
    DuplicateStore,
    build_duplicates,
    check_threshold,
    clusters_path,
)
from illustra.duplicates.clusters import connected
from illustra.duplicates.graph import GraphPlan, build_graph, fingerprint_of
from illustra.duplicates.listing import near_copies
from illustra.errors import BadInput, NotBuilt, NotEmbedded

from .fakes import COLOURS
from .searchkit import build_colour_collection

ILLUSTRA = [sys.executable, "-m", "illustra"]


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(*args: str) -> Ran:
    """The command in this process (fast); ``run_process`` runs the installed one."""
    res = CliRunner().invoke(main, list(args))
    return Ran(res.exit_code, res.stdout, res.stderr)


def run_process(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([*ILLUSTRA, *args], capture_output=True, text=True, env=env, timeout=300)


def planted(n: int = 6000, d: int = 32, copies: int = 400, seed: int = 0) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """Random unit vectors, ``copies`` of them with a noisy near-copy elsewhere in the set."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    src = rng.choice(n // 2, copies, replace=False)
    dst = n // 2 + rng.choice(n // 2, copies, replace=False)
    x[dst] = x[src] + 0.15 * rng.standard_normal((copies, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, {(int(a), int(b)) for a, b in zip(src, dst, strict=True)}


def exact_pairs(x: np.ndarray, t: float) -> set[tuple[int, int]]:
    s = x @ x.T
    a, b = np.nonzero(np.triu(s >= t, 1))
    return set(zip(a.tolist(), b.tolist(), strict=True))


@pytest.fixture
def colour_coll(tmp_path: Path) -> Path:
    root = tmp_path / "coll"
    build_colour_collection(root, metadata_only=2)
    return root


def test_graph_finds_the_exact_pairs_through_cells(tmp_path: Path) -> None:
    x, planted_pairs = planted()
    np.save(tmp_path / "v.npy", x)
    v = np.load(tmp_path / "v.npy", mmap_mode="r")
    truth = exact_pairs(x, 0.9)
    assert planted_pairs <= truth and len(truth) >= 400
    plan = GraphPlan.make("t", v, fingerprint_of(v), k=16, floor=0.8, probe=4, cells=60)
    assert plan.cells == 60 and plan.probe == 4
    a, b, s = build_graph(v, plan, tmp_path / "work")
    assert np.all(a < b) and np.all(s >= 0.8)
    found = set(zip(a[s >= 0.9].tolist(), b[s >= 0.9].tolist(), strict=True))
    assert found <= truth  # every edge is a true pair with its exact score
    assert len(found & truth) / len(truth) >= 0.97
    np.testing.assert_allclose(s, np.sum(x[a] * x[b], axis=1), atol=1e-5)
    # One cell is exact: every pair comes back.
    exact = GraphPlan.make("t", v, fingerprint_of(v), k=16, floor=0.8, probe=4, cells=1)
    a1, b1, s1 = build_graph(v, exact, tmp_path / "work1")
    assert set(zip(a1[s1 >= 0.9].tolist(), b1[s1 >= 0.9].tolist(), strict=True)) == truth


def test_graph_resumes_from_finished_chunks(tmp_path: Path) -> None:
    x, _ = planted(seed=1)
    np.save(tmp_path / "v.npy", x)
    v = np.load(tmp_path / "v.npy", mmap_mode="r")
    plan = GraphPlan.make("t", v, fingerprint_of(v), k=16, floor=0.8, probe=4, cells=80)
    full = build_graph(v, plan, tmp_path / "full")

    class Stop(Exception):
        pass

    def stop_after(phase: str, done: int, total: int) -> None:
        if phase == "comparing" and done == 20:
            raise Stop

    with pytest.raises(Stop):
        build_graph(v, plan, tmp_path / "work", stop_after)
    finished = sorted(p.name for p in (tmp_path / "work").glob("edges-*.npz"))
    assert len(finished) == 20
    before = {n: (tmp_path / "work" / n).stat().st_mtime_ns for n in finished}
    seen: list[tuple[str, int, int]] = []
    resumed = build_graph(v, plan, tmp_path / "work", lambda *a: seen.append(a))
    for name, stamp in before.items():  # finished chunks were read, not computed again
        assert (tmp_path / "work" / name).stat().st_mtime_ns == stamp
    assert seen[-1][1:] == (seen[-1][2], seen[-1][2])
    for got, want in zip(resumed, full, strict=True):
        np.testing.assert_array_equal(got, want)
    # Work for other vectors is thrown away, not mixed in.
    other = GraphPlan.make("t", v, "file:other", k=16, floor=0.8, probe=4, cells=80)
    build_graph(v, other, tmp_path / "work")
    assert json.loads((tmp_path / "work" / "plan.json").read_text())["fingerprint"] == "file:other"


def test_connected_numbers_clusters_largest_first() -> None:
    groups = connected(10, np.array([7, 1, 2, 8]), np.array([9, 2, 3, 9]))
    assert len(groups) == 2
    assert groups.rows_of(0).tolist() == [1, 2, 3]
    assert groups.rows_of(1).tolist() == [7, 8, 9]
    assert groups.of_row(0) == -1 and groups.of_row(2) == 0 and groups.of_row(8) == 1
    assert groups.with_min_size(3).tolist() == [0, 1]
    assert connected(4, np.zeros(0, np.int64), np.zeros(0, np.int64)).of_row(1) == -1


def test_colour_collection_groups_by_colour(colour_coll: Path) -> None:
    coll = Collection(colour_coll)
    summary = build_duplicates(coll, 0.99, cells=3)  # three cells: the cell path, not one block
    assert summary["clusters"] == len(COLOURS)
    assert summary["items_in_clusters"] == 6 * len(COLOURS)
    assert summary["space"] == "fake"
    clusters = DuplicateStore(coll).require()
    ids = coll.ids
    for c in range(len(clusters)):
        colours = {str(ids[r]).split("/")[0] for r in clusters.rows_of(c)}
        assert len(colours) == 1 and clusters.size(c) == 6
    text_only = coll.row_of("text-only/0")
    assert clusters.of_row(text_only) == -1
    cluster, others, scores = near_copies(coll, clusters, coll.row_of("red/00"))
    assert cluster >= 0 and len(others) == 5
    assert {str(ids[r]) for r in others} == {f"red/{j:02d}" for j in range(1, 6)}
    assert np.all(scores > 0.99)


def test_regrouping_reuses_the_graph_and_keeps_serving_the_old_build(colour_coll: Path) -> None:
    coll = Collection(colour_coll)
    build_duplicates(coll, 0.99)
    store = DuplicateStore(coll)
    first = store.require()
    graph_stamp = (colour_coll / "duplicates" / "graph.npz").stat().st_mtime_ns
    notes: list[str] = []
    # A looser threshold joins colours that lie close together in the fake space.
    summary = build_duplicates(coll, 0.81, notify=notes.append)
    assert any("reusing the neighbour graph" in n for n in notes)
    assert (colour_coll / "duplicates" / "graph.npz").stat().st_mtime_ns == graph_stamp
    second = store.require()
    assert second is not first and second.meta["threshold"] == 0.81
    assert summary["clusters"] <= len(COLOURS)
    # Below the graph's floor the graph is built again.
    build_duplicates(coll, 0.5, notify=notes.append)
    assert (colour_coll / "duplicates" / "graph.npz").stat().st_mtime_ns != graph_stamp
    assert not (colour_coll / "duplicates" / "graph-work").exists()


def test_bad_thresholds_and_missing_builds(tmp_path: Path, colour_coll: Path) -> None:
    for bad in (0, -0.1, 1.01, "nan", "abc", float("inf")):
        with pytest.raises(BadInput, match="threshold"):
            check_threshold(bad)
    assert check_threshold(1) == 1.0 and check_threshold(None) == DEFAULT_THRESHOLD == 0.94
    with pytest.raises(NotBuilt, match="run 'illustra duplicates'"):
        DuplicateStore(Collection(colour_coll)).require()
    text_only = tmp_path / "text"
    Collection.create(text_only, [{"id": "a", "title": "No picture"}], source={"kind": "test"})
    with pytest.raises(NotEmbedded, match="no picture vectors"):
        build_duplicates(Collection(text_only))
    assert not clusters_path(Collection(text_only)).exists()


def test_command_builds_lists_and_exports(colour_coll: Path, tmp_path: Path) -> None:
    coll = str(colour_coll)
    out = run("duplicates", "--collection", coll, "--list")
    assert out.returncode == 4 and out.stderr.strip() == (
        "error: near-duplicates have not been found for this collection yet; run 'illustra duplicates'"
    )
    for bad in ("0", "1.5", "x"):
        out = run("duplicates", "--collection", coll, "--threshold", bad)
        assert out.returncode == 2 and "threshold" in out.stderr and out.stderr.count("\n") == 1
    assert not (colour_coll / "duplicates" / "clusters.npz").exists()

    out = run_process("duplicates", "--collection", coll, "--threshold", "0.99", "--no-progress", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["clusters"] == len(COLOURS) and summary["threshold"] == 0.99

    listed = json.loads(run("duplicates", "--collection", coll, "--list", "--json").stdout)
    assert len(listed["clusters"]) == len(COLOURS)
    first = listed["clusters"][0]
    assert first["size"] == 6 and first["books"] == 6 and len(first["items"]) == 6
    assert json.loads(run("duplicates", "--collection", coll, "--list", "--json", "--min-size", "7").stdout)[
        "clusters"
    ] == []
    text = run("duplicates", "--collection", coll, "--list").stdout
    assert text.startswith(f"{len(COLOURS)} clusters of at least 2 items") and "(+1)" in text

    target = tmp_path / "clusters.csv"
    out = run("duplicates", "--collection", coll, "--csv", str(target))
    assert out.returncode == 0 and f"wrote {len(COLOURS)} clusters" in out.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 6 * len(COLOURS)
    assert {r["cluster"] for r in rows} == {str(c) for c in range(len(COLOURS))}
    red = [r for r in rows if r["id"].startswith("red/")]
    assert len({r["cluster"] for r in red}) == 1 and red[0]["title"].startswith("A red plate")
    stdout_csv = run("duplicates", "--collection", coll, "--csv", "-").stdout
    assert stdout_csv.splitlines()[0] == "cluster,size,books,id,book_identifier,title,year"


def test_reader_reads_rows_from_the_file_not_the_mapping(tmp_path: Path) -> None:
    from illustra.vector_reader import VectorReader

    x = np.random.default_rng(3).standard_normal((500, 24)).astype(np.float32)
    np.save(tmp_path / "v.npy", x)
    v = np.load(tmp_path / "v.npy", mmap_mode="r")
    rows = np.array([0, 1, 2, 7, 9, 10, 499])
    with VectorReader(v) as reader:
        assert reader._fd is not None  # read with preadv, not through the mapping
        np.testing.assert_array_equal(reader.take(rows), x[rows])
        np.testing.assert_array_equal(reader.block(490, 600), x[490:])
        assert reader.take(np.zeros(0, np.int64)).shape == (0, 24)
    with VectorReader(x) as in_memory:  # an array in memory is simply indexed
        np.testing.assert_array_equal(in_memory.take(rows), x[rows])
