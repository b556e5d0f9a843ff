"""The one encoder interface every model backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image


@runtime_checkable
class Encoder(Protocol):
    """Maps images and texts into one shared space.

    Both methods return float32 arrays of shape ``(n, dim)`` whose rows have unit L2 norm, so inner
    product is cosine similarity. ``name`` is the stable identifier recorded in a collection's
    manifest; searching an index with an encoder of another ``name`` is refused.
    """

    name: str
    dim: int
    # Longest image side the model actually looks at; decode workers shrink to this early.
    image_side: int

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def model_slug(name: str) -> str:
    """Filesystem-safe name for a model id, used for per-model folders in a collection."""
    out = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip("/"))
    return out.strip("._") or "model"
