"""Milvus as the vector backend, with Milvus Lite embedded (a .db under tmp_path) and, for several
server processes, Milvus Lite's own gRPC server: the same answers as FAISS through the one search
service, filters that no value can widen, resumable re-indexing that never serves a half-built
collection, and one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from illustra import milvus_build
from illustra.api import create_app, serve_in_thread
from illustra.cli import main
from illustra.collection import Collection
from illustra.errors import BackendUnavailable, BadInput, ModelMismatch
from illustra.guardrails.feedback import FeedbackStore
from illustra.milvus_build import MilvusIndexStage, build_milvus_index
from illustra.milvus_client import connect, disconnect
from illustra.milvus_filters import ExpressionBuilder, quote
from illustra.milvus_index import MilvusIndex
from illustra.search import SearchService
from illustra.search.filters import Filters
from illustra.vector_backend import FaissBackend

from . import tiny_clip
from .milvuskit import (
    HOSTILE,
    INJECTIONS,
    build_filter_collection,
    build_synthetic_collection,
    copy_collection,
)
from .searchkit import colour_rows, embed_with

tiny_clip_dir = tiny_clip.tiny_clip_dir

QUERIES = ["red", "blue", "yellow", "white", "purple plate", "green"]


def ids(resp: Any) -> list[str]:
    return [h.id for h in resp.results]


def assert_same_ranking(a: Any, b: Any, what: object = "") -> None:
    """The same hits with the same scores in the same order; hits whose scores tie (within float
    rounding: the two engines compute the products separately) may come in either order, and the
    tied group at the cut may be cut differently."""
    sa, sb = [h.score for h in a.results], [h.score for h in b.results]
    assert sb == pytest.approx(sa, abs=1e-5), what
    i = 0
    while i < len(sa):
        j = i
        while j < len(sa) and abs(sa[j] - sa[i]) <= 1e-5:
            j += 1
        if j < len(sa):  # a group inside the page: the same items
            assert set(ids(b)[i:j]) == set(ids(a)[i:j]), what
        i = j


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same collection twice: searched through FAISS, and through Milvus Lite."""
    from illustra.encoders import register_encoder

    from .fakes import FakeEncoder

    register_encoder("fake", FakeEncoder)  # the autouse fixture is function-scoped
    base = tmp_path_factory.mktemp("milvus")
    faiss_dir = base / "faiss"
    build_filter_collection(faiss_dir)
    milvus_dir = copy_collection(faiss_dir, base / "milvus")
    uri = str(base / "lite.db")
    MilvusIndexStage(None, uri).build(milvus_dir, False)
    return {"faiss": faiss_dir, "milvus": milvus_dir, "uri": uri, "base": base}


@pytest.fixture(scope="module")
def services(pair: dict[str, Any]) -> tuple[SearchService, SearchService]:
    return SearchService(pair["faiss"]), SearchService(pair["milvus"])


def filter_cases() -> list[Filters]:
    cases = [
        Filters(),
        Filters(fields={"place": "London"}),
        Filters(fields={"creator": "  smith, JOHN "}),
        Filters(year_from=1800, year_to=1820),
        Filters(year_from=1830, include_undated=True),
        Filters(year_to=1850),
        Filters(title_contains="plate"),
        Filters(title_contains="BLUE plate"),
        Filters(fields={"book_identifier": "b1"}),
        Filters(fields={"place": "Paris"}, year_from=1800, year_to=1840),
    ]
    cases += [Filters(fields={"place": v}) for v in HOSTILE]
    cases += [Filters(fields={"creator": v}) for v in INJECTIONS]
    cases += [
        Filters(title_contains=v) for v in ["100%", "_under_", "\\", "%", "_", "' or 1==1 or '", 'q"uote']
    ]
    return cases


