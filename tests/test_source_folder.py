from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from illustra.cli import main
from illustra.collection import Collection
from illustra.errors import SourceError
from illustra.sources import FolderSource, ingest

from .hostile import EXPECTED
from .ingest_helpers import read_tsv, write_image


def expected_hostile(hostile_dir: Path) -> dict[str, str]:
    lines = (hostile_dir / "EXPECTED.tsv").read_text().splitlines()[1:]
    found = dict(line.split("\t") for line in lines if line.strip())
    assert found == EXPECTED
    return found


def stored_size(coll: Collection, item_id: str) -> tuple[int, int]:
    data = coll.image_bytes(coll.row_of(item_id))
    assert data is not None
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG" and im.mode == "RGB"
    return im.size


def test_every_accept_file_is_ingested_and_every_skip_file_is_reported(
    hostile_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "photos"
    shutil.copytree(hostile_dir, src / "hostile", ignore=shutil.ignore_patterns("*.tsv", "*.md"))
    write_image(src / "plain" / "red.jpg", "red")
    coll_dir = tmp_path / "coll"

    result = CliRunner().invoke(
        main, ["ingest", "folder", str(src), "--collection", str(coll_dir), "--no-progress"]
    )

    assert result.exit_code == 0, result.output
    expected = expected_hostile(hostile_dir)
    accept = sorted(f for f, e in expected.items() if e == "accept")
    skip = sorted(f for f, e in expected.items() if e == "skip")
    report = str(coll_dir / "ingest_report.tsv")
    assert f"{len(accept) + 1} added, {len(skip)} skipped (see {report})" in result.stdout
    coll = Collection(coll_dir)
    ids = set(coll.ids.tolist())
    assert ids == {"plain/red", *(f"hostile/{Path(f).stem}" for f in accept)}
    for f in accept:
        row = coll.row_of(f"hostile/{Path(f).stem}")
        assert coll.has_image(row)
        assert coll.metadata(row)["image_path"] == str((src / "hostile" / f).resolve())
    reported = {r["path"]: r for r in read_tsv(coll_dir / "ingest_report.tsv")}
    assert set(reported) == {str((src / "hostile" / f).resolve()) for f in skip}
    assert all(r["reason"] and r["action"] == "skipped" for r in reported.values())
    bomb = reported[str((src / "hostile" / "bad_bomb_1bit.png").resolve())]
    assert "pixel" in bomb["reason"] or "bomb" in bomb["reason"]
    assert coll.manifest["counts"]["with_image"] == len(accept) + 1


def test_stored_copy_is_bounded_rgb_jpeg(hostile_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(hostile_dir / "ok_very_wide.png", src / "wide.png")
    write_image(src / "big.png", "blue", size=(3000, 2000), fmt="PNG")
    ingest(tmp_path / "c", FolderSource(src))
    coll = Collection(tmp_path / "c")
    assert max(stored_size(coll, "big")) == 1024
    assert max(stored_size(coll, "wide")) <= 1024


def test_images_are_found_by_content_and_other_files_ignored(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "scan_0001", "red")  # no extension
    write_image(src / "page.dat", "green", fmt="PNG")  # misleading extension
    write_image(src / "nested" / "deeper" / "x.webp", "blue", fmt="WEBP")
    write_image(src / "anim.gif", "yellow", fmt="GIF")
    write_image(src / "scan.tiff", "white", fmt="TIFF")
    (src / "notes.txt").write_text("not an image")
    (src / ".hidden.jpg").write_bytes(b"junk")
    summary = ingest(tmp_path / "c", FolderSource(src))
    coll = Collection(tmp_path / "c")
    assert sorted(coll.ids.tolist()) == ["anim", "nested/deeper/x", "page", "scan", "scan_0001"]
    assert summary.added == 5 and summary.skipped == 0


def test_ids_are_stable_and_a_rerun_adds_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "a" / "one.jpg", "red")
    write_image(src / "a" / "one.png", "blue", fmt="PNG")  # same stem: keeps its extension
    write_image(src / "b" / "two.jpg", "green")
    first = ingest(tmp_path / "c", FolderSource(src))
    assert first.added == 3
    assert sorted(Collection(tmp_path / "c").ids.tolist()) == ["a/one", "a/one.png", "b/two"]
    write_image(src / "b" / "three.jpg", "white")
    second = ingest(tmp_path / "c", FolderSource(src))
    assert second.added == 1 and second.already_present == 3
    coll = Collection(tmp_path / "c")
    assert coll.ids.tolist() == ["a/one", "a/one.png", "b/two", "b/three"]


def test_csv_sidecar_maps_known_columns_and_keeps_others(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "maps" / "york.jpg", "red")
    write_image(src / "maps" / "hull.jpg", "blue")
    write_image(src / "loose.jpg", "green")
    (src / "metadata.csv").write_text(
        "file_name,title,author,date,place,publisher,source_url,license,shelfmark\n"
        'maps/york.jpg,"Plan of York, 1850",J. Smith,[1850?],York,Sotheran,https://ex.org/1,CC0,MAP.1\n'
        "maps/hull.jpg,Hull,,n.d.,,,,,MAP.2\n"
        "maps/gone.jpg,Missing file,,,,,,,MAP.3\n",
        encoding="utf-8",
    )
    summary = ingest(tmp_path / "c", FolderSource(src))
    coll = Collection(tmp_path / "c")
    york = coll.metadata(coll.row_of("maps/york"))
    assert york["title"] == "Plan of York, 1850"
    assert york["creator"] == "J. Smith"
    assert york["date"] == "[1850?]" and york["year"] == 1850
    assert (york["place"], york["publisher"], york["source_url"], york["licence"]) == (
        "York",
        "Sotheran",
        "https://ex.org/1",
        "CC0",
    )
    assert york["shelfmark"] == "MAP.1"
    hull = coll.metadata(coll.row_of("maps/hull"))
    assert hull["year"] is None and hull["date"] == "n.d." and hull["creator"] is None
    assert coll.metadata(coll.row_of("loose"))["title"] is None
    assert any("1 metadata rows name no image file" in n for n in summary.notes)


def test_jsonl_sidecars_in_subfolders_and_metadata_option(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "box1" / "a.jpg", "red")
    write_image(src / "box2" / "b.jpg", "blue")
    (src / "box1" / "metadata.jsonl").write_text(
        json.dumps({"file_name": "a.jpg", "title": "A", "year": 1901, "tags": ["x", "y"]}) + "\n"
    )
    ingest(tmp_path / "c1", FolderSource(src))
    c1 = Collection(tmp_path / "c1")
    a = c1.metadata(c1.row_of("box1/a"))
    assert (a["title"], a["year"], a["date"]) == ("A", 1901, "1901")
    assert json.loads(a["tags"]) == ["x", "y"]

    elsewhere = tmp_path / "meta.jsonl"
    elsewhere.write_text(json.dumps({"file_name": "box2/b.jpg", "caption": "a blue square"}) + "\n")
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["ingest", "folder", str(src), "--collection", str(tmp_path / "c2"), "--metadata", str(elsewhere)],
    )
    assert result.exit_code == 0, result.output
    c2 = Collection(tmp_path / "c2")
    assert c2.metadata(c2.row_of("box2/b"))["description"] == "a blue square"
    # With --metadata, sidecars inside the folder are not used.
    assert c2.metadata(c2.row_of("box1/a"))["title"] is None


