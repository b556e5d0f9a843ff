"""Printed-again variants of a picture: what a plate looks like when it is printed in another book
or edition and scanned again (crop, small rotation, tone and contrast, blur, paper texture, JPEG
re-encoding, halftone screen, and all of them at once). Deterministic for a given seed."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

WHITE = (255, 255, 255)


def crop(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Keep 80-92 % of each side, off-centre (a tighter trim, a different plate margin)."""
    w, h = im.size
    fw, fh = rng.uniform(0.80, 0.92, 2)
    cw, ch = max(8, int(w * fw)), max(8, int(h * fh))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return im.crop((x, y, x + cw, y + ch))


def rotate(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """1.5-4 degrees either way (a plate set or scanned askew), white where the page shows."""
    angle = float(rng.uniform(1.5, 4.0) * rng.choice([-1, 1]))
    return im.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=WHITE)


def tone(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Another ink and exposure: gamma, contrast, and a sepia or grey print."""
    gamma = float(rng.uniform(0.65, 1.5))
    lut = [min(255, int(round(255 * (i / 255) ** gamma))) for i in range(256)]
    out = im.point(lut * 3)
    out = ImageEnhance.Contrast(out).enhance(float(rng.uniform(0.65, 1.35)))
    grey = ImageOps.grayscale(out)
    if rng.random() < 0.5:
        return ImageOps.colorize(grey, black=(40, 25, 10), white=(250, 240, 215))
    return grey.convert("RGB")


def blur(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A soft impression or an out-of-focus scan."""
    return im.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(1.2, 2.5)) * max(im.size) / 512))


def paper(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Printed on toned, grainy paper with blotches (foxing): multiply by a paper texture."""
    w, h = im.size
    base = np.array([rng.uniform(225, 245), rng.uniform(212, 232), rng.uniform(180, 210)], np.float32) / 255
    low = Image.fromarray((rng.random((max(2, h // 32), max(2, w // 32))) * 255).astype(np.uint8))
    low_arr = np.asarray(low.resize((w, h), Image.Resampling.BICUBIC), np.float32) / 255
    grain = rng.normal(0, 0.05, (h, w)).astype(np.float32)
    tex = np.clip(base[None, None, :] * (0.9 + 0.12 * low_arr[..., None] + grain[..., None]), 0, 1)
    arr = np.asarray(im.convert("RGB"), np.float32) / 255
    return Image.fromarray((np.clip(arr * tex, 0, 1) * 255).astype(np.uint8))


def jpeg(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Scanned small and saved as a low-quality JPEG."""
    scale = float(rng.uniform(0.45, 0.7))
    small = im.resize((max(8, int(im.width * scale)), max(8, int(im.height * scale))), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    small.convert("RGB").save(buf, format="JPEG", quality=int(rng.integers(20, 45)))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def halftone(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A dot screen: each cell becomes a black dot whose area follows the cell's darkness."""
    cell = int(rng.integers(3, 6)) * max(1, max(im.size) // 512)
    grey = np.asarray(ImageOps.grayscale(im), np.float32) / 255
    h, w = grey.shape
    ch, cw = -(-h // cell), -(-w // cell)
    padded = np.ones((ch * cell, cw * cell), np.float32)
    padded[:h, :w] = grey
    dark = 1 - padded.reshape(ch, cell, cw, cell).mean(axis=(1, 3))
    yy, xx = np.mgrid[0:cell, 0:cell].astype(np.float32) + 0.5 - cell / 2
    dist = np.sqrt(yy**2 + xx**2) / (cell / 2)  # 0 at the centre, 1 at the edge midpoints
    radius = np.sqrt(dark / np.pi) * 2 * 0.9  # dot area ~ darkness
    ink = dist[None, :, None, :] < radius[:, None, :, None]
    out = np.where(ink, 0, 255).astype(np.uint8).reshape(ch * cell, cw * cell)[:h, :w]
    return Image.fromarray(out).convert("RGB")


def reprint(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """All at once, as a later edition scanned elsewhere: crop, rotation, tone, paper, JPEG."""
    return jpeg(paper(tone(rotate(crop(im, rng), rng), rng), rng), rng)


VARIANTS: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "crop": crop,
    "rotate": rotate,
    "tone": tone,
    "blur": blur,
    "paper": paper,
    "jpeg": jpeg,
    "halftone": halftone,
    "reprint": reprint,
}
