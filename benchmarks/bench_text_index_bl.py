"""Text index build over the real 500k-row BL Flickr manifest (metadata only): time and peak memory.

    .venv/bin/python benchmarks/bench_text_index_bl.py [--limit N] [--sample 2000] [--collection DIR]

1. Ingests the manifest with the BL preset (no images; title, first author, place, publisher are
   its text fields) unless --collection names an existing one.
2. Builds the keyword index (BM25, one bm25s index per field) with
   ``illustra index --no-text-semantic`` in a child process: wall time and the child's peak RSS.
3. Measures sentence-vector (all-MiniLM-L6-v2) throughput on a sample of the same documents in a
   child process and extrapolates to the whole manifest: on a small CPU machine the full build
   takes hours, which is why sentence vectors are off by default above text_semantic_auto_max.
4. Times text-mode queries on the built index (keywords only), end to end and the text index's own
   part (ranking and explaining; the rest is fetching the hits' metadata, the same in every mode).

Writes benchmarks/results/text_index_bl.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from needs import BL_MANIFEST, need_bl_manifest

HERE = Path(__file__).resolve().parent
BL_GZ = BL_MANIFEST
PY = sys.executable
QUERIES = [
    "a map from a book about Egypt",
    "engravings Edinburgh",
    "history of the county of York",
    "voyage en Égypte",
    "Dickens",
    "London",
    "birds",
    "travels in Abyssinia",
    "Geschichte der Stadt",
    "poems",
]


def run_child(cmd: list[str]) -> dict:
    """Run ``cmd``; wall time, exit status and the child's peak RSS (from wait4's rusage)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": round(time.perf_counter() - t, 2),
        "exit": proc.returncode,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "stdout_tail": out[-400:],
        "stderr_tail": err[-600:],
    }


SEMANTIC_SAMPLE = r"""
import json, sys, time
import numpy as np
from illustra.collection import Collection
from illustra.textindex import document, field_values
from illustra.encoders.minilm import text_encoder
coll = Collection(sys.argv[1]); n = int(sys.argv[2])
rows = np.sort(np.random.default_rng(0).choice(len(coll), size=min(n, len(coll)), replace=False))
fields = coll.text_fields
docs = [document(field_values(coll, fields, int(r), int(r) + 1)[0]) for r in rows]
docs = [d for d in docs if d]
enc = text_encoder()
enc.embed_texts(docs[:8])
t = time.perf_counter()
for i in range(0, len(docs), 64):
    enc.embed_texts(docs[i:i + 64])
dt = time.perf_counter() - t
import torch
print(json.dumps({"docs": len(docs), "seconds": round(dt, 2), "docs_per_second": round(len(docs) / dt, 1),
                  "mean_chars": round(float(np.mean([len(d) for d in docs])), 1), "torch_threads": torch.get_num_threads()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="Only the first N manifest rows.")
    ap.add_argument("--sample", type=int, default=1000, help="Documents for the sentence-vector throughput.")
    ap.add_argument(
        "--collection",
        default=None,
        help="Use this already-ingested BL collection (its text/ folder is deleted first, to time a fresh build).",
    )
    ap.add_argument(
        "--interrupt", type=float, default=None, help="Interrupt the first build after S seconds."
    )
    ap.add_argument("--out", default=str(HERE / "results" / "text_index_bl.json"))
    args = ap.parse_args()
    if args.collection is None:
        need_bl_manifest()
    out: dict = {
        "benchmark": "text_index_bl",
        "manifest": BL_GZ.name,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_start": os.getloadavg(),
        },
    }
    illustra = [str(Path(PY).parent / "illustra")]
    with tempfile.TemporaryDirectory(prefix="bench-text-bl-") as tmp:
        root = args.collection or str(Path(tmp) / "collection")
        if args.collection is None:
            cmd = [
                *illustra,
                "ingest",
                "manifest",
                str(BL_GZ),
                "--preset",
                "bl-flickr",
                "--no-progress",
                "--collection",
                root,
            ]
            if args.limit:
                cmd += ["--limit", str(args.limit)]
            out["ingest"] = run_child(cmd)
            print("ingest", out["ingest"]["seconds"], "s", flush=True)
        if args.collection is not None:
            shutil.rmtree(Path(root) / "text", ignore_errors=True)
        index_cmd = [*illustra, "index", "--collection", root, "--no-text-semantic"]
        build = run_child(index_cmd)
        if build["exit"] != 0:
            raise SystemExit(f"index failed: {build['stderr_tail']}")
        manifest = json.loads((Path(root) / "manifest.json").read_text())
        ti = manifest["text_index"]
        out["items"] = manifest["counts"]["items"]
        out["keyword_build"] = {
            "command": "illustra index --collection <collection> --no-text-semantic",
            "wall_seconds": build["seconds"],
            "peak_rss_mib": build["peak_rss_mib"],
            "index_build_seconds": ti["build_seconds"],
            "docs": ti["keyword"]["docs"],
            "keyword_index_bytes": ti["keyword"]["bytes"],
            "fields": ti["fields"],
            "notices": build["stderr_tail"].strip().splitlines()[-2:],
        }
        print("keyword build", out["keyword_build"], flush=True)

        sem = subprocess.run(
            [PY, "-c", SEMANTIC_SAMPLE, root, str(args.sample)], capture_output=True, text=True
        )
        if sem.returncode == 0:
            s = json.loads(sem.stdout.strip().splitlines()[-1])
            s["extrapolated_full_hours"] = round(ti["keyword"]["docs"] / s["docs_per_second"] / 3600, 2)
            out["semantic_throughput"] = s
        else:
            out["semantic_throughput"] = {"error": sem.stderr[-600:]}
        print("semantic", out["semantic_throughput"], flush=True)

        from illustra.search import SearchService

        svc = SearchService(root)
        lat = []
        for q in QUERIES * 3:
            t = time.perf_counter()
            resp = svc.search_text(q, k=10, mode="text")
            lat.append(time.perf_counter() - t)
            assert resp.mode == "text"
        a = np.asarray(lat[len(QUERIES) :]) * 1000  # first round warms the page cache
        out["text_query_ms"] = {
            "p50": round(float(np.percentile(a, 50)), 2),
            "p95": round(float(np.percentile(a, 95)), 2),
        }
        # The text index's own share: ranking 300 candidates and explaining the first 10 (the rest of
        # a search is fetching the hits' metadata, common to every mode).
        ti = svc.text_index
        assert ti is not None
        own = []
        for q in QUERIES * 2:
            ti.keywords.clear_cache()
            t = time.perf_counter()
            _, rows, _ = ti.rank(q, 300, None)
            ti.explain(q, rows[:10].tolist())
            own.append(time.perf_counter() - t)
        b = np.asarray(own) * 1000
        out["text_index_rank300_explain10_ms"] = {
            "p50": round(float(np.percentile(b, 50)), 2),
            "p95": round(float(np.percentile(b, 95)), 2),
        }
        out["examples"] = {
            q: [h.metadata.get("title", "")[:90] for h in svc.search_text(q, k=3, mode="text").results]
            for q in QUERIES[:4]
        }
    out["machine"]["load_avg_end"] = os.getloadavg()
    out["self_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(out, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