def test_broken_sidecar_is_one_line_error(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "a.jpg")
    (src / "metadata.jsonl").write_text('{"file_name": "a.jpg"}\n{not json\n')
    with pytest.raises(SourceError, match=r"metadata.jsonl:2: not valid JSON"):
        FolderSource(src)
    result = CliRunner().invoke(main, ["ingest", "folder", str(src), "--collection", str(tmp_path / "c")])
    assert result.exit_code == SourceError.exit_code
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_folder_without_images_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("no pictures here")
    result = CliRunner().invoke(
        main, ["ingest", "folder", str(tmp_path / "in"), "--collection", str(tmp_path / "c")]
    )
    assert result.exit_code == SourceError.exit_code
    assert "no image files found under" in result.stderr
    assert not (tmp_path / "c").exists()


def test_missing_file_name_column_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "a.jpg")
    (src / "metadata.csv").write_text("name,title\na.jpg,A\n")
    with pytest.raises(SourceError, match="no 'file_name' column"):
        FolderSource(src)


def test_collection_inside_the_folder_is_not_ingested_again(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "a.jpg")
    ingest(src / "coll", FolderSource(src))
    write_image(src / "b.jpg", "blue")
    summary = ingest(src / "coll", FolderSource(src))
    assert summary.added == 1
    assert sorted(Collection(src / "coll").ids.tolist()) == ["a", "b"]


def test_real_subprocess_run_prints_summary(hostile_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "ok.jpg", "red")
    shutil.copy(hostile_dir / "bad_truncated.jpg", src / "broken.jpg")
    exe = Path(sys.executable).parent / "illustra"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from illustra.cli import main; main()"]
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [*cmd, "ingest", "folder", str(src), "--collection", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"1 added, 1 skipped (see {tmp_path / 'c' / 'ingest_report.tsv'})")
    assert "Traceback" not in proc.stderr
    assert [r["id"] for r in read_tsv(tmp_path / "c" / "ingest_report.tsv")] == ["broken"]


class InterruptedSource:
    """A source whose reading is cut short by Ctrl-C after three rows."""

    kind = "test"
    extra_fields: list[str] = []
    text_fields = None

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind}

    def rows(self, ctx: object) -> Iterator[dict[str, str]]:
        for i in range(3):
            yield {"id": f"item-{i}", "title": f"Item {i}"}
        raise KeyboardInterrupt


def test_ctrl_c_while_reading_keeps_the_rows_read_so_far(tmp_path: Path) -> None:
    summary = ingest(tmp_path / "c", InterruptedSource())
    assert summary.interrupted and summary.added == 3
    assert Collection(tmp_path / "c").ids.tolist() == ["item-0", "item-1", "item-2"]
    assert "run the same command again" in summary.lines()[-1]