def test_backend_is_chosen_from_index_json(
    services: tuple[SearchService, SearchService], pair: dict[str, Any]
) -> None:
    faiss_svc, milvus_svc = services
    assert isinstance(faiss_svc.index, FaissBackend)
    assert isinstance(milvus_svc.index, MilvusIndex)
    info = json.loads((pair["milvus"] / "index" / "fake" / "index.json").read_text())
    assert info["backend"] == "milvus" and info["milvus"]["uri"] == str(Path(pair["uri"]).resolve())
    assert info["kind"] == "milvus-flat" and info["count"] == len(milvus_svc.index)
    assert Collection(pair["milvus"]).manifest["indexes"]["fake"]["backend"] == "milvus"


def test_same_ranking_as_exact_faiss_with_and_without_filters(
    services: tuple[SearchService, SearchService],
) -> None:
    faiss_svc, milvus_svc = services
    overlaps = []
    for f in filter_cases():
        for q in QUERIES:
            a = faiss_svc.search_text(q, k=10, filters=f, mode="visual")
            b = milvus_svc.search_text(q, k=10, filters=f, mode="visual")
            assert_same_ranking(a, b, (f, q))
            assert (b.has_more, b.undated_excluded) == (a.has_more, a.undated_excluded), (f, q)
            if ids(a):
                overlaps.append(len(set(ids(a)) & set(ids(b))) / len(ids(a)))
    assert np.mean(overlaps) >= 0.95 and len(overlaps) > 100


def test_ranking_within_a_callers_row_mask(services: tuple[SearchService, SearchService]) -> None:
    """Callers with a mask of their own (facets) rank within it in Milvus too: a permissive mask is
    sent as the rows left out, a selective one as the rows kept."""
    faiss_svc, milvus_svc = services
    q = faiss_svc.embed_text("blue")
    n = len(faiss_svc.collection)
    for mask in [np.arange(n) % 7 != 0, np.arange(n) % 7 == 0, np.zeros(n, bool)]:
        a_scores, a_rows = faiss_svc.rank_within(q, 12, mask)
        b_scores, b_rows = milvus_svc.rank_within(q, 12, mask)
        assert mask[b_rows].all() and len(b_rows) == len(a_rows)
        assert b_scores == pytest.approx(a_scores, abs=1e-5)
        if len(a_rows):  # the same items above the lowest score (a tie there may be cut either way)
            cut = a_scores.min() + 1e-5
            assert set(b_rows[b_scores > cut]) == set(a_rows[a_scores > cut])
        else:
            assert not mask.any()


def test_hostile_values_match_exactly_and_injections_never_widen(
    services: tuple[SearchService, SearchService],
) -> None:
    _, svc = services
    for i, value in enumerate(HOSTILE):
        for field in ("place", "creator"):
            resp = svc.search_text("red", k=50, filters=Filters(fields={field: value}), mode="visual")
            assert ids(resp) == [f"hostile/{i}"], (field, value)
    everything = len(svc.search_text("red", k=1000, mode="visual").results)
    for value in INJECTIONS:
        resp = svc.search_text("red", k=1000, filters=Filters(fields={"place": value}), mode="visual")
        assert len(resp.results) < everything
        assert all(h.metadata["place"].lower() == value.strip().lower() for h in resp.results), value
    for needle in ["%", "_", "\\", "' or 1==1 or '"]:
        resp = svc.search_text("red", k=1000, filters=Filters(title_contains=needle), mode="visual")
        assert resp.results and all(needle in h.metadata["title"].lower() for h in resp.results), needle


def test_expression_never_holds_a_value_with_templates() -> None:
    builder = ExpressionBuilder({"place": "f_place"}, has_title=True, templates=True)
    value = "London' or 1==1 or 'x"
    expr = builder.build(Filters(fields={"place": value}, year_from=1800), excluded_rows=[3, 1])
    assert "London" not in expr.text and "1800" not in expr.text
    assert sorted(map(str, expr.params.values())) == sorted(
        ["london' or 1==1 or 'x", "-2147483648", "1800", "[1, 3]"]
    )
    literal = ExpressionBuilder({"place": "f_place"}, has_title=True, templates=False)
    assert literal.build(Filters(fields={"place": value})).text == "(f_place == 'london\\' or 1==1 or \\'x')"
    assert quote('a\\b"c\nd') == "'a\\\\b\\\"c\\nd'"
    with pytest.raises(BadInput, match="cannot filter on 'image_path'"):
        builder.build(Filters(fields={"image_path": "x"}))


