"""Milvus Lite beside FAISS, side by side in one run, on one BL-like collection.

    .venv/bin/python benchmarks/bench_milvus.py [--n 100000] [--dim 1152] [--queries 200]

The collection is built as in bench_index_million.py: metadata from the real BL Flickr manifest
rows (real places, years and books), clustered synthetic unit vectors, held-out queries. Then each
backend is built by ``illustra index``'s own code (FAISS: ``build_index`` at the default memory
budget; Milvus: ``build_milvus_index`` into a Milvus Lite file, the index type chosen by size) and
measured in a fresh process through ``SearchService.vector_ranking`` (what the CLI, API and page
call: filters applied, k results): build time, load time, p50/p95 per filter kind, recall@10
against exact search, RSS of the searching process (for Milvus Lite, its engine runs inside that
process), bytes on disk, and the machine's load average at start and end. Writes
benchmarks/results/milvus.json (``--n`` other than 100000: milvus_<n>.json).

    .venv/bin/python benchmarks/bench_milvus.py --reuse WORKDIR [--queries 200]

measures the same on a collection kept by ``bench_bl_million.py --keep`` (the 1.08M of the BL
benchmark, its FAISS index already built: that build's recorded time is reported), with that
benchmark's held-out queries; the collection's ``index.json`` is put back as found afterwards.
Writes benchmarks/results/milvus_<n>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_index_million as bim  # noqa: E402
from needs import need_bl_manifest  # noqa: E402

MODEL = bim.MODEL
K = bim.K


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def probe(collection: str, queries_path: str, out_path: str, model: str = MODEL) -> None:
    """Open the collection's index as a server would (fresh process) and time the search step."""
    from illustra import settings
    from illustra.api.server import server_settings
    from illustra.collection import Collection
    from illustra.search import SearchService

    server_settings(settings.current())  # as a server: one thread per query for FAISS and torch
    queries = np.load(queries_path)
    svc = SearchService(Collection(collection), model)
    plan = bim.filter_plan(svc, len(queries))
    before = bim.rss()
    t = time.perf_counter()
    index = svc.index
    load_s = time.perf_counter() - t
    res: dict[str, Any] = {"backend": type(index).__name__, "kind": index.kind, "load_seconds": round(load_s, 3)}
    res["rss_before_load"], res["rss_after_load"] = before, bim.rss()
    for q in queries[:20]:
        svc.vector_ranking(q, K, None)
    for kind in ["none", *plan]:
        lat, got = [], []
        for i, q in enumerate(queries):
            f = None if kind == "none" else plan[kind][i]
            t = time.perf_counter()
            _, rows = svc.vector_ranking(q, K, f)
            lat.append(time.perf_counter() - t)
            got.append(rows.tolist())
        res[kind] = {"lat": lat, "got": got}
    res["rss_after_queries"] = bim.rss()
    Path(out_path).write_text(json.dumps(res))


def measured(res: dict[str, Any], truth: dict[str, list[np.ndarray]], kinds: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "load_seconds": res["load_seconds"],
        "rss_after_load_bytes": res["rss_after_load"]["VmRSS"],
        "rss_after_queries_bytes": res["rss_after_queries"]["VmRSS"],
        "rss_peak_bytes": res["rss_after_queries"]["VmHWM"],
    }
    for kind in ["none", *kinds]:
        r = res[kind]
        recall = [
            len(set(g) & set(t.tolist())) / len(t) if len(t) else float(not g)
            for g, t in zip(r["got"], truth[kind], strict=True)
        ]
        want = [min(K, len(t)) for t in truth[kind]]
        out["unfiltered" if kind == "none" else kind] = {
            "p50_ms": bim.pct(r["lat"], 50),
            "p95_ms": bim.pct(r["lat"], 95),
            f"recall@{K}_vs_exact": round(float(np.mean(recall)), 4),
            "always_k": all(len(g) == w for g, w in zip(r["got"], want, strict=True)),
        }
    return out


def run_probe(work: Path, label: str, model: str = MODEL) -> dict[str, Any]:
    out = work / f"probe-{label}.json"
    subprocess.run(
        [sys.executable, __file__, "--probe", str(work / "c"), str(work / "queries.npy"), str(out), "--model", model],
        check=True,
    )
    return json.loads(out.read_text())


