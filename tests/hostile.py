"""Odd and hostile image files, written by the test suite itself.

Every place that decodes an image (ingest, download, embedding, upload) is tested against these.
``EXPECTED`` says what must happen to each file:

- ``accept``: a valid image in an unusual form (CMYK, 16-bit, palette with transparency,
  transparency, animation, multi-page TIFF, 1 px, 12000x8, EXIF rotation, wrong extension,
  progressive JPEG). It must be decoded, converted to RGB the same way every time, and searchable.
- ``skip``: broken or hostile (random bytes, empty, truncated, a 1.6-gigapixel bomb that is about
  200 KB on disk, a PNG header claiming 100000x100000, HTML or SVG under an image name). It must
  be skipped with a reason recorded, quickly, in bounded memory, without stopping the rest.

``write_hostile_images(folder)`` writes all of them, plus ``EXPECTED.tsv`` (columns ``file`` and
``expected``). The output is the same on every run: no randomness without a fixed seed.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

# file name -> expected treatment, in the order of EXPECTED.tsv.
EXPECTED: dict[str, str] = {
    "ok_plain.jpg": "accept",
    "ok_cmyk.jpg": "accept",
    "ok_grayscale.png": "accept",
    "ok_16bit.png": "accept",
    "ok_transparent.png": "accept",
    "ok_palette.gif": "accept",
    "ok_animated.gif": "accept",
    "ok_image.webp": "accept",
    "ok_multipage.tiff": "accept",
    "ok_1px.png": "accept",
    "ok_very_wide.png": "accept",
    "ok_exif_rotated.jpg": "accept",
    "ok_wrong_extension.png": "accept",
    "ok_progressive.jpg": "accept",
    "bad_random_bytes.jpg": "skip",
    "bad_empty.png": "skip",
    "bad_truncated.jpg": "skip",
    "bad_truncated.png": "skip",
    "bad_bomb_1bit.png": "skip",
    "bad_header_claims_100k.png": "skip",
    "bad_html_named.jpg": "skip",
    "bad_svg_named.png": "skip",
}

ACCEPT = [name for name, want in EXPECTED.items() if want == "accept"]
SKIP = [name for name, want in EXPECTED.items() if want == "skip"]

SIZE = (120, 90)
BOMB_SIDE = 40_000  # 1-bit, 1.6 gigapixels
CLAIMED_SIDE = 100_000


def _picture(size: tuple[int, int] = SIZE) -> Image.Image:
    """A small RGB picture with shapes and a gradient, so the codecs have something to encode."""
    w, h = size
    im = Image.new("RGB", size, (250, 245, 230))
    px = im.load()
    assert px is not None
    for x in range(w):
        for y in range(0, h, 3):
            px[x, y] = (x * 255 // max(w - 1, 1), 40, y * 255 // max(h - 1, 1))
    draw = ImageDraw.Draw(im)
    draw.rectangle((w // 8, h // 8, w // 2, h // 2), fill=(200, 20, 20))
    draw.ellipse((w // 2, h // 3, w - 5, h - 5), fill=(20, 40, 200))
    return im


def _noise(size: tuple[int, int], seed: int) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))


def _save(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def plain_jpeg() -> bytes:
    return _save(_picture(), "JPEG", quality=90)


def cmyk_jpeg() -> bytes:
    return _save(_picture().convert("CMYK"), "JPEG", quality=90)  # Pillow adds the Adobe marker


def grayscale_png() -> bytes:
    return _save(_picture().convert("L"), "PNG")


def sixteen_bit_png() -> bytes:
    im = Image.new("I;16", (100, 80), 40_000)
    return _save(im, "PNG")


def transparent_png() -> bytes:
    im = Image.new("RGBA", SIZE, (0, 0, 255, 0))  # fully transparent blue: must come out white
    draw = ImageDraw.Draw(im)
    draw.rectangle((10, 10, 70, 60), fill=(255, 0, 0, 255))
    draw.ellipse((60, 30, 110, 80), fill=(0, 0, 255, 128))
    return _save(im, "PNG")


def _palette_frame(offset: int) -> Image.Image:
    im = Image.new("P", SIZE, 0)
    im.putpalette([255, 0, 0, 0, 0, 255, 255, 255, 255] + [0, 0, 0] * 253)
    draw = ImageDraw.Draw(im)
    draw.rectangle((10 + offset, 10, 60 + offset, 60), fill=1)
    draw.ellipse((70, 40 - offset // 2, 110, 80 - offset // 2), fill=2)
    return im


def palette_gif() -> bytes:
    return _save(_palette_frame(0), "GIF", transparency=2)


def animated_gif() -> bytes:
    frames = [_palette_frame(o) for o in (0, 20, 40)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def webp() -> bytes:
    return _save(_picture(), "WEBP", quality=80)


def multipage_tiff() -> bytes:
    pages = [Image.new("RGB", SIZE, c) for c in ((255, 0, 0), (0, 128, 0), (255, 255, 0))]
    return _save(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def one_pixel_png() -> bytes:
    return _save(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG")


def very_wide_png() -> bytes:
    return _save(Image.new("RGB", (12_000, 8), (0, 0, 0)), "PNG")


def exif_rotated_jpeg() -> bytes:
    im = _picture((160, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return _save(im, "JPEG", quality=90, exif=exif)


def jpeg_named_png() -> bytes:
    return _save(_picture(), "JPEG", quality=85)


def progressive_jpeg() -> bytes:
    return _save(_picture(), "JPEG", quality=85, progressive=True)


def random_bytes() -> bytes:
    rng = random.Random(20131212)
    data = rng.randbytes(4096)
    return b"\x82" + data[1:]  # no image format starts with 0x82


def empty() -> bytes:
    return b""


def truncated_jpeg() -> bytes:
    data = _save(_noise((800, 600), 1), "JPEG", quality=90)
    return data[:3000]


def truncated_png() -> bytes:
    data = _save(_noise((400, 300), 2), "PNG")
    return data[:751]


def bomb_png() -> bytes:
    """A 40000x40000 1-bit PNG of zeros: about 200 KB on disk, 1.6 gigapixels decoded."""
    row = bytes(1 + BOMB_SIDE // 8)  # filter byte + packed bits
    block = row * 1000
    comp = zlib.compressobj(9)
    parts = [comp.compress(block) for _ in range(BOMB_SIDE // 1000)]
    parts.append(comp.flush())
    return _png(BOMB_SIDE, BOMB_SIDE, 1, 0, b"".join(parts))


def header_claims_100k_png() -> bytes:
    """A PNG whose header claims 100000x100000 RGB, with a few bytes of pixel data."""
    return _png(CLAIMED_SIDE, CLAIMED_SIDE, 8, 2, zlib.compress(b"\x00\xff\x00\x00"))


def html_named_jpeg() -> bytes:
    return b"<html><body>404 Not Found</body></html>"


def svg_named_png() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


WRITERS: dict[str, Callable[[], bytes]] = {
    "ok_plain.jpg": plain_jpeg,
    "ok_cmyk.jpg": cmyk_jpeg,
    "ok_grayscale.png": grayscale_png,
    "ok_16bit.png": sixteen_bit_png,
    "ok_transparent.png": transparent_png,
    "ok_palette.gif": palette_gif,
    "ok_animated.gif": animated_gif,
    "ok_image.webp": webp,
    "ok_multipage.tiff": multipage_tiff,
    "ok_1px.png": one_pixel_png,
    "ok_very_wide.png": very_wide_png,
    "ok_exif_rotated.jpg": exif_rotated_jpeg,
    "ok_wrong_extension.png": jpeg_named_png,
    "ok_progressive.jpg": progressive_jpeg,
    "bad_random_bytes.jpg": random_bytes,
    "bad_empty.png": empty,
    "bad_truncated.jpg": truncated_jpeg,
    "bad_truncated.png": truncated_png,
    "bad_bomb_1bit.png": bomb_png,
    "bad_header_claims_100k.png": header_claims_100k_png,
    "bad_html_named.jpg": html_named_jpeg,
    "bad_svg_named.png": svg_named_png,
}
assert list(WRITERS) == list(EXPECTED)


def write_hostile_images(folder: Path) -> Path:
    """Write every file of ``EXPECTED`` and ``EXPECTED.tsv`` into ``folder``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in WRITERS.items():
        (folder / name).write_bytes(make())
    lines = ["file\texpected", *(f"{name}\t{want}" for name, want in EXPECTED.items())]
    (folder / "EXPECTED.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
