"""The vector index at British Library scale: 1.08M items x 1152-d (SigLIP2-so400m width).

    .venv/bin/python benchmarks/bench_index_million.py [--n 1080000] [--budgets 4GB,1GB,256MB]

Builds one BL-like collection: metadata from the real BL Flickr manifest rows, repeated to ``--n``
items with distinct ids (a repeated book gets a new identifier, so a book keeps a book's size),
and clustered synthetic unit vectors (a few thousand Gaussian clusters, each varying along its own
16-d subspace) written straight to a float32 ``vectors.npy`` memmap under ``--workdir``. Then, side
by side in one run, for the index kind each memory budget chooses: build time, bytes on disk, RSS
of a fresh process after loading it (vectors memory-mapped), and p50/p95 latency and recall@10
against exact search, unfiltered and for each filter kind (a year range, a place, one book). The
queries are held-out points: new draws around the same centres. Writes
benchmarks/results/index_million.json (``--n`` below the default: index_million_<n>.json).
"""

from __future__ import annotations

import argparse
import gzip
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

from needs import need_bl_manifest  # noqa: E402

MODEL = "synthetic-so400m"
K = 10
FILTERS: dict[str, list[dict[str, Any]]] = {
    "year_range": [
        {"year_from": 1850, "year_to": 1860},
        {"year_from": 1800, "year_to": 1815},
        {"year_from": 1880, "year_to": 1885},
        {"year_from": 1700, "year_to": 1750},
    ],
    "place": [{"place": "London"}, {"place": "Edinburgh"}, {"place": "Paris"}, {"place": "New York"}],
    "book": [],  # filled with real book identifiers
}


def pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs) * 1000, p)), 3)


def rss() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


# -- data -------------------------------------------------------------------------------------
def manifest_rows() -> list[tuple[str, str, str, str, str]]:
    out = []
    with gzip.open(need_bl_manifest(), "rt", encoding="utf-8", errors="replace") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
        ix = {c: i for i, c in enumerate(header)}
        for line in fh:
            f = line.rstrip("\r\n").split("\t")
            if len(f) < len(header):
                continue
            out.append(
                (f[ix["title"]], f[ix["first_author"]], f[ix["pubplace"]], f[ix["date"]], f[ix["book_identifier"]])
            )
    if not out:
        raise SystemExit(f"no usable rows in {need_bl_manifest()}")
    return out


def make_collection(root: Path, n: int) -> Any:
    from illustra.collection import Collection

    meta = manifest_rows()
    # The manifest is in date order: visit its rows in a random order, repeated as often as needed.
    order = np.random.default_rng(0).permutation(len(meta))

    def rows():
        for i in range(n):
            title, creator, place, date, book = meta[order[i % len(meta)]]
            rep = i // len(meta)
            yield {
                "id": f"bl-synthetic/{i:07d}",
                "title": title,
                "creator": creator,
                "place": place,
                "date": date,
                "year": int(date[:4]) if date[:4].isdigit() else None,
                "book_identifier": book if rep == 0 else f"{book}-r{rep}",
            }

    return Collection.create(root, rows(), source={"kind": "synthetic-bl", "n": n}, extra_fields=["book_identifier"])


