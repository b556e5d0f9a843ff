"""The Ray engine against the local engine, side by side in one run: same pictures, same model.

    .venv/bin/python benchmarks/bench_ray_embed.py [--n 2000] [--rounds 1] [--batch-size 32] [--seed 0]

``--n`` Open Clip Art PNGs (/usr/share/openclipart/png, drawn at random with ``--seed``) are stored
in a collection the way ingest stores pictures (bounded JPEG copies), then embedded with ``lite``:

(a) the local engine, ``embed_collection``: decode threads and the model in this process (the
    model already loaded, as ``illustra embed`` loads it before embedding), with torch's default
    threads (one per core) and again with one torch thread, as the Ray actor has;
(b) the Ray engine, ``embed_collection_ray`` on a Ray instance started for the run (as
    ``illustra embed --engine ray`` does without --ray-address): decode tasks, one encoder actor
    that loads the model itself, the driver writing the chunks.

Rounds alternate (a), (a) with one thread and (b) on fresh copies of the collection, so the machine's load falls on
both alike. Reported: images/s end to end ((b) including starting Ray and the actor loading the
model, and without starting Ray), steady images/s (from the first chunk written to the last), the
overhead ratio (local images/s over Ray images/s), agreement of the vectors and skip lists, and the
load average at each phase. Writes benchmarks/results/ray_embed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from needs import OPENCLIPART_PNG, need_dir  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ray_embed.json"
CHUNK_ROWS = 256  # several chunks per run, so the steady rate can be read from their times
LOADS: list[dict[str, Any]] = []
CHUNK_WRITES: list[tuple[float, int]] = []  # (time, images settled) per chunk written


def load_mark(phase: str) -> None:
    LOADS.append({"phase": phase, "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()]})


def build_collection(root: Path, n: int, seed: int) -> dict[str, Any]:
    from illustra import images
    from illustra.collection import Collection
    from illustra.errors import BadImage

    files = sorted(OPENCLIPART_PNG.rglob("*.png"))
    rng = np.random.default_rng(seed)
    chosen = [files[i] for i in sorted(rng.choice(len(files), min(n, len(files)), replace=False))]
    rows = []
    unreadable = 0
    for path in chosen:
        rel = str(path.relative_to(OPENCLIPART_PNG))
        try:
            data = images.encode_stored(images.open_image(path))
        except BadImage:
            unreadable += 1  # kept as its raw bytes: both engines must skip it the same way
            data = path.read_bytes()
        rows.append({"id": rel, "image": {"bytes": data, "path": None}, "title": path.stem})
    Collection.create(root, rows, source={"kind": "benchmark"})
    stored = [len(r["image"]["bytes"]) for r in rows]
    return {
        "pictures": len(rows),
        "unreadable_at_ingest": unreadable,
        "mean_stored_bytes": int(np.mean(stored)),
    }


def record_chunk_writes() -> None:
    """Note when each chunk is written and how many images it settles: both engines write their
    chunks in this process."""
    from illustra.embedding_store import EmbeddingStore

    original = EmbeddingStore.write_chunk

    def write_chunk(self: Any, start: int, end: int, rows: Any, vectors: Any, skipped: Any = None) -> None:
        original(self, start, end, rows, vectors, skipped=skipped)
        CHUNK_WRITES.append((time.perf_counter(), len(rows) + len(skipped or [])))

    EmbeddingStore.write_chunk = write_chunk  # type: ignore[method-assign]


def steady_rate() -> float | None:
    """Images/s from the first chunk written to the last (start-up excluded)."""
    marks = list(CHUNK_WRITES)
    if len(marks) < 3:
        return None
    span = marks[-1][0] - marks[0][0]
    return round(sum(n for _, n in marks[1:]) / span, 2) if span > 0 else None


def run_local(
    base: Path, work: Path, encoder: Any, batch_size: int, threads: int | None = None
) -> dict[str, Any]:
    import torch

    from illustra.collection import Collection
    from illustra.embed import embed_collection

    shutil.copytree(base, work)
    coll = Collection(work)
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    CHUNK_WRITES.clear()
    t = time.perf_counter()
    try:
        summary = embed_collection(
            coll, encoder, batch_size=batch_size, chunk_rows=CHUNK_ROWS, progress=False
        )
    finally:
        seconds = time.perf_counter() - t
        torch.set_num_threads(before)
    return {
        "seconds": round(seconds, 2),
        "images_per_s": round(summary.embedded / seconds, 2),
        "steady_images_per_s": steady_rate(),
        "embedded": summary.embedded,
        "skipped": summary.skipped,
    }


def run_ray(base: Path, work: Path, encoder: Any, batch_size: int) -> dict[str, Any]:
    from illustra.collection import Collection
    from illustra.embed_ray import RayEngine, embed_collection_ray

    shutil.copytree(base, work)
    coll = Collection(work)
    CHUNK_WRITES.clear()
    t = time.perf_counter()
    with RayEngine() as engine:
        ray = engine.connect()
        started = time.perf_counter() - t
        resources = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
        summary = embed_collection_ray(
            coll, encoder, engine, batch_size=batch_size, chunk_rows=CHUNK_ROWS, progress=False
        )
        embedded_at = time.perf_counter() - t
    seconds = time.perf_counter() - t
    return {
        "ray_start_s": round(started, 2),
        "seconds": round(seconds, 2),
        "seconds_after_start": round(embedded_at - started, 2),
        "images_per_s": round(summary.embedded / seconds, 2),
        "images_per_s_after_start": round(summary.embedded / (embedded_at - started), 2),
        "steady_images_per_s": steady_rate(),
        "embedded": summary.embedded,
        "skipped": summary.skipped,
        "ray_resources": resources,
    }


def stored(root: Path, model: str) -> tuple[list[str], np.ndarray, list[str]]:
    from illustra.collection import Collection
    from illustra.embedding_store import EmbeddingStore

    coll = Collection(root)
    store = EmbeddingStore(coll, model)
    skipped = store.skipped_path.read_text(encoding="utf-8").splitlines()[1:]
    return [str(coll.ids[r]) for r in store.rows()], np.asarray(store.vectors()), skipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="Open Clip Art pictures")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds of (a) and (b)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    need_dir(OPENCLIPART_PNG, "the Open Clip Art PNGs (Debian package openclipart-png)")
    import ray
    import torch

    from illustra import settings
    from illustra.encoders import load_encoder

    record_chunk_writes()
    command = ".venv/bin/python benchmarks/bench_ray_embed.py" + "".join(f" {a}" for a in sys.argv[1:])
    load_mark("start")
    with tempfile.TemporaryDirectory(prefix="bench-ray-embed-") as tmp:
        tmpdir = Path(tmp)
        t = time.perf_counter()
        facts = build_collection(tmpdir / "base", args.n, args.seed)
        build_s = time.perf_counter() - t
        print(f"stored {facts['pictures']} pictures in {build_s:.1f} s", file=sys.stderr)
        load_mark("after building the collection")
        t = time.perf_counter()
        encoder = load_encoder("lite")
        load_s = time.perf_counter() - t
        local_runs: list[dict[str, Any]] = []
        one_thread_runs: list[dict[str, Any]] = []
        ray_runs: list[dict[str, Any]] = []
        for r in range(args.rounds):
            local_runs.append(run_local(tmpdir / "base", tmpdir / f"local-{r}", encoder, args.batch_size))
            load_mark(f"round {r + 1}: after local")
            one_thread_runs.append(
                run_local(tmpdir / "base", tmpdir / f"local1-{r}", encoder, args.batch_size, threads=1)
            )
            load_mark(f"round {r + 1}: after local with one torch thread")
            ray_runs.append(run_ray(tmpdir / "base", tmpdir / f"ray-{r}", encoder, args.batch_size))
            load_mark(f"round {r + 1}: after Ray")
            print(
                f"round {r + 1}: local {local_runs[-1]['images_per_s']} img/s "
                f"({one_thread_runs[-1]['images_per_s']} with one torch thread), "
                f"Ray {ray_runs[-1]['images_per_s']} img/s ({ray_runs[-1]['images_per_s_after_start']} "
                "without starting Ray)",
                file=sys.stderr,
            )
        ids_a, vec_a, skip_a = stored(tmpdir / "local-0", encoder.name)
        ids_b, vec_b, skip_b = stored(tmpdir / "ray-0", encoder.name)
    assert ids_a == ids_b, "the engines embedded different rows"
    cos = np.sum(vec_a * vec_b, axis=1)

    def median(runs: list[dict[str, Any]], key: str) -> float | None:
        vals = [x[key] for x in runs if x.get(key) is not None]
        return round(float(np.median(vals)), 2) if vals else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    local_ips, ray_ips = median(local_runs, "images_per_s"), median(ray_runs, "images_per_s")
    result = {
        "benchmark": "ray_embed",
        "command": command,
        "model": "lite (EfficientNet-Lite0 + MiniLM, ConSE), CPU",
        "collection": {
            **facts,
            "build_seconds": round(build_s, 1),
            "source": str(OPENCLIPART_PNG),
            "seed": args.seed,
        },
        "batch_size": args.batch_size,
        "chunk_rows": CHUNK_ROWS,
        "local": {
            "what": "embed_collection: decode threads + the model in this process (model already loaded)",
            "decode_threads": int(settings.get("workers")),
            "torch_threads": torch.get_num_threads(),
            "model_load_seconds_not_timed": round(load_s, 2),
            "rounds": local_runs,
            "images_per_s": local_ips,
            "steady_images_per_s": median(local_runs, "steady_images_per_s"),
        },
        "local_one_torch_thread": {
            "what": "the same with torch.set_num_threads(1), as in the Ray actor",
            "rounds": one_thread_runs,
            "images_per_s": median(one_thread_runs, "images_per_s"),
            "steady_images_per_s": median(one_thread_runs, "steady_images_per_s"),
        },
        "ray": {
            "what": "embed_collection_ray on a Ray instance started for the run (include_dashboard off, "
            "512 MiB object store): decode tasks (1 CPU each) + 1 encoder actor (1 CPU, so 1 torch "
            "thread) that loads the model itself + the driver writing chunks",
            "rounds": ray_runs,
            "images_per_s": ray_ips,
            "images_per_s_after_start": median(ray_runs, "images_per_s_after_start"),
            "steady_images_per_s": median(ray_runs, "steady_images_per_s"),
        },
        "overhead_ratio": {
            "what": "local images/s over Ray images/s (above 1: Ray is slower)",
            "end_to_end": ratio(local_ips, ray_ips),
            "without_starting_ray": ratio(local_ips, median(ray_runs, "images_per_s_after_start")),
            "steady": ratio(
                median(local_runs, "steady_images_per_s"), median(ray_runs, "steady_images_per_s")
            ),
            "one_torch_thread_end_to_end": ratio(median(one_thread_runs, "images_per_s"), ray_ips),
        },
        "agreement": {
            "same_rows": True,
            "vectors_cosine_min": round(float(cos.min()), 6),
            "vectors_cosine_mean": round(float(cos.mean()), 6),
            "same_skip_list": skip_a == skip_b,
            "skipped": len(skip_a),
        },
        "machine": {
            "cpu_cores_available": len(os.sched_getaffinity(0)),
            "load": LOADS,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ray": ray.__version__,
        },
        "note": "rounds alternate (a), (a) with one torch thread and (b) on fresh copies of one collection; "
        "rates are medians of the rounds",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