def test_paging(services: tuple[SearchService, SearchService]) -> None:
    faiss_svc, milvus_svc = services
    for f in [Filters(), Filters(fields={"place": "London"}), Filters(year_from=1810)]:
        whole = ids(milvus_svc.search_text("red", k=15, filters=f, mode="visual"))
        pages = []
        for offset in (0, 5, 10):
            page = milvus_svc.search_text("red", k=5, offset=offset, filters=f, mode="visual")
            assert_same_ranking(
                faiss_svc.search_text("red", k=5, offset=offset, filters=f, mode="visual"), page
            )
            assert [h.rank for h in page.results] == list(range(offset + 1, offset + 1 + len(page.results)))
            pages += ids(page)
        assert pages == whole and len(set(pages)) == len(pages)


def test_hidden_items_leave_milvus_results(
    services: tuple[SearchService, SearchService], pair: dict[str, Any]
) -> None:
    faiss_svc, milvus_svc = services
    top = ids(milvus_svc.search_text("red", k=3, mode="visual"))
    stores = [FeedbackStore(pair["faiss"]), FeedbackStore(pair["milvus"])]
    try:
        for s in stores:
            s.hide(top[0])
        after = milvus_svc.search_text("red", k=10, mode="visual")
        assert top[0] not in ids(after) and ids(after)[:2] == top[1:3]
        assert_same_ranking(faiss_svc.search_text("red", k=10, mode="visual"), after)
        assert top[0] not in ids(milvus_svc.search_like(top[1], k=20))
    finally:
        for s in stores:
            s.unhide(top[0])
    assert ids(milvus_svc.search_text("red", k=3, mode="visual")) == top


def test_more_like_this(services: tuple[SearchService, SearchService]) -> None:
    faiss_svc, milvus_svc = services
    for item in ["red/01", "books/b1/p2", "hostile/3", "ü/ß/漢字"]:
        for f in [None, Filters(fields={"place": "London"}), Filters(year_from=1850)]:
            b = milvus_svc.search_like(item, k=8, filters=f)
            assert_same_ranking(faiss_svc.search_like(item, k=8, filters=f), b, (item, f))
            assert item not in ids(b)


def test_hybrid_mode_through_the_service(services: tuple[SearchService, SearchService]) -> None:
    faiss_svc, milvus_svc = services
    for q, f in [
        ("blue plate", None),
        ("red hostile", Filters(year_from=1800)),
        ("plate", Filters(fields={"place": "Paris"})),
    ]:
        a = faiss_svc.search_text(q, k=10, filters=f, mode="hybrid")
        b = milvus_svc.search_text(q, k=10, filters=f, mode="hybrid")
        assert ids(b) == ids(a) and ids(b), q
        assert [h.explain["visual_score"] for h in b.results] == [
            h.explain["visual_score"] for h in a.results
        ]
        assert [h.explain["visual_rank"] for h in b.results] == [h.explain["visual_rank"] for h in a.results]


