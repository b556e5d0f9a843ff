"""End-to-end latency and throughput of ``GET /api/search`` over HTTP, 100k items, HNSW, lite encoder.

    .venv/bin/python benchmarks/bench_api.py [--n 100000] [--queries 200] [--clients 20] [--seconds 30]

Builds a 100k-item collection (real BL catalogue rows, clustered synthetic 384-d vectors registered
under the ``lite`` model; the query side embeds text with the real lite encoder), indexes it (kind
auto: HNSW above exact_index_max), starts ``illustra serve`` in a subprocess, then measures

* sequential, warm: p50/p95 of ``/api/search`` for ``--queries`` queries drawn from a word list,
  end to end (client clock) and server-side (the ``Server-Timing`` header);
* ``--clients`` concurrent clients for ``--seconds`` s: requests, errors (must be 0), throughput.

Writes benchmarks/results/api.json. Target: sequential p95 <= 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from needs import need_bl_manifest  # noqa: E402
from synthetic import synthetic_collection  # noqa: E402

from illustra.collection import Collection  # noqa: E402
from illustra.index import build_index  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "api.json"
TARGET_P95_MS = 150.0

WORDS = [
    "ship",
    "storm",
    "harbour",
    "lighthouse",
    "coast",
    "map",
    "river",
    "bridge",
    "castle",
    "cathedral",
    "church",
    "abbey",
    "ruin",
    "tower",
    "street",
    "market",
    "village",
    "farm",
    "mill",
    "garden",
    "tree",
    "flower",
    "fern",
    "botanical",
    "bird",
    "owl",
    "eagle",
    "horse",
    "dog",
    "cat",
    "lion",
    "elephant",
    "fish",
    "insect",
    "butterfly",
    "portrait",
    "woman",
    "man",
    "child",
    "soldier",
    "king",
    "queen",
    "monk",
    "knight",
    "crowd",
    "dance",
    "procession",
    "battle",
    "army",
    "sword",
    "armour",
    "costume",
    "dress",
    "hat",
    "engraving",
    "woodcut",
    "initial",
    "letter",
    "ornament",
    "border",
    "title",
    "page",
    "frontispiece",
    "diagram",
    "machine",
    "engine",
    "locomotive",
    "railway",
    "balloon",
    "telescope",
    "skeleton",
    "skull",
    "anatomy",
    "plant",
    "mountain",
    "volcano",
    "glacier",
    "desert",
    "camel",
    "tent",
    "temple",
    "pyramid",
    "mosque",
    "palace",
    "interior",
    "library",
    "fireplace",
    "table",
    "chair",
    "coin",
    "medal",
    "seal",
    "shield",
]
ADJECTIVES = [
    "old",
    "small",
    "large",
    "dark",
    "stormy",
    "ancient",
    "decorated",
    "ruined",
    "busy",
    "quiet",
    "winter",
    "night",
]


def make_queries(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(1, 4)), replace=False))
        if rng.random() < 0.4:
            words.insert(0, str(rng.choice(ADJECTIVES)))
        out.append(("a " if rng.random() < 0.5 else "") + " ".join(words))
    return out


def pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs), p)), 2) if xs else float("nan")


def server_ms(headers: object) -> float | None:
    m = re.search(r"dur=([0-9.]+)", str(getattr(headers, "get", lambda *_: "")("server-timing") or ""))
    return float(m.group(1)) if m else None


def start_server(root: Path) -> tuple[subprocess.Popen[str], str]:
    exe = Path(sys.executable).with_name("illustra")
    cmd = [str(exe), "serve", "--collection", str(root), "--port", "0"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 300
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server exited early with {proc.wait()}")
        print("server:", line.rstrip(), file=sys.stderr)
        m = re.search(r" at (http://\S+?)/ ", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise RuntimeError("the server did not start within 300 s")


def sequential(url: str, queries: list[str]) -> dict[str, object]:
    import httpx

    end_to_end, server = [], []
    with httpx.Client(base_url=url, timeout=30) as client:
        for q in queries[:10]:  # warm-up: connection, caches, first-call allocations
            client.get("/api/search", params={"q": q, "k": 10}).raise_for_status()
        for q in queries:
            t = time.perf_counter()
            r = client.get("/api/search", params={"q": q, "k": 10})
            end_to_end.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
            assert len(r.json()["results"]) == 10
            s = server_ms(r.headers)
            if s is not None:
                server.append(s)
    return {
        "queries": len(queries),
        "p50_ms": pct(end_to_end, 50),
        "p95_ms": pct(end_to_end, 95),
        "p99_ms": pct(end_to_end, 99),
        "mean_ms": round(float(np.mean(end_to_end)), 2),
        "server_p50_ms": pct(server, 50),
        "server_p95_ms": pct(server, 95),
    }


async def concurrent(
    url: str,
    queries: list[str],
    clients: int,
    seconds: float,
    *,
    modes: tuple[str | None, ...] = (None,),
    timeout: float = 60,
) -> dict[str, object]:
    """``clients`` clients searching for ``seconds``; queries (and modes, in turn) go round."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.monotonic() + seconds

    async def worker(i: int, client: httpx.AsyncClient) -> None:
        n = i
        while time.monotonic() < stop_at:
            params: dict[str, object] = {"q": queries[n % len(queries)], "k": 10}
            mode = modes[n % len(modes)]
            if mode is not None:
                params["mode"] = mode
            n += clients
            t = time.perf_counter()
            try:
                r = await client.get("/api/search", params=params)
                if r.status_code != 200 or len(r.json()["results"]) != 10:
                    errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                    continue
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append((time.perf_counter() - t) * 1000)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(worker(i, client) for i in range(clients)))
    elapsed = time.monotonic() - started
    return {
        "clients": clients,
        "modes": ", ".join(m or "default" for m in modes),
        "seconds": round(elapsed, 2),
        "requests": len(latencies) + len(errors),
        "ok": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument(
        "--collection", type=Path, help="Reuse (or keep) the collection here instead of a temp dir."
    )
    args = ap.parse_args()
    if args.collection is None or not (Path(args.collection) / "manifest.json").exists():
        need_bl_manifest()  # the collection to build takes its catalogue rows from it

    queries = make_queries(args.queries)
    tmp = tempfile.TemporaryDirectory()
    root = args.collection or Path(tmp.name) / "c"
    t0 = time.perf_counter()
    if not (root / "manifest.json").exists():
        coll = synthetic_collection(root, args.n, 384, "lite")
        index_info = build_index(coll, "lite")  # kind auto: HNSW above exact_index_max
    else:
        index_info = Collection(root).manifest["indexes"]["lite"]
    build_s = round(time.perf_counter() - t0, 1)
    out: dict[str, object] = {
        "command": "python benchmarks/bench_api.py " + " ".join(sys.argv[1:]),
        "n": args.n,
        "model": "lite (query embedding: real lite encoder; stored vectors: synthetic clustered 384-d)",
        "index": {k: index_info.get(k) for k in ("kind", "count", "params", "build_seconds")},
        "setup_seconds": build_s,
        "machine": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()]},
        "target_p95_ms": TARGET_P95_MS,
    }
    proc, url = start_server(root)
    try:
        out["sequential"] = sequential(url, queries)
        print(json.dumps(out["sequential"]), file=sys.stderr)
        out["concurrent"] = asyncio.run(concurrent(url, queries, args.clients, args.seconds))
        print(json.dumps(out["concurrent"]), file=sys.stderr)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        tmp.cleanup()
    out["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]  # type: ignore[index]
    seq = out["sequential"]
    conc = out["concurrent"]
    out["met_target"] = bool(seq["p95_ms"] <= TARGET_P95_MS) and conc["errors"] == 0  # type: ignore[index,operator]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
