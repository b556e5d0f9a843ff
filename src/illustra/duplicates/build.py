"""``illustra duplicates``: find near-copies among a collection's pictures and group them.

The picture space is the one picture queries use: the model's picture-only companion (e.g.
``lite-visual`` beside ``lite``) when it is embedded, else the model's own vectors. The
k-nearest-neighbour graph (``graph.py``) is kept above a floor below any usual threshold, so
trying another threshold only regroups (seconds); the graph is rebuilt when the vectors change.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..collection import Collection, now_iso, write_bytes_atomic
from ..embedding_store import EmbeddingStore, pick_model, similarity_companion
from ..errors import BadInput, NotEmbedded
from . import clusters as cl
from .graph import GraphPlan, Progress, build_graph, fingerprint_of
from .store import clusters_path, duplicates_dir, graph_path

# Measured by benchmarks/bench_duplicates.py (Open Clip Art pictures and printed-again variants,
# lite-visual; benchmarks/results/duplicates_threshold.json, README): the best cluster F1 among
# thresholds whose pairs are at least 90 % right (0.93 of pairs right, 13 % of true pairs found).
DEFAULT_THRESHOLD = 0.94
# The graph keeps neighbours down to this cosine, so thresholds above it only regroup.
GRAPH_FLOOR = 0.8
NEIGHBOURS = 16  # k of the graph
PROBE = 4  # cells each vector is compared in (recall of planted copies in random 64-d data: 3 -> 0.98, 4 -> 0.994)


def check_threshold(value: float | str | None) -> float:
    """A threshold in (0, 1]; anything else is ``BadInput`` saying what is accepted."""
    if value is None:
        return DEFAULT_THRESHOLD
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"the threshold must be a number above 0 and at most 1, got {str(value)[:40]!r}") from None
    if not 0 < t <= 1:  # also refuses NaN
        raise BadInput(f"the threshold must be above 0 and at most 1 (a cosine similarity), got {value}")
    return t


def picture_vectors(collection: Collection, model: str | None = None) -> tuple[str, np.ndarray, np.ndarray]:
    """(space, vectors, dataset rows) of the collection's picture space."""
    try:
        base = pick_model(collection, model)
    except NotEmbedded:
        raise NotEmbedded(
            f"{collection.root} has no picture vectors: near-duplicates are found among embedded "
            "pictures; run 'illustra embed' first"
        ) from None
    space = similarity_companion(collection, base) or base
    store = EmbeddingStore(collection, space)
    vectors = store.vectors()
    rows = store.rows()
    if len(rows) == 0:
        raise NotEmbedded(f"{collection.root} has no picture vectors (no picture could be embedded)")
    return space, vectors, rows


def _load_graph(path: Path) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray] | None:
    if not path.is_file():
        return None
    with np.load(path) as z:
        return json.loads(str(z["plan"])), z["a"], z["b"], z["s"]


def _save_graph(path: Path, plan: GraphPlan, a: np.ndarray, b: np.ndarray, s: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, plan=np.array(json.dumps(asdict(plan))), a=a, b=b, s=s)
    write_bytes_atomic(path, buf.getvalue())


def _reusable(found: dict[str, Any], plan: GraphPlan) -> bool:
    """A finished graph answers a new threshold when it read the same vectors the same way and
    kept neighbours down to at most the new floor."""
    same = {k: v for k, v in asdict(plan).items() if k not in ("floor", "cells")}
    return all(found.get(k) == v for k, v in same.items()) and float(found.get("floor", 2)) <= plan.floor


def build_duplicates(
    collection: Collection,
    threshold: float | None = None,
    *,
    model: str | None = None,
    neighbours: int = NEIGHBOURS,
    probe: int = PROBE,
    cells: int | None = None,
    progress: Progress | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build (or resume, or regroup) the near-duplicate clusters; returns the build's summary."""
    t = check_threshold(threshold)
    started = time.perf_counter()
    space, vectors, rows = picture_vectors(collection, model)
    plan = GraphPlan.make(
        space, vectors, fingerprint_of(vectors), k=neighbours, floor=min(t, GRAPH_FLOOR), probe=probe, cells=cells
    )
    folder = duplicates_dir(collection)
    folder.mkdir(parents=True, exist_ok=True)
    found = _load_graph(graph_path(collection))
    graph_seconds = 0.0
    if found is not None and _reusable(found[0], plan):
        plan_used, a, b, s = found
        if notify:
            notify(f"reusing the neighbour graph built down to cosine {plan_used['floor']}")
    else:
        g0 = time.perf_counter()
        pa, pb, s = build_graph(vectors, plan, folder / "graph-work", progress)
        a, b = rows[pa], rows[pb]  # vector positions -> dataset rows
        _save_graph(graph_path(collection), plan, a, b, s)
        shutil.rmtree(folder / "graph-work", ignore_errors=True)
        plan_used = asdict(plan)
        graph_seconds = time.perf_counter() - g0
    keep = s >= t
    groups = cl.connected(len(collection), a[keep], b[keep])
    sizes = groups.sizes()
    groups.meta = {
        "threshold": t,
        "space": space,
        "vectors": int(len(rows)),
        "items": len(collection),
        "clusters": len(groups),
        "items_in_clusters": int(sizes.sum()),
        "largest": int(sizes.max()) if len(sizes) else 0,
        "pairs_above_threshold": int(keep.sum()),
        "graph": plan_used,
        "graph_seconds": round(graph_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "built": now_iso(),
    }
    cl.save(clusters_path(collection), groups)
    return dict(groups.meta)
