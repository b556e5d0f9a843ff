"""Near-duplicates and the collection map at scale: build time and peak memory of
``illustra duplicates`` and ``illustra map``, and the Map view's first paint and bytes in Chromium.

    .venv/bin/python benchmarks/bench_collection_scale.py --n 100000 [--workdir /tmp/cscale] [--keep]
    .venv/bin/python benchmarks/bench_collection_scale.py --collection DIR [--workdir /tmp/cscale]

``--n`` builds a collection of real BL catalogue rows (titles, authors, places, dates) with
clustered synthetic 1152-d vectors, ``--copies`` of which (2 %) get a planted near-copy (cosine
about 0.97) elsewhere in the collection, so the duplicates found can be checked. ``--collection``
works on an existing collection (the 1.08M one of bench_bl_million.py) through an overlay: a
folder with a copy of its manifest and links to its data, vectors and indexes, so the duplicates
and the map are written beside it and the original is not touched.

Each command runs as a user runs it (``illustra … --no-progress --json``) in a child process whose
peak resident memory is read from the kernel (getrusage of the children). Then the collection is
served on 127.0.0.1 and ``/map`` is opened ``--paints`` times in headless Chromium (a fresh browser
context each time: nothing cached), with every request to anywhere else blocked: first paint (the
first frame with points, in ms since navigation began), all points loaded, and the bytes the page
transferred (Chrome's own count, headers included). Machine load is recorded at each phase.

Writes benchmarks/results/collection_scale_<n>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 1152
MODEL = "synthetic-1152"
CHROMIUM = "/usr/bin/chromium"
LOADS: list[dict[str, Any]] = []
TARGETS = {"duplicates_seconds": 30 * 60, "peak_rss_bytes": 4 * 1024**3, "first_paint_ms": 3000,
           "overview_bytes": 20 * 1024**2}
# Runs the command in a child and prints the child's peak resident memory (bytes) last.
MEASURE = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print('PEAK_RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024); sys.exit(r.returncode)"
)


def load_mark(phase: str) -> None:
    LOADS.append({"phase": phase, "loadavg": [round(x, 2) for x in os.getloadavg()]})


def measured(args: list[str]) -> dict[str, Any]:
    exe = str(Path(sys.executable).with_name("illustra"))
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", MEASURE, exe, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"illustra {args[0]} failed ({p.returncode}): {p.stderr[-2000:]}")
    lines = p.stdout.strip().splitlines()
    peak = int(lines[-1].split()[1])
    summary = json.loads("\n".join(lines[:-1]))
    return {"wall_seconds": round(wall, 1), "peak_rss_bytes": peak, "summary": summary}


def synthetic(root: Path, n: int, copies: int) -> list[tuple[int, int]]:
    """A collection of real catalogue rows with clustered vectors and planted near-copies."""
    from synthetic import bl_titles, clustered_vectors

    from illustra.collection import Collection
    from illustra.embedding_store import EmbeddingStore

    meta = bl_titles(n)

    def rows():
        for i, (title, creator, place, date) in enumerate(meta):
            yield {"id": f"synthetic/{i:07d}", "title": title, "creator": creator, "place": place,
                   "date": date, "year": int(date[:4]) if date[:4].isdigit() else None,
                   "book_identifier": f"book{i // 12}"}

    coll = Collection.create(root, rows(), source={"kind": "synthetic", "n": n}, extra_fields=["book_identifier"])
    vecs = clustered_vectors(n, DIM, n_centres=3000)
    rng = np.random.default_rng(5)
    picks = rng.choice(n, 2 * copies, replace=False)
    src, dst = picks[:copies], picks[copies:]
    noise = rng.standard_normal((copies, DIM)).astype(np.float32) * 0.007
    vecs[dst] = vecs[src] + noise
    vecs[dst] /= np.linalg.norm(vecs[dst], axis=1, keepdims=True)
    store = EmbeddingStore(coll, MODEL)
    for s in range(0, n, 50_000):
        e = min(n, s + 50_000)
        store.write_chunk(s, e, np.arange(s, e), vecs[s:e])
    store.consolidate(DIM)
    return [(int(a), int(b)) for a, b in zip(src, dst, strict=True)]


def overlay(source: Path, root: Path) -> None:
    """``root``: the source collection's manifest and links to everything it holds."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "manifest.json", root / "manifest.json")
    for name in ("data", "embeddings", "index", "text"):
        if (source / name).exists() and not (root / name).exists():
            (root / name).symlink_to((source / name).resolve())