def test_api_answers_from_milvus(services: tuple[SearchService, SearchService]) -> None:
    faiss_svc, milvus_svc = services
    server = serve_in_thread(create_app(milvus_svc))
    try:
        r = httpx.get(
            f"{server.url}/api/search", params={"q": "red", "k": 5, "mode": "visual", "place": "London"}
        )
        assert r.status_code == 200, r.text
        want = ids(
            faiss_svc.search_text("red", k=5, filters=Filters(fields={"place": "London"}), mode="visual")
        )
        assert [h["id"] for h in r.json()["results"]] == want
        r = httpx.get(f"{server.url}/api/items/red/01/similar", params={"k": 4})
        assert [h["id"] for h in r.json()["results"]] == ids(faiss_svc.search_like("red/01", k=4))
        r = httpx.get(
            f"{server.url}/api/search",
            params={"q": "red", "place": "x' or 1==1 or 'a'=='a", "mode": "visual"},
        )
        assert [h["id"] for h in r.json()["results"]] == ["hostile/0"]
        bad = httpx.get(f"{server.url}/api/search", params={"q": "red", "image_path": "x"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_input"
    finally:
        server.stop()


def test_eval_runs_unchanged(pair: dict[str, Any], tmp_path: Path) -> None:
    """``illustra eval`` over the Milvus-backed collection gives the FAISS-backed one's figures."""
    queries = tmp_path / "q.jsonl"
    judged = [
        {"query": "red", "relevant_ids": [f"red/{i:02d}" for i in range(3)]},
        {"query": "blue plate", "relevant_ids": ["blue/00", "books/b1/p1", "books/b1/p3"]},
        {"query": "white", "relevant_ids": ["books/b2/p1", "white/04"]},
    ]
    queries.write_text("".join(json.dumps(j) + "\n" for j in judged))
    figures = []
    for root in (pair["faiss"], pair["milvus"]):
        args = [
            "eval",
            "--collection",
            str(root),
            "--queries",
            str(queries),
            "--mode",
            "visual,hybrid",
            "--json",
        ]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
        figures.append(json.loads(r.output[r.output.index("{") :])["comparison"])
    assert figures[1] == figures[0] and figures[0][0]["map"] > 0.3


def test_approximate_indexes_keep_recall(tmp_path: Path) -> None:
    """HNSW and IVF_SQ8 in Milvus Lite: recall@10 against exact search, filtered and not."""
    coll, vecs = build_synthetic_collection(tmp_path / "syn", 4000, 32)
    rng = np.random.default_rng(1)
    queries = vecs[rng.choice(len(vecs), 25, replace=False)] + 0.05 * rng.standard_normal((25, 32)).astype(
        np.float32
    )
    cases = [
        Filters(),
        Filters(fields={"place": "Oxford"}),
        Filters(year_from=1750, year_to=1760),
        Filters(fields={"book_identifier": "b5"}),
    ]
    for kind in ("hnsw", "ivfsq"):
        build_milvus_index(coll, "synthetic", str(tmp_path / f"{kind}.db"), f"syn_{kind}", kind)
        svc = SearchService(coll)
        assert (
            isinstance(svc.index, MilvusIndex)
            and svc.index.index_type == {"hnsw": "HNSW", "ivfsq": "IVF_SQ8"}[kind]
        )
        for f in cases:
            mask = svc.row_mask(f)
            recalls = []
            for q in queries:
                exact = vecs @ q
                allowed = np.arange(len(vecs)) if mask is None else np.flatnonzero(mask)
                truth = allowed[np.argsort(-exact[allowed], kind="stable")[:10]]
                _, rows = svc.vector_ranking(q, 10, f)
                assert len(rows) == min(10, len(allowed)) and (mask is None or mask[rows].all())
                recalls.append(len(set(rows.tolist()) & set(truth.tolist())) / len(truth))
            assert np.mean(recalls) >= 0.95, (kind, f, np.mean(recalls))


def test_reindex_resumes_and_never_serves_half_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    coll, _ = build_synthetic_collection(tmp_path / "syn", 600, 16)
    uri = str(tmp_path / "re.db")
    first = build_milvus_index(coll, "synthetic", uri, "syn_re")
    svc = SearchService(coll)
    q = np.ones(16, np.float32) / 4
    before = svc.vector_ranking(q, 10, None)[1].tolist()

    monkeypatch.setattr(milvus_build, "INSERT_BYTES", 64 * 4 * 16)  # batches of 64 vectors
    real_insert = milvus_build._Columns.records
    calls = {"n": 0}

    def dying(self: Any, rows: np.ndarray, vecs: np.ndarray) -> list[dict[str, Any]]:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_insert(self, rows, vecs)

    monkeypatch.setattr(milvus_build._Columns, "records", dying)
    with pytest.raises(KeyboardInterrupt):
        build_milvus_index(coll, "synthetic", uri, "syn_re")
    state = json.loads((tmp_path / "syn" / "index" / "synthetic" / "milvus_build.json").read_text())
    assert state["done"] == 3 * 64 and state["physical"] != first["milvus"]["physical"]
    # Still served from the finished collection, by the open service and a new one.
    assert svc.vector_ranking(q, 10, None)[1].tolist() == before
    assert SearchService(coll).vector_ranking(q, 10, None)[1].tolist() == before

    monkeypatch.setattr(milvus_build._Columns, "records", real_insert)
    said: list[str] = []
    second = build_milvus_index(coll, "synthetic", uri, "syn_re", notify=said.append)
    assert any("resuming" in s and "192 of 600" in s for s in said)
    assert second["milvus"]["physical"] == state["physical"]
    client = connect(uri)
    assert client.query("syn_re", filter="", output_fields=["count(*)"])[0]["count(*)"] == 600
    assert not client.has_collection(first["milvus"]["physical"])  # the old one is dropped
    assert not (tmp_path / "syn" / "index" / "synthetic" / "milvus_build.json").exists()
    assert svc.vector_ranking(q, 10, None)[1].tolist() == before  # the open service follows the alias


def test_other_model_or_dimension_is_refused(tmp_path: Path) -> None:
    coll, _ = build_synthetic_collection(tmp_path / "a", 50, 16)
    other, _ = build_synthetic_collection(tmp_path / "b", 50, 24, model="wide")
    uri = str(tmp_path / "m.db")
    build_milvus_index(coll, "synthetic", uri, "shared")
    with pytest.raises(
        ModelMismatch, match=r"holds vectors of 'synthetic' \(dim 16\), not 'wide' \(dim 24\)"
    ):
        build_milvus_index(other, "wide", uri, "shared")
    # A second collection of the same model takes the name over only by rebuilding it; the first
    # collection then says so instead of answering with the other's vectors.
    twin, _ = build_synthetic_collection(tmp_path / "c", 50, 16)
    with pytest.raises(BadInput, match="another Illustra collection"):
        build_milvus_index(twin, "synthetic", uri, "shared")
    info_path = tmp_path / "a" / "index" / "synthetic" / "index.json"
    info = json.loads(info_path.read_text())
    info["dim"] = 32
    info_path.write_text(json.dumps(info))
    with pytest.raises(ModelMismatch, match="holds 'synthetic', dim 16"):
        _ = SearchService(Collection(tmp_path / "a")).index


def test_one_line_errors_from_the_cli(
    pair: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    dead = f"http://127.0.0.1:{_free_port()}"
    r = runner.invoke(
        main, ["index", "--collection", str(pair["faiss"]), "--backend", "milvus", "--milvus-uri", dead]
    )
    assert r.exit_code == 9 and r.output.count("\n") == 1 and "cannot reach Milvus at" in r.output, r.output
    r = runner.invoke(main, ["index", "--collection", str(pair["faiss"]), "--milvus-uri", "nowhere"])
    assert r.exit_code == 2 and "ending in .db" in r.output and r.output.count("\n") == 1
    r = runner.invoke(
        main, ["search", "--collection", str(pair["milvus"]), "--like", "red/01", "--where", "image_path=x"]
    )
    assert r.exit_code == 2 and "cannot filter on 'image_path'" in r.output and r.output.count("\n") == 1, (
        r.output
    )
    served = _cli("serve", "--collection", str(pair["milvus"]), "--workers", "2", "--port", "0")
    assert served.returncode == 2 and served.stderr.startswith("error: serve --workers needs a Milvus server")
    assert served.stderr.count("\n") == 1, served.stderr
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # as if not installed
    with pytest.raises(BackendUnavailable, match=r"pip install 'illustra\[milvus\]'"):
        connect(str(tmp_path / "x.db"))


def test_restart_keeps_the_data_and_a_held_lite_file_is_one_line(
    pair: dict[str, Any], tmp_path: Path
) -> None:
    """A new process reads the same Milvus Lite file (the CLI, so nothing is shared in memory);
    while this process holds the file, another gets one line saying why."""
    milvus_dir = copy_collection(pair["milvus"], tmp_path / "m")
    uri = str(tmp_path / "restart.db")
    MilvusIndexStage(None, uri, "restart").build(milvus_dir, False)
    want = ids(
        SearchService(milvus_dir).search_like("red/01", k=5, filters=Filters(fields={"place": "London"}))
    )
    held = _cli("search", "--collection", str(milvus_dir), "--like", "red/01", "--json")
    assert held.returncode == 9 and "another process may hold it" in held.stderr
    assert held.stderr.strip().count("\n") == 0, held.stderr
    disconnect(uri)
    r = _cli(
        "search",
        "--collection",
        str(milvus_dir),
        "--like",
        "red/01",
        "-k",
        "5",
        "--where",
        "place=london",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert [h["id"] for h in json.loads(r.stdout)["results"]] == want


def test_serve_workers_share_one_milvus_server(tmp_path: Path, tiny_clip_dir: Path) -> None:
    """``serve --workers 2`` against Milvus Lite's gRPC server: two processes, each connected to
    the one Milvus, answer alike."""
    root = tmp_path / "c"
    coll = Collection.create(root, colour_rows(2), source={"kind": "test"})
    embed_with(coll, str(tiny_clip_dir))
    port = _free_port()
    lite_cmd = [
        str(Path(sys.executable).parent / "milvus-lite"),
        "server",
        "--data-dir",
        str(tmp_path / "srv.db"),
    ]
    lite = subprocess.Popen(
        [*lite_cmd, "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL
    )
    serve = None
    try:
        _wait_port(port)
        build_milvus_index(Collection(root), str(tiny_clip_dir), f"http://127.0.0.1:{port}", "served")
        web = _free_port()
        serve = subprocess.Popen(
            [*ILLUSTRA, "serve", "--collection", str(root), "--workers", "2", "--port", str(web)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        deadline = time.monotonic() + 180
        while len(_milvus_clients(serve.pid, port)) < 2:  # each process opens Milvus as it starts
            assert serve.poll() is None and time.monotonic() < deadline, (
                serve.stderr.read() if serve.stderr else ""
            )
            time.sleep(0.5)
        params = {"q": "a red picture", "k": 4, "mode": "visual"}
        answers = {
            tuple(h["id"] for h in _get_json(f"http://127.0.0.1:{web}/api/search", params)["results"])
            for _ in range(12)
        }
        assert len(answers) == 1 and len(next(iter(answers))) == 4
        assert len(_milvus_clients(serve.pid, port)) == 2
    finally:
        for proc in (serve, lite):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()


# -- helpers ------------------------------------------------------------------------------------
ILLUSTRA = [sys.executable, "-m", "illustra"]


def _env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", ILLUSTRA_TORCH_THREADS="1", ILLUSTRA_QUERY_PRECISION="fp32")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ILLUSTRA, *args], capture_output=True, text=True, env=_env(), timeout=300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port}")


def _milvus_clients(pid: int, port: int) -> set[int]:
    """Child processes of ``pid`` with a connection open to the Milvus server on ``port``."""
    import psutil

    out = set()
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if any(c.raddr and c.raddr.port == port for c in child.net_connections("tcp")):
                out.add(child.pid)
        except psutil.Error:
            continue
    return out


def _get_json(url: str, params: dict[str, Any]) -> Any:
    deadline = time.monotonic() + 60
    while True:
        try:
            r = httpx.get(url, params=params, timeout=30)
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.5)
            continue
        assert r.status_code == 200, r.text
        return r.json()
