"""``illustra map``: lay out every picture of a collection in 2D and name its regions."""

from __future__ import annotations

import shutil
import time
from typing import Any

import numpy as np

from ..collection import Collection, now_iso
from ..duplicates.build import picture_vectors
from ..duplicates.graph import fingerprint_of
from ..errors import BadInput
from . import store
from .labels import region_labels
from .layout import DEFAULT_SAMPLE, FIT_MAX, NO_POSITION, LayoutPlan, Progress, compute_layout, quantise

NEIGHBOURS = 15
MIN_DIST = 0.1


def build_map(
    collection: Collection,
    *,
    model: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build (or resume) the map; returns its summary."""
    if sample is not None and sample < 2:
        raise BadInput(f"the fitting sample must hold at least 2 pictures, got {sample}")
    started = time.perf_counter()
    space, vectors, rows = picture_vectors(collection, model)
    n = len(rows)
    fit_on = n if n <= FIT_MAX and sample is None else min(n, sample or DEFAULT_SAMPLE)
    plan = LayoutPlan(space, n, int(vectors.shape[1]), fingerprint_of(vectors), fit_on, NEIGHBOURS, MIN_DIST, seed)
    folder = store.map_dir(collection)
    folder.mkdir(parents=True, exist_ok=True)
    xy, method = compute_layout(vectors, plan, folder / "work", progress)
    layout_s = time.perf_counter() - started
    qx, qy, bounds = quantise(xy)
    x = np.full(len(collection), NO_POSITION, np.uint16)
    y = np.full(len(collection), NO_POSITION, np.uint16)
    x[rows], y[rows] = qx, qy
    t = time.perf_counter()
    labels = region_labels(collection, x, y, seed)
    labels_s = time.perf_counter() - t
    meta = {
        "space": space,
        "items": len(collection),
        "placed": int(np.count_nonzero(x != NO_POSITION)),
        "method": method,
        "fit_sample": fit_on,
        "neighbours": NEIGHBOURS,
        "min_dist": MIN_DIST,
        "seed": seed,
        "bounds": bounds,
        "labels": len(labels),
        "layout_seconds": round(layout_s, 1),
        "labels_seconds": round(labels_s, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "built": now_iso(),
    }
    store.save(store.layout_path(collection), store.CollectionMap(x, y, labels, meta))
    shutil.rmtree(folder / "work", ignore_errors=True)
    return meta
