"""The one safe decoder, against the shared hostile/odd image set and real gigantic clip art."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from PIL import Image

from illustra import images
from illustra.errors import BadImage

GIGANTIC = Path("/usr/share/openclipart/png/signs_and_symbols/stop_sign_miguel_s_nchez_.png")


def expected(hostile_dir: Path) -> list[tuple[str, str]]:
    with open(hostile_dir / "EXPECTED.tsv", encoding="utf-8") as fh:
        return [(r["file"], r["expected"]) for r in csv.DictReader(fh, delimiter="\t")]


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


@pytest.mark.skipif(not GIGANTIC.exists(), reason="Debian openclipart-png not installed")
def test_gigantic_local_file_is_shrunk_not_refused() -> None:
    # 20990x29700 (623 megapixels): refused from untrusted bytes, shrunk in bounded memory from a local file.
    with pytest.raises(BadImage, match="pixel limit"):
        images.decode(GIGANTIC.read_bytes(), max_side=512)
    im = images.open_image(GIGANTIC, max_side=512)
    assert im.mode == "RGB" and max(im.size) == 512
    assert im.getpixel((0, 0)) == (255, 255, 255)  # transparent corner composited on white
