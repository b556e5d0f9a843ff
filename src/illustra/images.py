"""Safe image decoding: the one place every path (ingest, download, embed, upload) decodes images.

Hostile input is refused *before* pixels are decoded: the header's claimed size is checked against
a pixel budget, so a 200 KB file that claims 1.6 gigapixels costs microseconds, not gigabytes.
Every accepted image is converted to RGB the same way: first frame, EXIF orientation applied,
transparency composited on white, 16-bit scaled down to 8-bit.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path

from PIL import Image, ImageFile, ImageOps

from . import settings
from .errors import BadImage

# Truncated files are an error, not something to silently pad with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# We enforce our own pixel budget before decoding; Pillow's check stays on as a second fence.
Image.MAX_IMAGE_PIXELS = None

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF", "GIF", "BMP", "MPO"}

# Gigantic but genuine local files (poster-size clip art, full-resolution scans) are shrunk by
# libvips, which decodes sequentially in bounded memory instead of allocating the full canvas.
# A decompression bomb is told apart by its ceiling and by how many pixels each byte claims.
LARGE_PIXEL_CEILING = 1_000_000_000
LARGE_MAX_PIXELS_PER_BYTE = 1_000


def _limits(max_bytes: int | None, max_pixels: int | None) -> tuple[int, int]:
    return (
        int(max_bytes if max_bytes is not None else settings.get("max_image_bytes")),
        int(max_pixels if max_pixels is not None else settings.get("max_image_pixels")),
    )


def read_bytes(path: str | Path, max_bytes: int | None = None) -> bytes:
    """Read a file, refusing empty, missing and over-sized files with a ``BadImage`` reason."""
    limit, _ = _limits(max_bytes, None)
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise BadImage(f"cannot read {p}: {exc.strerror or exc}") from exc
    if size == 0:
        raise BadImage("empty file")
    if size > limit:
        raise BadImage(f"file is {size} bytes, over the {limit}-byte limit")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise BadImage(f"cannot read {p}: {exc.strerror or exc}") from exc


def decode(
    data: bytes,
    *,
    max_side: int | None = None,
    min_side: int | None = None,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    allow_large: bool = False,
) -> Image.Image:
    """Decode bytes to an RGB image, optionally shrunk so its longest side is <= ``max_side``.

    ``min_side`` asks for the cheapest decode whose shortest side is still >= ``min_side`` (JPEG
    draft scaling, then an integer box reduction): what a model's own preprocessing needs to
    downsample to its input size, and several times less work than a full decode of a scan.

    ``allow_large`` lets images over the pixel budget (but under ``LARGE_PIXEL_CEILING`` and not
    bomb-like) through the bounded-memory libvips path; used for local files the user chose to ingest.
    Raises ``BadImage`` with a short reason for anything that is not a safe, valid raster image.
    """
    byte_limit, pixel_limit = _limits(max_bytes, max_pixels)
    if not data:
        raise BadImage("empty file")
    if len(data) > byte_limit:
        raise BadImage(f"file is {len(data)} bytes, over the {byte_limit}-byte limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(io.BytesIO(data))
            fmt = im.format or "?"
            if fmt not in ALLOWED_FORMATS:
                raise BadImage(f"unsupported image format {fmt}")
            w, h = im.size
            if w <= 0 or h <= 0:
                raise BadImage("image has no pixels")
            if w * h > pixel_limit:
                if allow_large and _large_ok(w, h, len(data)):
                    return _decode_large(data, int(max_side or settings.get("stored_image_side")))
                raise BadImage(f"image claims {w}x{h} pixels, over the {pixel_limit}-pixel limit")
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            if fmt in {"JPEG", "MPO"} and (max_side or min_side):
                # Draft mode lets libjpeg decode at 1/2, 1/4 or 1/8 scale: far less work for big scans.
                im.draft("RGB", _draft_size(w, h, max_side, min_side))
            im.load()
            im = _to_rgb(im)
    except BadImage:
        raise
    except Image.DecompressionBombError as exc:
        raise BadImage(f"decompression bomb: {exc}") from exc
    except Image.DecompressionBombWarning as exc:
        raise BadImage(f"decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError, TypeError, EOFError, IndexError, MemoryError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "cannot identify image file" in msg:
            msg = "not an image"
        raise BadImage(msg[:200]) from exc
    if min_side:
        factor = min(im.size) // min_side
        if factor >= 2:
            im = im.reduce(factor)
    if max_side and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    return im


def _draft_size(w: int, h: int, max_side: int | None, min_side: int | None) -> tuple[int, int]:
    # Pillow picks the largest scale at which the image still covers the requested size.
    if min_side:
        k = min_side / max(1, min(w, h))
        return math.ceil(w * k), math.ceil(h * k)
    side = int(max_side or 0)
    return side, side


def _large_ok(w: int, h: int, n_bytes: int) -> bool:
    if w * h > LARGE_PIXEL_CEILING or w * h / max(n_bytes, 1) > LARGE_MAX_PIXELS_PER_BYTE:
        return False
    try:
        import pyvips  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def _decode_large(data: bytes, side: int) -> Image.Image:
    import numpy as np
    import pyvips

    try:
        v = pyvips.Image.thumbnail_buffer(data, side, size="down")
        if v.hasalpha():
            v = v.flatten(background=[255, 255, 255])
        if v.format != "uchar":
            v = v.cast("uchar")
        if v.bands < 3:
            v = v.colourspace("srgb")
        arr = np.ndarray(buffer=v.write_to_memory(), dtype=np.uint8, shape=(v.height, v.width, v.bands))
    except pyvips.Error as exc:
        raise BadImage(f"cannot decode large image: {str(exc).splitlines()[0][:160]}") from exc
    return Image.fromarray(np.ascontiguousarray(arr[:, :, :3]), "RGB")


def _to_rgb(im: Image.Image) -> Image.Image:
    # A broken EXIF block must not lose the image.
    with contextlib.suppress(Exception):
        im = ImageOps.exif_transpose(im) or im
    mode = im.mode
    if mode in {"I;16", "I;16B", "I;16L", "I"}:
        # 16/32-bit greyscale: scale to 8-bit by the image's own range so it is not all white.
        import numpy as np

        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        im = Image.fromarray(((arr - lo) * scale).astype("uint8"), "L")
        mode = "L"
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = im.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if mode != "RGB":
        im = im.convert("RGB")
    return im


def open_image(
    path: str | Path,
    *,
    max_side: int | None = None,
    min_side: int | None = None,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    allow_large: bool = True,
) -> Image.Image:
    """Decode a local file (the user chose it, so gigantic-but-genuine images are shrunk, not refused)."""
    return decode(
        read_bytes(path, max_bytes),
        max_side=max_side,
        min_side=min_side,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        allow_large=allow_large,
    )


def encode_stored(im: Image.Image, max_side: int | None = None, quality: int = 90) -> bytes:
    """The bounded-size copy kept in a collection: RGB JPEG, longest side <= ``stored_image_side``."""
    side = int(max_side or settings.get("stored_image_side"))
    if max(im.size) > side:
        im = im.copy()
        im.thumbnail((side, side), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()
