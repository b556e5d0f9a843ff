"""Added latency of hybrid search over visual search, at 100k items, through SearchService.

    .venv/bin/python benchmarks/bench_hybrid.py [--n 100000] [--queries 200]

Builds a synthetic collection (real BL titles, authors and places sampled from the 500k manifest;
clustered 384-d unit vectors standing in for picture embeddings), its picture index, and its text
index: the real BM25 keyword index (bm25s), and sentence vectors that are random unit vectors standing in for
MiniLM document vectors (embedding 100k documents with MiniLM on this machine's CPUs takes hours;
search cost does not depend on the vectors' values). Queries are embedded for real: the picture side
by a stand-in 384-d encoder (a hash of the query, ~0 ms, so "visual" is the search step itself),
the sentence side by the real all-MiniLM-L6-v2, with its query cache cleared before every query.

For each query, in one run and alternating, it times end to end through
``SearchService.search_text`` (k=10, first page):

    visual                         picture ranking only
    hybrid                         pictures + keywords (BM25): what a 100k collection gets by
                                   default, since sentence vectors are built by default only up to
                                   text_semantic_auto_max (20k) items
    hybrid_with_sentence_vectors   pictures + keywords + sentence vectors (after
                                   ``illustra index --text-semantic``)
    text                           keywords only

Everything is measured twice: with torch's and faiss's default threads, and with both single-threaded
(see the comment in ``main``). Writes benchmarks/results/hybrid_latency.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from needs import need_bl_manifest  # noqa: E402
from synthetic import bl_titles, synthetic_collection  # noqa: E402

from illustra.collection import Collection  # noqa: E402
from illustra.encoders import Encoder, register_encoder  # noqa: E402
from illustra.encoders.base import l2_normalise  # noqa: E402
from illustra.encoders.minilm import text_encoder  # noqa: E402
from illustra.index import build_index  # noqa: E402
from illustra.search import SearchService  # noqa: E402
from illustra.search.filters import Filters  # noqa: E402
from illustra.textindex import STOPWORDS, build_text_index  # noqa: E402

MODEL = "synthetic-384"
DIM = 384

HAND_QUERIES = [
    "a map from a book about Egypt",
    "engravings in books printed in Edinburgh",
    "portrait of a bishop",
    "views of the Rhine",
    "shipwreck on the coast of Cornwall",
    "history of the county of York",
    "birds of Australia",
    "railway bridge",
    "Paris street scene",
    "a cat",
]


def _hash_vec(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return l2_normalise(np.random.default_rng(seed).standard_normal((1, DIM)).astype(np.float32))[0]


class HashEncoder(Encoder):
    """Stand-in picture encoder: a query's vector is a hash of its text (costs ~nothing)."""

    name = MODEL
    dim = DIM
    image_side = 64

    def embed_images(self, images):  # pragma: no cover - never called here
        raise NotImplementedError

    def embed_texts(self, texts):
        return np.stack([_hash_vec(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)


def stand_in_sentence_vectors(texts):
    return np.stack([_hash_vec("doc:" + t) for t in texts])


def make_queries(n: int, seed: int = 1) -> list[str]:
    """Hand-written queries plus queries of 1-3 content words drawn from real BL titles and places."""
    rng = np.random.default_rng(seed)
    rows = bl_titles(5000, seed=seed)
    out = list(HAND_QUERIES)
    seen = set(out)
    while len(out) < n:
        title, _, place, _ = rows[int(rng.integers(len(rows)))]
        title = unicodedata.normalize("NFC", title)
        words = [w for w in re.findall(r"[^\W\d_]{4,}", title.lower()) if w not in STOPWORDS]
        if not words:
            continue
        picked = list(rng.choice(words, size=min(len(words), int(rng.integers(1, 4))), replace=False))
        if place and rng.random() < 0.3:
            picked.append(place.split()[0].strip("[],."))
        q = " ".join(picked)
        if q not in seen:
            seen.add(q)
            out.append(q)
    return out


def stats(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1000
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "mean_ms": round(float(a.mean()), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "hybrid_latency.json"))
    args = ap.parse_args()
    need_bl_manifest()  # real titles, places and years: queries and filters depend on them
    register_encoder(MODEL, HashEncoder)
    out: dict = {
        "n": args.n,
        "queries": args.queries,
        "k": 10,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_start": os.getloadavg(),
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        coll = synthetic_collection(Path(tmp) / "c", args.n, DIM, MODEL)
        out["collection_seconds"] = round(time.perf_counter() - t, 1)
        info = build_index(coll, MODEL)
        out["picture_index"] = {"kind": info["kind"], "build_seconds": info["build_seconds"]}
        t = time.perf_counter()
        tinfo = build_text_index(
            coll, semantic=True, semantic_model="minilm", embed_fn=stand_in_sentence_vectors, progress=False
        )
        assert tinfo is not None and tinfo["semantic"] is not None
        out["text_index"] = {
            "fields": tinfo["fields"],
            "docs": tinfo["keyword"]["docs"],
            "keyword_bytes": tinfo["keyword"]["bytes"],
            "semantic_kind": tinfo["semantic"]["kind"],
            "build_seconds_incl_stand_in_vectors": round(time.perf_counter() - t, 1),
        }
        print("built", json.dumps(out), flush=True)

        svc = SearchService(Collection(coll.root), MODEL)
        svc.warm()
        queries = make_queries(args.queries)
        minilm = text_encoder()
        # Warm every path once (model, FTS pages, HNSW graphs) before timing.
        for q in HAND_QUERIES[:3]:
            for mode in ("visual", "hybrid", "text"):
                svc.search_text(q, k=10, mode=mode)

        ti = svc.text_index
        assert ti is not None

        def timed(q: str, mode: str, semantic: bool = True, f: Filters | None = None) -> float:
            os.environ["ILLUSTRA_TEXT_SEMANTIC_SEARCH"] = "on" if semantic else "off"
            # Nothing cached from the same query in another mode: each timing pays its full cost.
            minilm.clear_cache()
            ti.keywords.clear_cache()
            t0 = time.perf_counter()
            resp = svc.search_text(q, k=10, mode=mode, filters=f)
            dt = time.perf_counter() - t0
            assert resp.mode == mode and (resp.results or mode == "text"), (q, mode)
            return dt

        def measure() -> dict:
            res: dict = {}
            labels = ["visual", "hybrid", "hybrid_with_sentence_vectors", "text"]
            lat: dict[str, list[float]] = {label: [] for label in labels}
            for i, q in enumerate(queries):
                # Alternate the order so neither mode always runs first (caches, CPU frequency).
                order = labels if i % 2 == 0 else labels[::-1]
                for label in order:
                    mode = "hybrid" if label.startswith("hybrid") else label
                    lat[label].append(timed(q, mode, semantic=label == "hybrid_with_sentence_vectors"))
            res["latency"] = {label: stats(v) for label, v in lat.items()}
            res["added_over_visual"] = {
                label: stats([a - b for a, b in zip(lat[label], lat["visual"], strict=True)])
                for label in ("hybrid", "hybrid_with_sentence_vectors")
            }

            # Where hybrid's extra time goes, per query (same queries, same run).
            os.environ["ILLUSTRA_TEXT_SEMANTIC_SEARCH"] = "on"
            parts: dict[str, list[float]] = {
                "minilm_query_embedding": [],
                "keyword_bm25_top300": [],
                "semantic_hnsw_top300": [],
            }
            for q in queries:
                minilm.clear_cache()
                ti.keywords.clear_cache()
                t0 = time.perf_counter()
                v = ti.embed_query(q)
                t1 = time.perf_counter()
                ti.keyword_ranking(q, 300, None)
                t2 = time.perf_counter()
                ti.semantic_ranking(v, 300, None)
                t3 = time.perf_counter()
                parts["minilm_query_embedding"].append(t1 - t0)
                parts["keyword_bm25_top300"].append(t2 - t1)
                parts["semantic_hnsw_top300"].append(t3 - t2)
            res["hybrid_parts"] = {k: stats(v) for k, v in parts.items()}

            # Filters behave the same in every mode; their cost, for hybrid vs visual.
            filt: dict[str, dict[str, dict[str, float]]] = {}
            for label, f in {
                "year_1850_1860": Filters(year_from=1850, year_to=1860),
                "place_london": Filters(fields={"place": "London"}),
            }.items():
                lv, lh = [], []
                for q in queries[:60]:
                    lv.append(timed(q, "visual", semantic=False, f=f))
                    lh.append(timed(q, "hybrid", semantic=False, f=f))
                filt[label] = {
                    "visual": stats(lv),
                    "hybrid": stats(lh),
                    "added": stats([h - v for h, v in zip(lh, lv, strict=True)]),
                }
            res["filtered"] = filt
            return res

        # Two thread set-ups, same queries. torch and faiss each bring their own OpenMP runtime; with
        # both multi-threaded, their spinning threads starve each other on a small machine and a
        # short query takes MiniLM ~500 ms instead of ~13 ms. One query gains nothing from intra-op
        # threads, so a search server can run both single-threaded (torch_threads=1).
        import faiss
        import torch

        defaults = (torch.get_num_threads(), faiss.omp_get_max_threads())
        out["default_threads"] = {"torch": defaults[0], "faiss": defaults[1]}
        out["runs"] = {}
        for label, (t_threads, f_threads) in (
            ("default_threads", defaults),
            ("single_thread_inference", (1, 1)),
        ):
            torch.set_num_threads(t_threads)
            faiss.omp_set_num_threads(f_threads)
            out["runs"][label] = measure()
            print(label, json.dumps(out["runs"][label]["added_over_visual"]), flush=True)
        torch.set_num_threads(defaults[0])
        faiss.omp_set_num_threads(defaults[1])
        out["machine"]["load_avg_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
