"""Search-step latency and approximate-index recall over 100k stored vectors.

    .venv/bin/python benchmarks/bench_search.py [--n 100000] [--dim 512]

Builds a synthetic collection (clustered unit vectors, real BL titles), indexes it exactly (flat) and
approximately (HNSW, IVF-PQ), and measures, side by side in one run, the latency of the search step
(query vector -> ranked rows, no query embedding) and recall@10 of each approximate index against
exact search. Writes benchmarks/results/search.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from needs import need_bl_manifest  # noqa: E402
from synthetic import clustered_vectors, synthetic_collection  # noqa: E402

from illustra.collection import Collection  # noqa: E402
from illustra.index import build_index, load_index  # noqa: E402
from illustra.search import SearchService  # noqa: E402
from illustra.search.filters import Filters  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs) * 1000, p)), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    need_bl_manifest()  # real titles, places and years: the filter figures depend on them
    model = "synthetic-512"
    out: dict = {"n": args.n, "dim": args.dim, "queries": args.queries, "kinds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        coll = synthetic_collection(Path(tmp) / "c", args.n, args.dim, model)
        # Queries: held-out points from the same distribution (same seed, drawn after the n stored ones).
        queries = clustered_vectors(args.n + args.queries, args.dim, seed=0)[args.n :]
        exact: list[np.ndarray] = []
        for kind in ("flat", "hnsw", "ivfpq"):
            info = build_index(coll, model, kind)
            idx = load_index(Collection(coll.root), model)
            idx.search(queries[0], 10)
            lat, got = [], []
            for q in queries:
                t = time.perf_counter()
                _, pos = idx.search(q, 10)
                lat.append(time.perf_counter() - t)
                got.append(pos)
            if kind == "flat":
                exact = got
            recall = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(got, exact, strict=True)]))
            out["kinds"][kind] = {
                "build_seconds": info["build_seconds"],
                "p50_ms": pct(lat, 50),
                "p95_ms": pct(lat, 95),
                "recall@10_vs_exact": round(recall, 4),
            }
            print(kind, out["kinds"][kind], flush=True)
        # Filtered search through the service (hnsw index, selective and broad year filters).
        build_index(coll, model, "hnsw")
        svc = SearchService(Collection(coll.root), model)
        for label, f in {
            "no_filter": Filters(),
            "year_1850_1860": Filters(year_from=1850, year_to=1860),
            "year_1700_1720": Filters(year_from=1700, year_to=1720),
            "place_london": Filters(fields={"place": "London"}),
        }.items():
            svc.vector_ranking(queries[0], 10, f)
            mask = svc.row_mask(f)
            allowed_rows = np.arange(len(svc.collection)) if mask is None else np.flatnonzero(mask)
            vecs = np.asarray(svc.index.vectors)
            lat, counts, recalls = [], [], []
            for q in queries:
                t = time.perf_counter()
                _, rows = svc.vector_ranking(q, 10, f)
                lat.append(time.perf_counter() - t)
                counts.append(len(rows))
                truth = allowed_rows[np.argsort(-(vecs[allowed_rows] @ q), kind="stable")[:10]]
                recalls.append(len(set(rows.tolist()) & set(truth.tolist())) / max(1, len(truth)))
            out.setdefault("service_hnsw", {})[label] = {
                "selected_share": round(len(allowed_rows) / len(svc.collection), 4),
                "p50_ms": pct(lat, 50),
                "p95_ms": pct(lat, 95),
                "min_results": int(min(counts)),
                "recall@10_vs_exact_filtered": round(float(np.mean(recalls)), 4),
            }
            print(label, out["service_hnsw"][label], flush=True)
    dest = Path(__file__).resolve().parent / "results" / "search.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
