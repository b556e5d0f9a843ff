"""A deterministic fake encoder for unit tests: colour names and image colours share one space.

Image vector: the mean RGB colour, lifted into 16 dims by a fixed projection. Text vector: the
colour named in the text (red, green, blue, ...) pushed through the same projection, so "red"
finds red pictures. Real models are exercised separately (tiny random CLIP, the lite encoder).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from illustra.encoders.base import Encoder, l2_normalise

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 20),
    "green": (20, 200, 20),
    "blue": (20, 20, 220),
    "yellow": (230, 220, 20),
    "black": (5, 5, 5),
    "white": (250, 250, 250),
    "purple": (140, 20, 160),
    "cyan": (20, 210, 210),
}

_PROJ = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)


def _lift(rgb: np.ndarray) -> np.ndarray:
    centred = (rgb / 255.0) - 0.5
    feats = np.concatenate([centred, np.ones((len(rgb), 1), np.float32) * 0.05], axis=1)
    return l2_normalise(feats @ _PROJ)


class FakeEncoder(Encoder):
    name = "fake"
    dim = 16
    image_side = 64

    def __init__(self) -> None:
        self.image_calls = 0

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.image_calls += 1
        if not images:
            return np.zeros((0, self.dim), np.float32)
        rgb = np.stack([np.asarray(im.convert("RGB"), np.float32).reshape(-1, 3).mean(0) for im in images])
        return _lift(rgb)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        rgb = []
        for t in texts:
            hit = [c for w, c in COLOURS.items() if w in t.lower()]
            rgb.append(np.mean(hit, axis=0) if hit else (128, 128, 128))
        return _lift(np.asarray(rgb, np.float32))


def solid(colour: str, size: tuple[int, int] = (48, 40)) -> Image.Image:
    return Image.new("RGB", size, COLOURS[colour])
