from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from illustra.cli import main
from illustra.collection import Collection
from illustra.errors import SourceError
from illustra.sources import BLFlickrSource, ManifestSource, ingest, parse_year
from illustra.sources.bl_flickr import LICENCE

from .blsample import HEADER, bl_lines, write_bl_manifest
from .ingest_helpers import by_id, read_tsv, write_image

BL_HEADER = "\t".join(HEADER)


def bl_line(**values: str) -> str:
    return "\t".join(values.get(c, "") for c in HEADER)


@pytest.mark.parametrize(
    ("date", "year"),
    [
        ("1857", 1857),
        ("[1875?]", 1875),
        ("1850-1855", 1850),
        ("c. 1700", 1700),
        ("18--", None),
        ("", None),
        (None, None),
        ("n.d.", None),
        ("12345", None),
        ("0999", None),
    ],
)
def test_parse_year(date: str | None, year: int | None) -> None:
    assert parse_year(date) == year


def test_bl_sample_maps_every_field(bl_sample: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["ingest", "manifest", str(bl_sample), "--preset", "bl-flickr", "--collection", str(tmp_path / "c")],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("240 added, 0 skipped")
    coll = Collection(tmp_path / "c")
    assert len(coll) == 240
    row = coll.metadata(coll.row_of("11026261126"))
    assert row["title"].startswith("[Reisen und Entdeckungen in Nord- und Central-Afrika")
    assert row["creator"] == "BARTH, Heinrich Traveller"
    assert (row["date"], row["year"], row["place"]) == ("1857", 1857, "Gotha")
    assert row["publisher"] is None
    assert row["source_url"] == "http://www.flickr.com/photos/britishlibrary/11026261126"
    assert row["licence"] == LICENCE
    assert (row["book_identifier"], row["volume"], row["page"], row["image_idx"]) == (
        "000214101",
        "02",
        "000508",
        "1",
    )
    assert row["flickr_id"] == "11026261126"
    assert row["image_url_small"] == "http://farm8.staticflickr.com/7430/11026261126_d391ee5df4_m.jpg"
    assert row["image_url_large"] == "http://farm8.staticflickr.com/7430/11026261126_d391ee5df4_b.jpg"
    # Without --download: metadata only, image_path is the chosen (medium) size.
    assert (
        row["image_path"]
        == row["image_url_medium"]
        == "http://farm8.staticflickr.com/7430/11026261126_d391ee5df4.jpg"
    )
    # Nothing stored: the picture is fetched from that URL when shown.
    row_no = coll.row_of("11026261126")
    assert not coll.has_stored_image(row_no) and coll.image_url(row_no) == row["image_path"]
    assert coll.text_fields == ["title", "creator", "place", "publisher"]
    assert coll.manifest["counts"]["with_image"] == 0
    # No value ends with the file's carriage return.
    assert not any(str(v).endswith("\r") for v in coll.metadata(len(coll) - 1).values())


def test_bl_short_rows_are_recovered_by_position_and_reported(bl_sample: Path, tmp_path: Path) -> None:
    summary = ingest(tmp_path / "c", BLFlickrSource(bl_sample))
    short_lines = [
        i
        for i, line in enumerate(bl_sample.read_text(encoding="utf-8").splitlines(), 1)
        if line.count("\t") == 12
    ]
    assert summary.recovered == len(short_lines) == 12
    report = read_tsv(tmp_path / "c" / "ingest_report.tsv")
    assert {r["path"].rsplit(":", 1)[1] for r in report} == {str(i) for i in short_lines}
    assert {r["action"] for r in report} == {"recovered"}
    coll = Collection(tmp_path / "c")
    row = coll.metadata(coll.row_of("11255116055"))
    assert row["title"].startswith("The Oxford Thackeray")
    assert (row["creator"], row["place"], row["book_identifier"], row["volume"], row["page"]) == (
        "Thackeray, William Makepeace",
        "Oxford",
        "003605102",
        "09",
        "000616",
    )
    assert row["image_path"] is None and row["year"] is None


def test_bl_malformed_rows_do_not_stop_the_ingest(bl_sample: Path, tmp_path: Path) -> None:
    good = bl_line(
        flickr_id="1001",
        title='"Quoted" start of a title',
        first_author="Doe, J.",
        date="[1850?]",
        pubplace="London",
        flickr_url="http://www.flickr.com/photos/britishlibrary/1001",
        flickr_original_source="http://127.0.0.1:9/1001_o.jpg",
    )
    undated = bl_line(flickr_id="1002", title="Undated", date="n.d.")
    lines = [
        BL_HEADER,
        good,
        "garbage\tonly\tfour\tfields",
        bl_line(flickr_id="not-a-number", title="bad id"),
        "",
        undated,
        BL_HEADER,
        good,  # exact repeat, as in the real file
    ]
    path = tmp_path / "bl.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        fh.write("\r\n".join(lines) + "\r\n")
    summary = ingest(tmp_path / "c", BLFlickrSource(path, size="large"))
    assert summary.added == 2
    assert summary.skipped == 2
    assert summary.repeated_in_source == 1
    coll = Collection(tmp_path / "c")
    row = coll.metadata(coll.row_of("1001"))
    assert row["title"] == '"Quoted" start of a title'
    assert row["year"] == 1850 and row["date"] == "[1850?]"
    # Only the original size exists for this row: it is used whatever --size says.
    assert row["image_path"] == "http://127.0.0.1:9/1001_o.jpg"
    undated_row = coll.metadata(coll.row_of("1002"))
    assert undated_row["date"] == "n.d." and undated_row["year"] is None
    reasons = [r["reason"] for r in read_tsv(tmp_path / "c" / "ingest_report.tsv")]
    assert reasons == [
        "malformed row: 4 fields instead of 25",
        "malformed row: flickr_id 'not-a-number' is not a number",
    ]


def test_bl_preset_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "other.tsv"
    path.write_text("id\ttitle\n1\tx\n")
    with pytest.raises(SourceError, match="not a BL Flickr manifest"):
        BLFlickrSource(path)


def test_csv_with_local_paths_keeps_rows_whose_image_is_bad(hostile_dir: Path, tmp_path: Path) -> None:
    images = tmp_path / "data" / "img"
    write_image(images / "a.jpg", "red")
    write_image(images / "b.png", "blue", fmt="PNG")
    shutil.copy(hostile_dir / "bad_truncated.png", images / "c.png")
    manifest = tmp_path / "data" / "items.csv"
    manifest.write_text(
        "record,picture,Title,Author,Year,notes\n"
        "A-1,img/a.jpg,Red,Ann,1901,first\n"
        f"B-2,{images / 'b.png'},Blue,Bo,,\n"
        "C-3,img/c.png,Broken,,,\n"
        "D-4,img/missing.jpg,Gone,,,\n"
        "E-5,ftp://example.org/e.jpg,Elsewhere,,,\n"
        "F-6,,No image,,,\n"
        'G-7,img/a.jpg,"Too, many",x,1900,y,extra\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main,
        [
            "ingest",
            "manifest",
            str(manifest),
            "--image-column",
            "picture",
            "--id-column",
            "record",
            "--collection",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("6 added, 1 skipped")
    coll = Collection(tmp_path / "c")
    assert coll.ids.tolist() == ["A-1", "B-2", "C-3", "D-4", "E-5", "F-6"]
    assert [coll.has_image(i) for i in range(6)] == [True, True, False, False, False, False]
    a = coll.metadata(0)
    assert (a["title"], a["creator"], a["year"], a["notes"]) == ("Red", "Ann", 1901, "first")
    assert a["image_path"] == str((images / "a.jpg").resolve())
    report = by_id(read_tsv(tmp_path / "c" / "ingest_report.tsv"))
    assert set(report) == {"C-3", "D-4", "E-5", "line-8"}
    assert report["C-3"]["action"] == "no image"
    assert "unsupported URL scheme" in report["E-5"]["reason"]
    assert report["line-8"]["action"] == "skipped" and "7 fields" in report["line-8"]["reason"]

    # The missing image appears later: a re-run fills it in without duplicating the row.
    write_image(images / "missing.jpg", "green")
    again = ingest(tmp_path / "c", ManifestSource(manifest, image_column="picture", id_column="record"))
    assert again.added == 0 and again.images_filled == 1
    coll = Collection(tmp_path / "c")
    assert len(coll) == 6 and coll.row_of("D-4") == 3 and coll.has_image(3)


def test_gzipped_tsv_with_detected_columns_and_row_ids(tmp_path: Path) -> None:
    write_image(tmp_path / "x.jpg", "red")
    path = tmp_path / "list.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("file_name\tcaption\tcreator\n")
        fh.write('x.jpg\t"a red, square"\tMe\n')
        fh.write("\tno image\t\n")
    source = ManifestSource(path)
    assert source.image_column == "file_name" and source.id_column is None
    summary = ingest(tmp_path / "c", source)
    assert summary.added == 2
    coll = Collection(tmp_path / "c")
    assert coll.ids.tolist() == ["list-1", "list-2"]
    assert coll.metadata(0)["description"] == '"a red, square"'
    assert coll.has_image(0) and not coll.has_image(1)


def test_limit_and_rerun(bl_sample: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = [
        "ingest",
        "manifest",
        str(bl_sample),
        "--preset",
        "bl-flickr",
        "--collection",
        str(tmp_path / "c"),
    ]
    first = runner.invoke(main, [*args, "--limit", "100"])
    assert first.exit_code == 0 and first.stdout.startswith("100 added")
    second = runner.invoke(main, args)
    assert second.exit_code == 0 and second.stdout.startswith("140 added")
    assert "100 already in the collection" in second.stderr
    assert len(Collection(tmp_path / "c")) == 240


def test_bl_full_file_repeats_every_short_row(tmp_path: Path) -> None:
    # As in the full gzipped manifests: every short row appears twice, word for word.
    path = write_bl_manifest(tmp_path / "bl.tsv.gz", bl_lines(repeat_short=True))
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        lines = fh.read().split("\n")
    shorts = [line for line in lines if line.count("\t") == 12]
    assert len(shorts) == 24 and len(set(shorts)) == 12
    summary = ingest(tmp_path / "c", BLFlickrSource(path))
    assert summary.added == 240
    assert summary.repeated_in_source == 12
    assert summary.skipped == 0
    coll = Collection(tmp_path / "c")
    assert len(coll) == 240 and len(set(coll.ids.tolist())) == 240
    row = coll.metadata(coll.row_of("11255171795"))
    assert row["title"].startswith("[[Thirty plates, proofs of illustrations to the “Household edition”")
    assert row["image_path"] is None and row["volume"] == "04"
    twins = coll.metadata(coll.row_of("11061263934"))
    assert twins["title"] == "The Twins of Saint-Marcel. A tale of Paris Incendie\u0301"
    # Only small and original exist: medium is asked for, the next larger one is used.
    assert twins["image_path"] == "http://farm6.staticflickr.com/5547/11061263934_dd0a5cf044_o.jpg"
    assert not any(str(v).endswith("\r") for r in range(len(coll)) for v in coll.metadata(r).values())


def test_unknown_image_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id,title\n1,x\n")
    result = CliRunner().invoke(
        main, ["ingest", "manifest", str(path), "--image-column", "img", "--collection", str(tmp_path / "c")]
    )
    assert result.exit_code == SourceError.exit_code
    assert "image column 'img' is not in the manifest" in result.stderr