def reuse(workdir: Path, queries_n: int, out: dict[str, Any]) -> tuple[Path, str, np.ndarray]:
    """The kept BL benchmark collection, its model and its held-out queries."""
    import bench_bl_million as blm

    from illustra.collection import Collection

    coll = Collection(workdir / "c")
    model = next(m for m, info in coll.manifest["indexes"].items() if info.get("backend", "faiss") == "faiss")
    saved = workdir / "queries.npy"
    queries = np.load(saved) if saved.is_file() else blm.held_out_queries(len(coll.ids), blm.DIM, 3000, queries_n)
    out.update({"reused": str(workdir), "n": len(coll.ids), "dim": int(queries.shape[1]), "queries": len(queries)})
    return workdir, model, queries[:queries_n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1152)
    ap.add_argument("--centres", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    ap.add_argument("--reuse", type=Path, help="a workdir kept by bench_bl_million.py --keep")
    ap.add_argument("--probe", nargs=3, metavar=("COLLECTION", "QUERIES", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--model", default=MODEL, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        coll_path, queries_path, out_path = args.probe
        probe(coll_path, queries_path, out_path, model=args.model)
        return
    need_bl_manifest()
    from illustra.collection import Collection
    from illustra.embedding_store import EmbeddingStore
    from illustra.index import build_index, index_dir
    from illustra.milvus_build import build_milvus_index
    from illustra.milvus_client import disconnect
    from illustra.search import SearchService

    out: dict[str, Any] = {
        "command": ("python benchmarks/bench_milvus.py " + " ".join(sys.argv[1:])).strip(),
        "n": args.n,
        "dim": args.dim,
        "centres": args.centres,
        "queries": args.queries,
        "k": K,
        "cpus": os.cpu_count(),
        "load_start": [round(x, 2) for x in os.getloadavg()],
    }
    model = MODEL
    if args.reuse:
        work, model, queries = reuse(args.reuse.resolve(), args.queries, out)
        index_json = index_dir(Collection(work / "c"), model) / "index.json"
        kept = index_json.read_bytes()
        kept_entry = Collection(work / "c").manifest["indexes"][model]
    else:
        work = Path(tempfile.mkdtemp(prefix="illustra-milvus-", dir=args.workdir))
    try:
        t = time.perf_counter()
        if not args.reuse:
            coll = bim.make_collection(work / "c", args.n)
            queries = bim.write_vectors(coll, args.n, args.dim, args.centres, args.queries)
        np.save(work / "queries.npy", queries)
        out["collection_seconds"] = round(time.perf_counter() - t, 1)
        coll = Collection(work / "c")
        svc = SearchService(coll, model)
        plan = bim.filter_plan(svc, args.queries)
        masks = {kind: [svc.row_mask(f) for f in fs] for kind, fs in plan.items()}
        out["filters"] = bim.describe_filters(plan, masks)
        truth = bim.ground_truth(EmbeddingStore(coll, model).vectors(), queries, masks)
        del svc, masks
        print(f"collection and exact answers ready ({out['collection_seconds']} s)", flush=True)

        # FAISS first: the Milvus build then records itself in the same index.json.
        info = coll.manifest["indexes"][model] if args.reuse else build_index(coll, model)
        faiss = {"kind": info["kind"], "params": info["params"], "build_seconds": info["build_seconds"]}
        if args.reuse:
            faiss["build_note"] = "recorded by the bench_bl_million.py run that built this index"
        faiss["bytes_on_disk"] = dir_bytes(index_dir(coll, model) / "index.faiss")
        faiss.update(measured(run_probe(work, "faiss", model), truth, list(plan)))
        out["faiss"] = faiss
        print("faiss", json.dumps(faiss), flush=True)

        uri = str(work / "milvus.db")
        t = time.perf_counter()
        info = build_milvus_index(Collection(work / "c"), model, uri, "bench", progress=True)
        wall = time.perf_counter() - t
        disconnect(uri)  # Milvus Lite opens its file in one process: the probe's
        milvus = {
            "index_type": info["milvus"]["index_type"],
            "params": info["params"],
            "build_seconds": round(wall, 1),
            "insert_seconds": info["insert_seconds"],
            "index_seconds": info["index_seconds"],
            "bytes_on_disk": dir_bytes(Path(uri)),
        }
        milvus.update(measured(run_probe(work, "milvus", model), truth, list(plan)))
        out["milvus_lite"] = milvus
        print("milvus_lite", json.dumps(milvus), flush=True)
    finally:
        if args.reuse:  # the collection as found: FAISS in index.json and in the manifest
            index_json.write_bytes(kept)
            Collection(work / "c").update_manifest(indexes={model: kept_entry})
            shutil.rmtree(work / "milvus.db", ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    out["load_end"] = [round(x, 2) for x in os.getloadavg()]
    n = out["n"]
    name = "milvus.json" if n == 100_000 else f"milvus_{n}.json"
    dest = Path(__file__).resolve().parent / "results" / name
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