class Clusters:
    """Unit vectors around ``centres`` random centres, each cluster varying along its own 16-d
    subspace plus isotropic noise (as benchmarks/synthetic.py, streamed in blocks)."""

    def __init__(self, dim: int, centres: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.centres = self.rng.standard_normal((centres, dim)).astype(np.float32)
        self.bases = (self.rng.standard_normal((centres, 16, dim)) * 0.35).astype(np.float32)

    def draw(self, m: int) -> np.ndarray:
        a = self.rng.integers(0, len(self.centres), m)
        coeff = self.rng.standard_normal((m, 1, 16)).astype(np.float32)
        x = self.centres[a] + (coeff @ self.bases[a])[:, 0, :]
        x += 0.15 * self.rng.standard_normal(x.shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_vectors(coll: Any, n: int, dim: int, centres: int, queries: int) -> np.ndarray:
    from illustra.collection import now_iso
    from illustra.embedding_store import EmbeddingStore
    from illustra.encoders.base import model_slug

    store = EmbeddingStore(coll, MODEL)
    store.dir.mkdir(parents=True, exist_ok=True)
    gen = Clusters(dim, centres)
    mm = np.lib.format.open_memmap(store.dir / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    for s in range(0, n, 2048):
        mm[s : min(n, s + 2048)] = gen.draw(min(n, s + 2048) - s)
    mm.flush()
    del mm
    np.save(store.dir / "rows.npy", np.arange(n, dtype=np.int64))
    coll.update_manifest(
        embeddings={
            MODEL: {
                "model": MODEL, "slug": model_slug(MODEL), "dim": dim, "normalised": "l2",
                "count": n, "complete": True, "updated": now_iso(),
            }
        }
    )
    return gen.draw(queries)  # held out: new draws around the same centres


def filter_plan(svc: Any, queries: int) -> dict[str, list[Any]]:
    """Filters of each kind, one per query (cycling through the variants)."""
    from illustra.search.filters import Filters

    books = FILTERS["book"]
    if not books:
        col = svc.filter_engine.table.column("book_identifier").to_numpy(zero_copy_only=False)
        ids, counts = np.unique(col.astype(str), return_counts=True)
        big = ids[(counts >= 20) & (counts <= 400)]
        for b in np.random.default_rng(1).choice(big, size=min(20, len(big)), replace=False):
            books.append({"book_identifier": str(b)})
    plan: dict[str, list[Any]] = {}
    for kind, variants in FILTERS.items():
        fs = []
        for v in variants:
            v = dict(v)
            yf, yt = v.pop("year_from", None), v.pop("year_to", None)
            fs.append(Filters(year_from=yf, year_to=yt, fields=v))
        plan[kind] = [fs[i % len(fs)] for i in range(queries)]
    return plan


def describe_filters(plan: dict[str, list[Any]], masks: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """Each filter kind's variants and the least and most of the items they select."""
    return {
        kind: {
            "variants": sorted({json.dumps(f.describe(), sort_keys=True) for f in fs}),
            "selected_share_min": round(float(min(m.mean() for m in masks[kind])), 6),
            "selected_share_max": round(float(max(m.mean() for m in masks[kind])), 6),
        }
        for kind, fs in plan.items()
    }


def ground_truth(vectors: np.ndarray, queries: np.ndarray, masks: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """Exact top-k positions per query, unfiltered and under each query's filter mask."""
    nq = len(queries)
    best: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {
        kind: [(np.zeros(0, np.float32), np.zeros(0, np.int64))] * nq for kind in ["none", *masks]
    }
    step = 50_000
    for s in range(0, len(vectors), step):
        block = np.asarray(vectors[s : s + step])
        scores = queries @ block.T
        for kind in best:
            for i in range(nq):
                pos = np.arange(len(block)) if kind == "none" else np.flatnonzero(masks[kind][i][s : s + step])
                sc = np.concatenate([best[kind][i][0], scores[i, pos]])
                ps = np.concatenate([best[kind][i][1], pos + s])
                keep = np.lexsort((ps, -sc))[:K]
                best[kind][i] = (sc[keep], ps[keep])
    return {kind: [b[1] for b in v] for kind, v in best.items()}


# -- measuring one index in a fresh process ------------------------------------------------------
def probe(collection: str, queries_path: str, out_path: str, variant: str = "{}") -> None:
    """Load the index as a server would and time the search step; results to ``out_path``.
    ``variant``: JSON search-parameter overrides (``nprobe``, ``postfilter``, ``madvise``)."""
    from illustra.collection import Collection
    from illustra.index import advise_random
    from illustra.search import SearchService

    queries = np.load(queries_path)
    svc = SearchService(Collection(collection), MODEL)
    plan = filter_plan(svc, len(queries))
    masks = {kind: [svc.row_mask(f) for f in fs] for kind, fs in plan.items()}
    before = rss()
    t = time.perf_counter()
    index = svc.index
    load_s = time.perf_counter() - t
    over = json.loads(variant)
    if "nprobe" in over:
        index.params["nprobe"] = int(over["nprobe"])
    index.postfilter = bool(over.get("postfilter", True))
    if not over.get("madvise", True):
        advise_random(index.vectors, random=False)
    after_load = rss()
    res: dict[str, Any] = {"load_seconds": round(load_s, 3), "rss_before_load": before, "rss_after_load": after_load}
    for q in queries[:20]:
        index.search(q, K)
    for kind in ["none", *plan]:
        lat, svc_lat, got, counts = [], [], [], []
        for i, q in enumerate(queries):
            allowed = None if kind == "none" else masks[kind][i][index.rows]
            t = time.perf_counter()
            _, pos = index.search(q, K, allowed)
            lat.append(time.perf_counter() - t)
            got.append(pos.tolist())
            counts.append(len(pos))
            if kind != "none":
                t = time.perf_counter()
                svc.vector_ranking(q, K, plan[kind][i])  # the filter mask computed too
                svc_lat.append(time.perf_counter() - t)
        res[kind] = {"lat": lat, "svc_lat": svc_lat, "got": got, "counts": counts}
    res["rss_after_queries"] = rss()
    Path(out_path).write_text(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_080_000)
    ap.add_argument("--dim", type=int, default=1152)
    ap.add_argument("--centres", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--budgets", default="4GB,1GB,256MB")
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    ap.add_argument(
        "--variants", default="{}",
        help='search variants measured side by side on the same index, JSON: {"old": {"nprobe": 16, '
        '"postfilter": false, "madvise": false}, "new": {}}; default: the shipped parameters only',
    )
    ap.add_argument("--probe", nargs=4, metavar=("COLLECTION", "QUERIES", "OUT", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        probe(*args.probe)
        return
    need_bl_manifest()  # real places, years and books: the filter figures depend on them
    from illustra.collection import Collection
    from illustra.index import build_index
    from illustra.search import SearchService
    from illustra.settings import parse_size

    command = "python benchmarks/bench_index_million.py " + " ".join(sys.argv[1:])
    out: dict[str, Any] = {
        "command": command.strip(), "n": args.n, "dim": args.dim, "centres": args.centres,
        "queries": args.queries, "k": K, "load_start": [round(x, 2) for x in os.getloadavg()], "budgets": {},
    }
    work = Path(tempfile.mkdtemp(prefix="illustra-index-million-", dir=args.workdir))
    try:
        t = time.perf_counter()
        coll = make_collection(work / "c", args.n)
        out["ingest_seconds"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        queries = write_vectors(coll, args.n, args.dim, args.centres, args.queries)
        out["vectors_seconds"] = round(time.perf_counter() - t, 1)
        np.save(work / "queries.npy", queries)
        print(f"collection {out['ingest_seconds']} s, vectors {out['vectors_seconds']} s", flush=True)
        coll = Collection(work / "c")
        from illustra.embedding_store import EmbeddingStore

        vectors = EmbeddingStore(coll, MODEL).vectors()
        out["vectors_bytes_on_disk"] = int(vectors.nbytes)
        svc = SearchService(coll, MODEL)
        plan = filter_plan(svc, args.queries)
        masks = {kind: [svc.row_mask(f) for f in fs] for kind, fs in plan.items()}
        out["filters"] = describe_filters(plan, masks)
        t = time.perf_counter()
        truth = ground_truth(vectors, queries, masks)
        out["exact_seconds_per_query_batched"] = round((time.perf_counter() - t) / args.queries, 4)
        del svc, masks, vectors
        print("ground truth done", flush=True)
        seen: dict[str, str] = {}
        for budget in args.budgets.split(","):
            info = build_index(coll, MODEL, memory_budget=parse_size(budget))
            key = json.dumps([info["kind"], info["params"]], sort_keys=True)
            if key in seen:
                out["budgets"][budget] = {"same_as": seen[key]}
                continue
            seen[key] = budget
            variants = json.loads(args.variants) or {"shipped": {}}
            for vname, over in variants.items():
                res_path = work / "probe.json"
                subprocess.run(
                    [sys.executable, __file__, "--probe", str(work / "c"), str(work / "queries.npy"), str(res_path),
                     json.dumps(over)],
                    check=True,
                )
                res = json.loads(res_path.read_text())
                entry = measure(info, res, plan, truth)
                entry["variant"] = over
                label = budget if list(variants) == ["shipped"] else f"{budget}:{vname}"
                out["budgets"][label] = entry
                print(label, json.dumps({k: v for k, v in entry.items() if k not in ("rss_after_load", "rss_after_queries")}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["load_end"] = [round(x, 2) for x in os.getloadavg()]
    name = "index_million.json" if args.n == 1_080_000 else f"index_million_{args.n}.json"
    dest = Path(__file__).resolve().parent / "results" / name
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {dest}")


def measure(info: dict[str, Any], res: dict[str, Any], plan: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    """One budget's figures: build, memory, latency and recall per filter kind."""
    entry: dict[str, Any] = {
        "kind": info["kind"], "params": info["params"], "fits_budget": info["fits_budget"],
        "build_seconds": info["build_seconds"], "train_seconds": info["train_seconds"],
        "add_seconds": info["add_seconds"], "index_file_bytes": info["index_file_bytes"],
        "estimated_bytes": info["estimated_bytes"], "measured_bytes": info["measured_bytes"],
        "load_seconds": res["load_seconds"],
        "rss_index_after_load_bytes": res["rss_after_load"]["VmRSS"] - res["rss_before_load"]["VmRSS"],
        "rss_after_load": res["rss_after_load"], "rss_after_queries": res["rss_after_queries"],
        "load": [round(x, 2) for x in os.getloadavg()],
    }
    for kind in ["none", *plan]:
        r = res[kind]
        recall = np.mean([len(set(g) & set(t.tolist())) / len(t) if len(t) else float(not g) for g, t in zip(r["got"], truth[kind], strict=True)])
        want = [min(K, len(t)) for t in truth[kind]]
        entry["unfiltered" if kind == "none" else kind] = {
            "p50_ms": pct(r["lat"], 50), "p95_ms": pct(r["lat"], 95),
            f"recall@{K}_vs_exact": round(float(recall), 4),
            "always_k": bool(all(c == w for c, w in zip(r["counts"], want, strict=True))),
            **({"service_p50_ms": pct(r["svc_lat"], 50), "service_p95_ms": pct(r["svc_lat"], 95)} if r["svc_lat"] else {}),
        }
    return entry


if __name__ == "__main__":
    main()