def first_paints(root: Path, times: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from illustra.api import create_app, serve_in_thread

    running = serve_in_thread(create_app(root))
    out: dict[str, Any] = {"runs": []}
    try:
        import httpx

        t = time.perf_counter()
        httpx.get(running.url + "/map", timeout=600)  # the server's first page (facets, text index)
        httpx.get(running.url + "/api/map", timeout=600)
        out["server_warm_up_seconds"] = round(time.perf_counter() - t, 1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for i in range(times):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                blocked: list[str] = []

                def guard(route: Any, blocked: list[str] = blocked) -> None:
                    host = urlsplit(route.request.url).hostname or ""
                    if route.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
                        route.continue_()
                    else:
                        blocked.append(route.request.url)
                        route.abort()

                context.route("**/*", guard)
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                sizes: dict[str, int] = {}
                cdp.on("Network.loadingFinished", lambda e, sizes=sizes: sizes.__setitem__(e["requestId"], int(e["encodedDataLength"])))
                page.goto(running.url + "/map", wait_until="commit")
                deadline = time.monotonic() + 300
                while page.evaluate("() => document.querySelector('[data-map]')?.dataset.loaded !== '1'"):
                    if time.monotonic() > deadline:
                        raise SystemExit("the map did not load within 300 s")
                    page.wait_for_timeout(20)
                page.wait_for_timeout(300)  # let the last responses be counted
                timing = page.evaluate(
                    "() => ({painted: window.illustraMapPaintedAt, loaded: window.illustraMapLoadedAt,"
                    " points: Number(document.querySelector('[data-map]').dataset.visible)})"
                )
                run = {"first_paint_ms": round(timing["painted"], 1), "all_loaded_ms": round(timing["loaded"], 1),
                       "points_on_screen": timing["points"], "bytes": sum(sizes.values()),
                       "requests": len(sizes), "blocked": blocked}
                out["runs"].append(run)
                print("paint", i, run, flush=True)
                context.close()
            browser.close()
    finally:
        running.stop()
    runs = out["runs"]
    out["first_paint_ms_median"] = statistics.median(r["first_paint_ms"] for r in runs)
    out["all_loaded_ms_median"] = statistics.median(r["all_loaded_ms"] for r in runs)
    out["bytes_median"] = statistics.median(r["bytes"] for r in runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--collection", default=None, help="an existing collection (used through an overlay)")
    ap.add_argument("--copies", type=int, default=None, help="planted near-copies (default 2 %% of --n)")
    ap.add_argument("--workdir", default="/tmp/cscale")
    ap.add_argument("--paints", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep a built collection for the next run")
    args = ap.parse_args()
    command = ".venv/bin/python benchmarks/bench_collection_scale.py" + "".join(f" {a}" for a in sys.argv[1:])
    work = Path(args.workdir)
    load_mark("start")
    planted: list[tuple[int, int]] = []
    if args.collection:
        source = Path(args.collection)
        root = work / f"overlay-{source.parent.name}"
        overlay(source, root)
    else:
        root = work / f"synthetic-{args.n}"
        copies = args.copies if args.copies is not None else args.n // 50
        pairs_file = root.parent / f"synthetic-{args.n}-pairs.json"
        if not (root / "manifest.json").is_file() or not pairs_file.is_file():
            shutil.rmtree(root, ignore_errors=True)
            root.parent.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            planted = synthetic(root, args.n, copies)
            pairs_file.write_text(json.dumps(planted))
            print(f"built {root} in {time.perf_counter() - t:.0f} s", flush=True)
        planted = [tuple(p) for p in json.loads(pairs_file.read_text())]  # type: ignore[misc]
    from illustra.collection import Collection

    coll = Collection(root)
    n = len(coll)
    out: dict[str, Any] = {"benchmark": "collection_scale", "command": command, "items": n,
                           "machine": {"cpus": os.cpu_count()}, "targets": TARGETS}
    # Fresh builds: nothing left from an earlier run.
    shutil.rmtree(root / "duplicates", ignore_errors=True)
    shutil.rmtree(root / "map", ignore_errors=True)
    load_mark("before duplicates")
    out["duplicates"] = measured(["duplicates", "--collection", str(root), "--no-progress", "--json"])
    print("duplicates", out["duplicates"], flush=True)
    load_mark("after duplicates")
    out["duplicates_regroup"] = measured(["duplicates", "--collection", str(root), "--threshold", "0.97",
                                          "--no-progress", "--json"])
    load_mark("after regroup")
    out["duplicates_regroup_back"] = measured(["duplicates", "--collection", str(root), "--no-progress", "--json"])
    if planted:
        from illustra.duplicates import DuplicateStore

        clusters = DuplicateStore(Collection(root)).require()
        found = sum(1 for a, b in planted if clusters.of_row(a) >= 0 and clusters.of_row(a) == clusters.of_row(b))
        out["planted_copies"] = {"pairs": len(planted), "found_in_one_cluster": found,
                                 "recall": round(found / len(planted), 4)}
        print("planted", out["planted_copies"], flush=True)
    load_mark("before map")
    out["map"] = measured(["map", "--collection", str(root), "--no-progress", "--json"])
    print("map", out["map"], flush=True)
    load_mark("after map")
    out["map_view"] = first_paints(root, args.paints)
    load_mark("after map view")
    d, m = out["duplicates"], out["map"]
    out["checks"] = {
        "duplicates_within_30_min": d["wall_seconds"] <= TARGETS["duplicates_seconds"],
        "duplicates_within_4GB": d["peak_rss_bytes"] <= TARGETS["peak_rss_bytes"],
        "map_within_4GB": m["peak_rss_bytes"] <= TARGETS["peak_rss_bytes"],
        "first_paint_within_3_s": out["map_view"]["first_paint_ms_median"] <= TARGETS["first_paint_ms"],
        "overview_within_20MB": out["map_view"]["bytes_median"] <= TARGETS["overview_bytes"],
    }
    out["load"] = LOADS
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"collection_scale_{n}.json"
    target.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out["checks"]), f"wrote {target}", flush=True)
    if not args.keep and not args.collection:
        shutil.rmtree(root, ignore_errors=True)
    elif args.collection:
        shutil.rmtree(root, ignore_errors=True)  # the overlay: duplicates and map of a borrowed collection


if __name__ == "__main__":
    main()
