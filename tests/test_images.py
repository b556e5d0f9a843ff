"""The one safe decoder, against the hostile/odd image set (tests/hostile.py) and real gigantic clip art."""

from __future__ import annotations

import csv
import io
import struct
import time
from pathlib import Path

import pytest
from PIL import Image, UnidentifiedImageError

from illustra import images
from illustra.errors import BadImage

from . import hostile

GIGANTIC = Path("/usr/share/openclipart/png/signs_and_symbols/stop_sign_miguel_s_nchez_.png")


def expected(hostile_dir: Path) -> list[tuple[str, str]]:
    with open(hostile_dir / "EXPECTED.tsv", encoding="utf-8") as fh:
        return [(r["file"], r["expected"]) for r in csv.DictReader(fh, delimiter="\t")]


def test_hostile_files_are_what_their_names_say(hostile_dir: Path) -> None:
    """The generated set keeps every kind of odd and hostile file, so the tests below stay meaningful."""
    assert dict(expected(hostile_dir)) == hostile.EXPECTED
    assert len(hostile.ACCEPT) == 14 and len(hostile.SKIP) == 8

    def opened(name: str) -> Image.Image:
        return Image.open(hostile_dir / name)

    assert opened("ok_plain.jpg").format == "JPEG"
    assert opened("ok_cmyk.jpg").mode == "CMYK"
    assert opened("ok_grayscale.png").mode == "L"
    assert opened("ok_16bit.png").mode == "I;16"
    assert opened("ok_transparent.png").mode == "RGBA"
    palette = opened("ok_palette.gif")
    assert palette.mode == "P" and "transparency" in palette.info
    assert getattr(opened("ok_animated.gif"), "n_frames", 1) == 3
    assert opened("ok_image.webp").format == "WEBP"
    assert getattr(opened("ok_multipage.tiff"), "n_frames", 1) == 3
    assert opened("ok_1px.png").size == (1, 1)
    assert opened("ok_very_wide.png").size == (12000, 8)
    assert opened("ok_exif_rotated.jpg").getexif()[0x0112] == 6
    assert opened("ok_wrong_extension.png").format == "JPEG"
    assert opened("ok_progressive.jpg").info.get("progressive")
    assert (hostile_dir / "bad_empty.png").stat().st_size == 0
    for name in ("bad_random_bytes.jpg", "bad_html_named.jpg", "bad_svg_named.png"):
        with pytest.raises(UnidentifiedImageError):
            opened(name)
    assert (hostile_dir / "bad_html_named.jpg").read_bytes().startswith(b"<html>")
    assert (hostile_dir / "bad_svg_named.png").read_bytes().startswith(b"<svg")
    # Truncated files start as valid images: the header promises more than the file holds.
    assert opened("bad_truncated.jpg").size == (800, 600)
    assert (hostile_dir / "bad_truncated.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert (hostile_dir / "bad_truncated.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The bomb: 1.6 gigapixels of 1-bit image in about 200 KB; the other PNG claims 100000 x 100000.
    bomb = (hostile_dir / "bad_bomb_1bit.png").read_bytes()
    assert bomb[16:25] == struct.pack(">IIB", 40_000, 40_000, 1) and len(bomb) < 250_000
    claims = (hostile_dir / "bad_header_claims_100k.png").read_bytes()
    assert claims[16:24] == struct.pack(">II", 100_000, 100_000) and len(claims) < 100


def test_every_hostile_file_gets_its_expected_treatment(hostile_dir: Path) -> None:
    for name, want in expected(hostile_dir):
        started = time.perf_counter()
        for allow_large in (False, True):
            try:
                im = images.open_image(hostile_dir / name, max_side=256, allow_large=allow_large)
                got = "accept"
                assert im.mode == "RGB" and 1 <= max(im.size) <= 256
            except BadImage as exc:
                got = "skip"
                assert str(exc) and "\n" not in str(exc)
            assert got == want, f"{name}: expected {want}, got {got}"
        # Refusals are decided from the header, not by decoding a bomb.
        if want == "skip":
            assert time.perf_counter() - started < 5


def test_conversion_is_deterministic_and_white_behind_transparency(hostile_dir: Path) -> None:
    a = images.open_image(hostile_dir / "ok_transparent.png")
    b = images.open_image(hostile_dir / "ok_transparent.png")
    assert a.tobytes() == b.tobytes()
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    assert images.decode(buf.getvalue()).getpixel((5, 5)) == (255, 255, 255)


def test_exif_rotation_applied(hostile_dir: Path) -> None:
    im = images.open_image(hostile_dir / "ok_exif_rotated.jpg")
    raw = Image.open(hostile_dir / "ok_exif_rotated.jpg")
    assert im.size == (raw.size[1], raw.size[0])


def test_limits() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (100, 100), (1, 2, 3)).save(buf, "PNG")
    with pytest.raises(BadImage, match="over the 500-pixel limit"):
        images.decode(buf.getvalue(), max_pixels=500)
    with pytest.raises(BadImage, match="byte limit"):
        images.decode(buf.getvalue(), max_bytes=10)
    with pytest.raises(BadImage, match="empty"):
        images.decode(b"")
    stored = images.encode_stored(Image.new("RGB", (3000, 1000)), max_side=512)
    assert Image.open(io.BytesIO(stored)).size == (512, 171)


def test_gigantic_local_file_is_shrunk_not_refused() -> None:
    assert GIGANTIC.exists(), "Debian openclipart-png is not installed: run bash scripts/setup.sh"
    # 20990x29700 (623 megapixels): refused from untrusted bytes, shrunk in bounded memory from a local file.
    with pytest.raises(BadImage, match="pixel limit"):
        images.decode(GIGANTIC.read_bytes(), max_side=512)
    im = images.open_image(GIGANTIC, max_side=512)
    assert im.mode == "RGB" and max(im.size) == 512
    assert im.getpixel((0, 0)) == (255, 255, 255)  # transparent corner composited on white


def _encoded(size: tuple[int, int], fmt: str) -> bytes:
    im = Image.new("RGB", size, (240, 230, 210))
    im.paste((20, 30, 40), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    buf = io.BytesIO()
    im.save(buf, format=fmt, quality=90)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("size", "fmt", "expected"),
    [
        ((1024, 800), "JPEG", (512, 400)),  # draft at 1/2: 400 >= 224, 1/4 would be 200
        ((1024, 1000), "JPEG", (256, 250)),  # draft at 1/4
        ((800, 1024), "JPEG", (400, 512)),  # portrait alike
        ((2000, 1500), "PNG", (334, 250)),  # no draft for PNG: box reduction by 6
        ((300, 200), "JPEG", (300, 200)),  # already small: untouched, never enlarged
        ((4000, 180), "JPEG", (4000, 180)),  # shortest side under the minimum: full decode
    ],
)
def test_min_side_decodes_cheaply_but_never_below_the_minimum(
    size: tuple[int, int], fmt: str, expected: tuple[int, int]
) -> None:
    im = images.decode(_encoded(size, fmt), min_side=224)
    assert im.mode == "RGB"
    assert im.size == expected


def test_min_side_keeps_the_picture() -> None:
    full = images.decode(_encoded((1024, 800), "JPEG"))
    small = images.decode(_encoded((1024, 800), "JPEG"), min_side=224)
    # The dark block stays where it was: the cheap decode is the same picture at a smaller scale.
    assert full.resize(small.size).getpixel((180, 140)) == pytest.approx(small.getpixel((180, 140)), abs=12)
    assert small.getpixel((50, 50))[0] > 200
