"""Detect uploads that are photographs dominated by a face, so face matching can be refused.

Two of OpenCV's bundled Haar cascades (frontal-face "default" and "alt2") must agree on a face box
covering at least ``min_fraction`` of the image. Requiring agreement removes most single-cascade
false alarms on icons and ornaments. A face box that is largely flat colour (exact zero
Laplacian) is drawn, not photographed: clip art and cartoon portraits are not refused, since the
guard is about matching real people's faces. Scanned prints keep paper grain and so count as
photographs here.

Detection runs on a small greyscale copy with a large minimum window: a dominating face is big,
so only big windows are scanned, which keeps a check to a few tens of milliseconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ModelUnavailable

# Longest side of the copy the cascades scan.
DETECT_SIDE = 320
# Face boxes whose pixels are flatter than this (share of exact-zero Laplacian) are drawings.
MAX_FLAT_SHARE = 0.25
_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")

_lock = threading.Lock()
_loaded: list[Any] | None = None


@dataclass(frozen=True)
class FaceFinding:
    """The largest face both cascades agree on: its box (on the original image) and share of area."""

    box: tuple[int, int, int, int]
    fraction: float
    flat_share: float

    @property
    def photographic(self) -> bool:
        return self.flat_share < MAX_FLAT_SHARE


def _cascades() -> list[Any]:
    global _loaded
    with _lock:
        if _loaded is None:
            try:
                import cv2
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise ModelUnavailable(
                    "the face guard needs opencv-python-headless; install it or set ILLUSTRA_FACE_GUARD=0"
                ) from exc
            base = getattr(getattr(cv2, "data", None), "haarcascades", "")
            found = []
            for name in _CASCADES:
                clf = cv2.CascadeClassifier(base + name) if hasattr(cv2, "CascadeClassifier") else None
                if clf is None or clf.empty():
                    raise ModelUnavailable(
                        f"the face guard cannot load OpenCV's {name} (opencv-python-headless 4.x ships it); "
                        "reinstall it or set ILLUSTRA_FACE_GUARD=0"
                    )
                found.append(clf)
            _loaded = found
        return _loaded


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def largest_face(image: Image.Image, min_fraction: float = 0.08) -> FaceFinding | None:
    """The largest face covering at least ``min_fraction`` of ``image`` that both cascades find."""
    import cv2

    default, alt2 = _cascades()
    small = image.convert("L")
    small.thumbnail((DETECT_SIDE, DETECT_SIDE))
    grey = np.asarray(small, dtype=np.uint8)
    h, w = grey.shape
    if h < 24 or w < 24:
        return None
    area = float(h * w)
    # The smallest square that could still cover min_fraction, with slack for loose boxes.
    side = max(24, int((min_fraction * area) ** 0.5 * 0.8))
    if side > min(h, w):
        return None
    with _lock:  # detectMultiScale is not documented as thread-safe
        first = default.detectMultiScale(grey, scaleFactor=1.05, minNeighbors=5, minSize=(side, side))
        big = [tuple(int(v) for v in f) for f in first if f[2] * f[3] >= min_fraction * area]
        if not big:
            return None
        second = [
            tuple(int(v) for v in f)
            for f in alt2.detectMultiScale(grey, scaleFactor=1.05, minNeighbors=3, minSize=(side, side))
        ]
    agreed = [f for f in big if any(_iou(f, g) > 0.4 for g in second)]  # type: ignore[arg-type]
    if not agreed:
        return None
    x, y, fw, fh = max(agreed, key=lambda f: f[2] * f[3])
    roi = grey[y : y + fh, x : x + fw]
    flat = float((cv2.Laplacian(roi, cv2.CV_16S, ksize=1) == 0).mean())
    scale = image.width / w
    box = (round(x * scale), round(y * scale), round(fw * scale), round(fh * scale))
    return FaceFinding(box=box, fraction=round(fw * fh / area, 4), flat_share=round(flat, 4))


def face_dominates(image: Image.Image, min_fraction: float = 0.08) -> FaceFinding | None:
    """A finding when ``image`` is a photograph dominated by a face, else None."""
    found = largest_face(image, min_fraction)
    return found if found is not None and found.photographic else None
