"""End-to-end Open Clip Art demo: build from nothing, rebuild (everything reused), evaluate.

    .venv/bin/python benchmarks/bench_demo.py [--collection DIR] [--limit N] [--model lite]

Runs ``illustra demo --no-serve`` twice into an empty collection directory (default: a fresh
temporary one), timing each run's wall clock, then ``illustra eval --json`` with the development
queries (../shared/bench/openclipart/dev_queries.jsonl). Writes benchmarks/results/demo.json with
the commands, both wall times, the machine's CPU count and load, and mAP@100 / P@10 next to the
random-ranking baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from needs import OPENCLIPART_QUERIES, need_openclipart_queries

HERE = Path(__file__).resolve().parent
QUERIES = OPENCLIPART_QUERIES
STAGES = {"packages", "ingest", "embed", "index", "similar", "text"}
ILLUSTRA = [sys.executable, "-c", "from illustra.cli import main; main()"]


def _file_sha(path: Path) -> str:
    # The encoder's recipe changes the figures; this pins which version produced them.
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def timed(args: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run([*ILLUSTRA, *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"illustra {' '.join(args)} failed with exit code {proc.returncode}")
    return round(wall, 1), proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--collection", help="Empty (or missing) directory to build into; default: a temporary one."
    )
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--model", default="lite")
    ap.add_argument("--queries", default=str(QUERIES))
    ap.add_argument("--keep", action="store_true", help="Keep the temporary collection.")
    ap.add_argument("--out", default=str(HERE / "results" / "demo.json"))
    args = ap.parse_args()
    need_openclipart_queries(args.queries)  # checked now, not after building the demo collection

    temp = args.collection is None
    root = Path(args.collection or tempfile.mkdtemp(prefix="illustra-demo-")) / "demo-openclipart"
    if root.exists() and any(root.iterdir()):
        raise SystemExit(f"{root} is not empty; the first run must start from nothing")
    demo = ["demo", "--no-serve", "--collection", str(root), "--model", args.model]
    if args.limit:
        demo += ["--limit", str(args.limit)]
    load_before = os.getloadavg()
    first, first_out = timed(demo)
    second, second_out = timed(demo)
    evaluation = ["eval", "--collection", str(root), "--queries", args.queries, "--json"]
    _, eval_out = timed(evaluation)
    result = json.loads(eval_out)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    [source] = [s for s in manifest["sources"] if s.get("kind") == "openclipart"]
    figures = {
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_1m_before": round(load_before[0], 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        },
        "commands": {
            "build": "illustra " + " ".join(demo),
            "rebuild": "illustra " + " ".join(demo),
            "eval": "illustra " + " ".join(evaluation),
        },
        "first_run_wall_s": first,
        "second_run_wall_s": second,
        "second_run_reused_everything": "everything was already built" in second_out,
        "first_run_stages": [
            line for line in first_out.splitlines() if line.split()[:1] and line.split()[0] in STAGES
        ],
        "text_index_build_s": (manifest.get("text_index") or {}).get("build_seconds"),
        "lite_recipe_sha256": _file_sha(HERE.parent / "src" / "illustra" / "encoders" / "lite.py"),
        "items": manifest["counts"]["items"],
        "ingest": {k: source.get(k) for k in ("selected", "added", "image_failures", "metadata_failures")},
        "model": result["model"],
        "eval": {
            "queries_file": args.queries,
            "n_queries": result["n_queries"],
            "k": result["k"],
            "map@100": round(result["metrics"]["map"], 4),
            "p@10": round(result["metrics"]["p@10"], 4),
            "r@10": round(result["metrics"]["r@10"], 4),
            "ndcg@10": round(result["metrics"]["ndcg@10"], 4),
            "random_map@100": round(result["random"]["map"], 4),
            "random_p@10": round(result["random"]["p@10"], 4),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))
    if temp and not args.keep:
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
