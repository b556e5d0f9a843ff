"""Detect uploads that are photographs of people at portrait scale, so face matching can be refused.

A picture is refused when it is a photograph and shows a face at portrait scale: head-and-shoulders
and half-length portraits, and group photographs of a few people. Drawings, engravings and clip art
of people are not refused: the guard is about matching real people's faces.

* Faces come from OpenCV's bundled Haar cascades, scanned at all scales down to the smallest face
  that still counts: a frontal face needs the "default" and "alt2" cascades to agree (that removes
  most single-cascade false alarms on icons and ornaments); a face in profile (either way round)
  needs the profile cascade.
* A face counts when its box covers at least ``min_fraction`` of the image (setting
  ``face_min_fraction``, default 1.5 %: a 512-px half-length portrait's face covers 3-4 %, each
  face of a group of four to six people 1.5-2.5 %).
* A profile face, found by one cascade only, needs more overlapping detections (8) than a frontal one.
* Photograph or drawing: drawn pictures are made of flat areas, so their pixels' Laplacian is mostly
  exactly zero, while film grain, sensor noise and skin texture leave photographs almost no such
  pixels. A picture whose non-background pixels are mostly flat is a drawing and is not scanned at
  all (the fast path for clip art); otherwise the face box itself must be textured like a
  photograph. Scanned prints keep paper grain and so count as photographs here.

Detection runs on a copy whose longest side is ``DETECT_SIDE`` pixels, in a few tens to a couple of
hundred milliseconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ModelUnavailable

# The setting face_min_fraction's default: the smallest share of the image a face box must cover.
DEFAULT_MIN_FRACTION = 0.015
# Longest side of the copy the cascades scan.
DETECT_SIDE = 400
# Face boxes flatter than this (share of exact-zero Laplacian) are drawn, not photographed.
MAX_FLAT_SHARE = 0.13
# Pictures whose non-background pixels are flatter than this are drawings: not scanned for faces.
MAX_PICTURE_FLAT_SHARE = 0.6
_FRONTAL = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
_PROFILE = "haarcascade_profileface.xml"

_lock = threading.Lock()
_loaded: dict[str, Any] | None = None

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class FaceFinding:
    """The largest face found: its box (on the original image), share of area, and texture."""

    box: tuple[int, int, int, int]
    fraction: float
    flat_share: float
    kind: str = "frontal"

    @property
    def photographic(self) -> bool:
        return self.flat_share < MAX_FLAT_SHARE


def _cascades() -> dict[str, Any]:
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
            found = {}
            for name in (*_FRONTAL, _PROFILE):
                clf = cv2.CascadeClassifier(base + name) if hasattr(cv2, "CascadeClassifier") else None
                if clf is None or clf.empty():
                    raise ModelUnavailable(
                        f"the face guard cannot load OpenCV's {name} (opencv-python-headless 4.x ships it); "
                        "reinstall it or set ILLUSTRA_FACE_GUARD=0"
                    )
                found[name] = clf
            _loaded = found
        return _loaded


def _iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def _grey(image: Image.Image) -> np.ndarray:
    """A greyscale copy no longer than DETECT_SIDE, transparency flattened onto white."""
    small = image.copy()
    small.thumbnail((DETECT_SIDE, DETECT_SIDE))
    if small.mode in ("RGBA", "LA", "PA", "P") and (small.mode != "P" or "transparency" in small.info):
        rgba = small.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        small = flat
    return np.asarray(small.convert("L"), dtype=np.uint8)


def _flat(grey: np.ndarray) -> np.ndarray:
    """Pixels whose 4-neighbour Laplacian is exactly zero."""
    import cv2

    return np.asarray(cv2.Laplacian(grey, cv2.CV_16S, ksize=1) == 0)


def picture_flat_share(grey: np.ndarray) -> float:
    """Share of flat pixels outside the background (the most common grey level)."""
    flat = _flat(grey)
    background = int(np.bincount(grey.ravel(), minlength=256).argmax())
    rest = grey != background
    if rest.mean() < 0.02:
        return 1.0  # nearly one flat colour
    return float(flat[rest].mean())


def _faces(grey: np.ndarray, side: int, min_area: float) -> list[tuple[str, Box]]:
    """Faces of at least ``min_area`` pixels: frontal ones both cascades agree on, else profiles."""
    cascades = _cascades()
    default, alt2 = (cascades[n] for n in _FRONTAL)
    profile = cascades[_PROFILE]
    w = grey.shape[1]

    def scan(clf: Any, img: np.ndarray, neighbours: int) -> list[Box]:
        found = clf.detectMultiScale(img, scaleFactor=1.1, minNeighbors=neighbours, minSize=(side, side))
        return [(int(f[0]), int(f[1]), int(f[2]), int(f[3])) for f in found if f[2] * f[3] >= min_area]

    with _lock:  # detectMultiScale is not documented as thread-safe
        first = scan(default, grey, 5)
        if first:
            second = scan(alt2, grey, 3)
            agreed = [f for f in first if any(_iou(f, g) > 0.4 for g in second)]
            if agreed:
                return [("frontal", f) for f in agreed]
        found = [("profile", f) for f in scan(profile, grey, 8)]
        mirrored = np.ascontiguousarray(grey[:, ::-1])
        found += [("profile", (w - x - fw, y, fw, fh)) for x, y, fw, fh in scan(profile, mirrored, 8)]
    return found


def largest_face(image: Image.Image, min_fraction: float = DEFAULT_MIN_FRACTION) -> FaceFinding | None:
    """The most photograph-like of the largest faces covering at least ``min_fraction`` of ``image``."""
    return _largest(_grey(image), image.width, min_fraction)


def _largest(grey: np.ndarray, width: int, min_fraction: float) -> FaceFinding | None:
    h, w = grey.shape
    if h < 24 or w < 24:
        return None
    area = float(h * w)
    # The smallest square that could still cover min_fraction, with slack for loose boxes.
    side = max(20, int((min_fraction * area) ** 0.5 * 0.8))
    if side > min(h, w):
        return None
    faces = _faces(grey, side, min_fraction * area)
    if not faces:
        return None
    flat = _flat(grey)
    findings = []
    for kind, (x, y, fw, fh) in faces:
        share = float(flat[y : y + fh, x : x + fw].mean())
        scale = width / w
        box = (round(x * scale), round(y * scale), round(fw * scale), round(fh * scale))
        findings.append(FaceFinding(box, round(fw * fh / area, 4), round(share, 4), kind))
    # A photographed face wins over a larger drawn one; among equals, the larger.
    return max(findings, key=lambda f: (f.photographic, f.fraction))


def face_dominates(image: Image.Image, min_fraction: float = DEFAULT_MIN_FRACTION) -> FaceFinding | None:
    """A finding when ``image`` is a photograph showing a face at portrait scale, else None."""
    grey = _grey(image)
    if picture_flat_share(grey) >= MAX_PICTURE_FLAT_SHARE:
        return None  # a drawing: not scanned
    found = _largest(grey, image.width, min_fraction)
    return found if found is not None and found.photographic else None
