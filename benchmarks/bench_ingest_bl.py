"""Metadata-only ingest of the 500k-row British Library Flickr manifest: wall time and peak memory.

    .venv/bin/python benchmarks/bench_ingest_bl.py [--manifest PATH] [--limit N]

Runs the real command, ``illustra ingest manifest FILE --preset bl-flickr``, in a child process
into a temporary collection, and reads the child's own peak resident memory from the kernel
(``os.wait4`` rusage, so the benchmark's own memory is not counted). The requirement is a peak
under 2 GB. Writes benchmarks/results/ingest_bl.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from needs import BL_MANIFEST, need_file

HERE = Path(__file__).resolve().parent
DEFAULT_MANIFEST = BL_MANIFEST
LIMIT_BYTES = 2 * 1024**3


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    ap.add_argument("--limit", type=int, default=None, help="Ingest only the first N rows (quick check).")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ingest_bl.json")
    args = ap.parse_args()
    need_file(args.manifest, "the BL Flickr manifest")

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-bl-"))
    coll = work / "collection"
    cmd = [
        sys.executable,
        "-c",
        "from illustra.cli import main; main()",
        "ingest",
        "manifest",
        str(args.manifest),
        "--preset",
        "bl-flickr",
        "--no-progress",
        "--collection",
        str(coll),
    ]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    try:
        out_path, err_path = work / "stdout.txt", work / "stderr.txt"
        with out_path.open("w") as out_fh, err_path.open("w") as err_fh:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out_fh, stderr=err_fh, text=True, env=env)
            # wait4 reaps this child and returns its own rusage: its peak RSS, nobody else's.
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out, err = out_path.read_text(), err_path.read_text()
        if proc.returncode != 0:
            sys.exit(f"ingest failed ({proc.returncode}):\n{err}")
        peak = int(usage.ru_maxrss) * 1024  # kilobytes on Linux
        manifest = json.loads((coll / "manifest.json").read_text())
        summary = out.strip().splitlines()[0] if out.strip() else ""
        items = int(manifest["counts"]["items"])
        result = {
            "benchmark": "ingest_bl",
            "command": " ".join(["illustra", *cmd[3:]]).replace(str(coll), "<tmp>/collection"),
            "manifest": args.manifest.name,
            "manifest_bytes": args.manifest.stat().st_size,
            "limit": args.limit,
            "items": items,
            "counts": manifest["counts"],
            "summary_line": summary,
            "notes": [line for line in err.strip().splitlines() if line and "%" not in line],
            "wall_seconds": round(wall, 2),
            "rows_per_second": round(items / wall, 1) if wall else None,
            "peak_rss_bytes": peak,
            "peak_rss_mib": round(peak / 1024**2, 1),
            "peak_rss_under_2gb": peak < LIMIT_BYTES,
            "collection_bytes_on_disk": dir_size(coll),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("items", "wall_seconds", "peak_rss_mib", "peak_rss_under_2gb")}))


if __name__ == "__main__":
    main()
