"""The one encoder interface every model backend implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from ..errors import BadInput


class TextEncoder:
    """Maps texts to unit-length float32 vectors (sentence models for catalogue text)."""

    name: str
    dim: int

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_query(self, query: str) -> np.ndarray:
        """One search query (encoders that cache repeated queries override this)."""
        return self.embed_texts([query])[0]


class Encoder(TextEncoder):
    """Maps images (and, where it can, texts) into one space.

    Subclasses set ``name``, ``dim`` and ``image_side`` and implement ``embed_images``; those with
    a text side set ``supports_text`` and implement ``embed_texts``. Every method returns float32
    arrays of shape ``(n, dim)`` whose rows have unit L2 norm, so inner product is cosine
    similarity. ``name`` is the stable identifier recorded in a collection's manifest; searching an
    index with an encoder of another ``name`` is refused.
    """

    name: str
    dim: int
    # Longest image side the model actually looks at; decode workers shrink to this early.
    image_side: int
    # Whether texts can be embedded into the picture space (a text query searches the pictures).
    supports_text: ClassVar[bool] = True
    # For a picture-only space: the model whose picture-to-picture queries it answers.
    similarity_for: ClassVar[str | None] = None
    # The picture-only companion space this model offers for picture-to-picture queries, if any.
    picture_companion: ClassVar[str | None] = None

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        raise NotImplementedError

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise Unsupported(f"the model {self.name!r} compares pictures with pictures only; it has no text side")

    def prepare_image(self, image: Image.Image) -> Any:
        """CPU-side preprocessing that decode workers may run ahead of the model (default: none)."""
        return image

    def embed_prepared(self, items: Sequence[Any]) -> np.ndarray:
        """``embed_images`` over what ``prepare_image`` returned."""
        return self.embed_images(items)

    def image_preparer(self) -> Callable[[Image.Image], Any] | None:
        """``prepare_image`` as a small picklable callable that does not hold the model, for
        decode workers in other processes or machines (the Ray engine); None where
        ``prepare_image`` is the identity or needs the loaded model."""
        return None

    def describe(self) -> dict[str, Any]:
        """Facts recorded in the manifest beside the embedding (precision, model type, …)."""
        out: dict[str, Any] = {}
        if not self.supports_text:
            out["image_only"] = True
        if self.similarity_for:
            out["similarity_for"] = self.similarity_for
        return out


class Unsupported(BadInput):
    """The encoder was asked for something it declares it cannot do."""

    code = "unsupported"


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


def decode_side(encoder: Encoder) -> int:
    """The shortest side pictures are decoded at for ``encoder`` (collection and query alike): its
    input side, so that the model's own resize still downsamples while JPEG draft mode skips most
    of a scan's pixels."""
    return max(64, int(encoder.image_side))
