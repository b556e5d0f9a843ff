"""A separate text model for queries (``--text-model``, setting ``text_model``): e.g. a
multilingual sentence-transformers model trained into a CLIP model's image space. The pictures stay
in the image model's space; each pairing used is recorded beside the model's vectors
(``embeddings/<model>/text_models.json``) and shown in the model card."""

from __future__ import annotations

import json
import threading
from typing import Any

from ..collection import Collection, now_iso, write_json_atomic
from ..encoders.base import model_slug
from ..encoders.sentence import SentenceTextEncoder
from ..errors import ModelMismatch

FILE = "text_models.json"
_CACHE: dict[str, SentenceTextEncoder] = {}
_LOCK = threading.Lock()


def load(name: str) -> SentenceTextEncoder:
    """The text model (loaded once per process)."""
    with _LOCK:
        if name not in _CACHE:
            _CACHE[name] = SentenceTextEncoder(name)
        return _CACHE[name]


def pair(coll: Collection, model: str, name: str) -> SentenceTextEncoder:
    """Load ``name`` for searching ``model``'s vectors: the dimensions must match; the pairing is recorded."""
    enc = load(name)
    dim = coll.manifest.get("embeddings", {}).get(model, {}).get("dim")
    if dim and int(dim) != enc.dim:
        raise ModelMismatch(
            f"text model {name!r} gives {enc.dim}-dimensional vectors but {model!r} pictures are {dim}-dimensional: "
            "use a text model trained for that image model"
        )
    found = recorded(coll, model)
    if name not in found:
        found[name] = {"dim": enc.dim, "languages": enc.languages, "first_used": now_iso()}
        path = coll.root / "embeddings" / model_slug(model) / FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, found)
    return enc


def recorded(coll: Collection, model: str) -> dict[str, Any]:
    try:
        data = json.loads((coll.root / "embeddings" / model_slug(model) / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def card_text(coll: Collection, model: str) -> str | None:
    found = recorded(coll, model)
    if not found:
        return None
    parts = []
    for name, info in found.items():
        langs = info.get("languages") or []
        covered = f"{len(langs)} languages ({', '.join(langs)})" if langs else "languages its card does not list"
        parts.append(
            f"{name} ({info.get('dim')}-d, first used {info.get('first_used')}), trained for {covered}"
        )
    return (
        "Text queries have also been embedded with a separate text model while the pictures stay in this "
        "model's space: " + "; ".join(parts) + ". Its quality on this collection is measured only where "
        "`illustra eval --text-model` was run."
    )
