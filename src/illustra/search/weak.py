"""The weak-match level: below which picture score a result is one a query that describes nothing
would also have reached.

Measured per collection and model from the collection's own items: a fixed set of nonsense probe
queries (random letter strings, the same every time) is embedded with the model's text side and
each probe's best score in the collection is recorded; the level is the 95th percentile of those
best scores. A result scoring below it is marked weak, and when every result of a query is weak
the response says plainly that nothing seems to match. Stored beside the model's vectors
(``embeddings/<model>/weak_match.json``) and measured again whenever the vectors change.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..collection import Collection, now_iso, write_json_atomic
from ..encoders.base import model_slug

NOTHING_MATCHES = "nothing in this collection seems to match; these are the closest pictures"
N_PROBES = 64
PERCENTILE = 95.0
METHOD = (
    f"{N_PROBES} nonsense probe queries (random letter strings, fixed seed) embedded with the model's text "
    f"side; the level is the {PERCENTILE:g}th percentile of each probe's best score among the collection's items"
)
FILE = "weak_match.json"


def probes(n: int = N_PROBES) -> list[str]:
    """Queries that describe nothing: one to three random 'words' of 3-8 letters (fixed seed)."""
    rng = random.Random(20240601)
    return [
        " ".join(
            "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8)))
            for _ in range(rng.randint(1, 3))
        )
        for _ in range(n)
    ]


def _path(coll: Collection, model: str, text_model: str = "") -> Path:
    # Queries embedded by a separate text model score differently: a level of their own.
    name = FILE if not text_model else f"weak_match.{model_slug(text_model)}.json"
    return coll.root / "embeddings" / model_slug(model) / name


def _stamp(coll: Collection, model: str) -> dict[str, Any]:
    """What the measurement depends on: the model's vectors as the manifest describes them."""
    entry = coll.manifest.get("embeddings", {}).get(model, {})
    return {"count": entry.get("count"), "dim": entry.get("dim"), "updated": entry.get("updated")}


def stored(coll: Collection, model: str, text_model: str = "") -> dict[str, Any] | None:
    """The stored level when it was measured on the model's current vectors, else None."""
    try:
        data = json.loads(_path(coll, model, text_model).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if data.get("stamp") == _stamp(coll, model) else None


def measure(
    coll: Collection,
    model: str,
    embed_texts: Callable[[list[str]], np.ndarray],
    best_score: Callable[[np.ndarray], float],
    text_model: str = "",
) -> dict[str, Any]:
    """Measure and store the level. ``best_score`` gives a query vector's top score in the collection."""
    qs = probes()
    vecs = embed_texts(qs)
    best = np.asarray([best_score(v) for v in vecs], dtype=np.float64)
    out = {
        "model": model,
        "text_model": text_model or None,
        "level": round(float(np.percentile(best, PERCENTILE)), 6),
        "method": METHOD,
        "probes": len(qs),
        "probe_best": {
            "min": round(float(best.min()), 6),
            "median": round(float(np.median(best)), 6),
            "max": round(float(best.max()), 6),
        },
        "measured": now_iso(),
        "stamp": _stamp(coll, model),
    }
    path = _path(coll, model, text_model)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, out)
    return out


def mark(hits: list[Any], level: float) -> bool:
    """Mark each hit weak or not by its picture score; True when every hit is weak.

    A hit whose catalogue words matched the query (hybrid mode) is never weak.
    """
    if not hits:
        return False
    for h in hits:
        ex = h.explain or {}
        score = ex.get("visual_score")
        text_matched = bool(ex.get("matched_terms"))
        h.weak = (not text_matched) and (score is None or float(score) < level)
    return all(h.weak for h in hits)



def card_text(coll: Collection, model: str) -> str:
    """The model card's paragraph on the level: its value and how it was measured."""
    found = stored(coll, model)
    if found is None:
        return (
            "Not measured yet: it is measured on the model's vectors at the first text search "
            "(or when `illustra serve` starts) and stored in the collection."
        )
    pb = found["probe_best"]
    return (
        f"Results with a picture score below {found['level']:.3f} are marked weak; when every result of a "
        f"query is, the page and API say that nothing in this collection seems to match. Measured "
        f"{found['measured']}: {found['method']} (best scores of the probes: min {pb['min']:.3f}, "
        f"median {pb['median']:.3f}, max {pb['max']:.3f})."
    )
