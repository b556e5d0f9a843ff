"""``illustra ingest hub --preset bl-hub``: the British Library's book illustrations from a local
folder laid out like the Hub dataset, read through the same ``datasets.load_dataset`` call."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from illustra.cards import collection_card
from illustra.cli import main
from illustra.collection import Collection
from illustra.errors import BadInput, SourceError
from illustra.sources.bl_hub import BLHubSource, FlickrJoin, item_id, normal_key, parse_fname, year_of

from .blhub import LARGE, PLATES, UNPARSED, write_bl_hub
from .blsample import bl_lines, write_bl_manifest
from .ingest_helpers import read_tsv

ROWS = 30  # 16 plates + 14 embellishments
ADDED = ROWS - 1  # one broken image


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bl_hub(tmp_path_factory.mktemp("bl") / "british-library-book-images")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # blsample's real rows come first: three of them name pictures in the tiny dataset.
    return write_bl_manifest(
        tmp_path_factory.mktemp("man") / "bl_manifest.tsv.gz", bl_lines(rows=40, short=3)
    )


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["ingest", "hub", *args, "--no-progress"])


def ingest_cli(hub: Path, coll: Path, *extra: str) -> Result:
    result = run(str(hub), "--preset", "bl-hub", "--collection", str(coll), *extra)
    assert result.exit_code == 0, result.output
    return result


def stored_size(coll: Collection, rid: str) -> tuple[int, int]:
    data = coll.dataset.data.table.column("image")[coll.row_of(rid)].as_py()["bytes"]
    return Image.open(io.BytesIO(data)).size


def test_fname_parsing_and_normal_form() -> None:
    p = parse_fname("000811462_000009_210_02_A title_with underscores_1855.jpg")
    assert p is not None
    assert p.key == (811462, 9, 210, 2)
    assert p.fields == {"book_identifier": "000811462", "volume": "09", "page": "000210", "image_idx": "2"}
    assert (p.title_slug, p.year_text) == ("A title_with underscores", "1855")
    # The manifest's own forms: "0" for no volume, 2-digit volumes, 6-digit pages.
    assert normal_key(214101, 0, 508, 1) == {
        "book_identifier": "000214101",
        "volume": "0",
        "page": "000508",
        "image_idx": "1",
    }
    assert parse_fname("scan of a plate.jpg") is None
    assert parse_fname("0001_x_2_3_title_1850.jpg") is None
    assert parse_fname("1234567890_0_1_1_too long a system number_1850.jpg") is None
    # Same picture, other padding: same id; ids never depend on row position.
    a = parse_fname("000214101_02_000508_1_Reisen_1857.jpg")
    b = parse_fname("214101_000002_508_01_Reisen und Entdeckungen_1857.jpg")
    assert item_id("plates", "x", a) == item_id("plates", "y", b) == "plates/000214101_02_000508_1"
    assert (
        item_id("plates", "odd.jpg", None)
        == item_id("plates", "odd.jpg", None)
        != item_id("covers", "odd.jpg", None)
    )
    assert year_of("Unknown") == (None, "unknown")
    assert year_of("1950") == (None, "out_of_range")
    assert year_of("1449") == (None, "out_of_range")
    assert year_of("[1875?]") == (1875, "ok")
    assert year_of("1450") == (1450, "ok") and year_of("1900") == (1900, "ok")


def test_two_configs_ingest_with_parsed_fields_and_gaps(hub_dir: Path, tmp_path: Path) -> None:
    coll_dir = tmp_path / "c"
    result = ingest_cli(hub_dir, coll_dir)
    assert result.stdout.startswith(f"{ADDED} added, 1 skipped")
    out = result.output
    assert "configs medium, covers are not in" in out  # said, not guessed silently
    assert "images: copy (the default for 30 rows" in out
    assert "4 items with an unknown date, 2 with a date outside 1450-1900" in out
    assert "2 fnames did not parse" in out and "'scan of a plate.jpg'" in out

    coll = Collection(coll_dir)
    ids = coll.ids.tolist()
    assert len(ids) == len(set(ids)) == ADDED
    assert {i.split("/")[0] for i in ids} == {"plates", "embellishments"}  # no siglip2_embeddings

    item = coll.metadata(coll.row_of("plates/000811462_09_000210_2"))  # volume written "000009"
    assert (item["book_identifier"], item["volume"], item["page"], item["image_idx"]) == (
        "000811462",
        "09",
        "000210",
        "2",
    )
    assert item["title"] == item["title_slug"].strip() and item["title"].startswith("The Pictorial History")
    assert (item["year"], item["date"], item["image_type"]) == (1855, "1855", "plates")
    assert item["licence"].startswith("Public domain (CC0")
    greek = coll.metadata(coll.row_of("plates/001720349_0_000011_1"))
    assert greek["title"] == "Τεχνογαμια_ or the Marriages of the Arts" and greek["year"] == 1618

    unknown = coll.metadata(coll.row_of("plates/001988615_0_000300_3"))
    assert unknown["year"] is None and unknown["date"] is None
    late = coll.metadata(coll.row_of("plates/000194802_0_000017_1"))
    assert late["year"] is None and late["date"] == "1950"  # kept as written, no year
    emb = coll.metadata(coll.row_of("embellishments/003920572_0_000009_1"))
    assert emb["year"] is None and emb["image_type"] == "embellishments"

    # Unparsed fnames are kept, without book fields, and listed in the report; the broken image is not.
    report = read_tsv(coll_dir / "ingest_report.tsv")
    recovered = [r for r in report if r["action"] == "recovered"]
    assert sorted(r["path"].rsplit("/", 1)[1] for r in recovered) == sorted(UNPARSED)
    odd = coll.metadata(coll.row_of(recovered[0]["id"]))
    assert odd["book_identifier"] is None and odd["fname"] in UNPARSED
    assert [r["action"] for r in report if r["id"] == "plates/001992753_0_000018_1"] == ["skipped"]

    # The default for a small dataset is a bounded copy: a 900 px picture stays 900 px.
    assert stored_size(coll, item_id("plates", LARGE, parse_fname(LARGE))) == (900, 500)

    entry = coll.manifest["sources"][-1]
    assert (entry["preset"], entry["config"], entry["images"]) == ("bl-hub", "embellishments,plates", "copy")
    assert (entry["year_unknown"], entry["year_out_of_range"], entry["fname_unparsed"]) == (4, 2, 2)
    gaps = " ".join(collection_card(coll)["gaps"])
    assert "4 items have an unknown date" in gaps
    assert "2 items have a date outside 1450-1900" in gaps
    assert "2 items have a file name that did not parse" in gaps


def test_reingest_keeps_ids_and_adds_nothing(hub_dir: Path, tmp_path: Path) -> None:
    coll_dir = tmp_path / "c"
    ingest_cli(hub_dir, coll_dir, "--config", "plates", "--limit", "5")
    first = Collection(coll_dir).ids.tolist()
    assert len(first) == 5 and all(i.startswith("plates/") for i in first)
    ingest_cli(hub_dir, coll_dir, "--config", "embellishments,plates")
    again = ingest_cli(hub_dir, coll_dir)
    assert again.stdout.startswith("0 added")
    ids = Collection(coll_dir).ids.tolist()
    assert len(ids) == len(set(ids)) == ADDED
    assert ids[:5] == first


def test_join_manifest_adds_catalogue_fields_and_counts_matches(
    hub_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    coll_dir = tmp_path / "c"
    result = ingest_cli(hub_dir, coll_dir, "--join-manifest", str(manifest))
    coll = Collection(coll_dir)
    entry = coll.manifest["sources"][-1]
    matched, unmatched = entry["join_matched"], entry["join_unmatched"]
    assert matched >= 3 and matched + unmatched == ADDED
    assert f"joined with {manifest.name}: {matched} items matched, {unmatched} did not" in result.output

    barth = coll.metadata(coll.row_of("plates/000214101_02_000508_1"))  # fname wrote 000002 and 508
    assert barth["creator"] == "BARTH, Heinrich Traveller" and barth["place"] == "Gotha"
    assert barth["title"].startswith("[Reisen und Entdeckungen")
    assert barth["flickr_id"] == "11026261126"
    assert (
        barth["source_url"]
        == barth["flickr_url"]
        == "http://www.flickr.com/photos/britishlibrary/11026261126"
    )
    assert barth["image_path"] == "http://farm8.staticflickr.com/7430/11026261126_d391ee5df4.jpg"
    assert coll.has_image(coll.row_of("plates/000214101_02_000508_1"))
    smith = coll.metadata(coll.row_of("plates/003418991_0_000075_1"))
    assert smith["creator"] == "SMITH, James of Jordan Hill" and smith["place"] == "Glasgow"
    greek = coll.metadata(coll.row_of("plates/001720349_0_000011_1"))  # index "01" meets "1"
    assert greek["publisher"] == "W. Stansby for J. Parker"
    other = coll.metadata(coll.row_of("embellishments/000214101_02_000509_1"))
    assert other["creator"] is None and other["title"].startswith("Reisen und")  # the fname's slug


def test_flickr_join_is_compact_and_normalised(manifest: Path) -> None:
    join = FlickrJoin(manifest)
    assert len(join) >= 40
    hit = join.lookup((214101, 2, 508, 1))
    assert hit is not None and hit["flickr_id"] == "11026261126"
    assert join.lookup((214101, 2, 508, 9)) is None
    assert join.keys.dtype.itemsize == 16


def test_thumbnails_are_bounded(hub_dir: Path, tmp_path: Path) -> None:
    coll_dir = tmp_path / "c"
    ingest_cli(hub_dir, coll_dir, "--images", "thumbnails", "--config", "plates")
    coll = Collection(coll_dir)
    assert coll.manifest["sources"][-1]["images"] == "thumbnails"
    sizes = [stored_size(coll, rid) for rid in coll.ids.tolist()]
    assert len(sizes) == len(PLATES) - 1
    assert max(max(s) for s in sizes) == 400  # the 900x500 picture, shrunk
    assert stored_size(coll, item_id("plates", LARGE, parse_fname(LARGE))) == (400, 222)


def test_thumbnail_side_is_a_setting(hub_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILLUSTRA_THUMBNAIL_STORE_SIDE", "64")
    source = BLHubSource(str(hub_dir), configs="plates", images_mode="thumbnails", limit=4)
    assert source.store_side == 64


def test_remote_without_join_is_one_line_error(hub_dir: Path, tmp_path: Path) -> None:
    result = run(
        str(hub_dir), "--preset", "bl-hub", "--images", "remote", "--collection", str(tmp_path / "c")
    )
    assert result.exit_code == SourceError.exit_code
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--images remote needs --join-manifest" in lines[0]
    assert not (tmp_path / "c").exists()


def test_remote_with_join_records_urls_and_no_bytes(hub_dir: Path, manifest: Path, tmp_path: Path) -> None:
    coll_dir = tmp_path / "c"
    ingest_cli(hub_dir, coll_dir, "--images", "remote", "--join-manifest", str(manifest), "--size", "large")
    coll = Collection(coll_dir)
    assert len(coll) == ROWS  # no image is decoded, so the broken one is kept too
    assert coll.manifest["counts"]["with_image"] == 0
    barth = coll.metadata(coll.row_of("plates/000214101_02_000508_1"))
    assert barth["image_path"] == "http://farm8.staticflickr.com/7430/11026261126_d391ee5df4_b.jpg"
    lonely = coll.metadata(coll.row_of("embellishments/002369124_0_000125_1"))
    assert lonely["image_path"] is None
    report = read_tsv(coll_dir / "ingest_report.tsv")
    assert any(r["reason"].startswith("no image URL") for r in report)


def one_line_error(result: Result) -> str:
    """The one line a bad layout gets (exit status of a SourceError), with nothing else said."""
    assert result.exit_code == SourceError.exit_code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_unknown_config_split_and_misnamed_column_are_one_line_errors(hub_dir: Path, tmp_path: Path) -> None:
    coll_dir = tmp_path / "c"
    ingest_cli(hub_dir, coll_dir, "--config", "plates", "--limit", "3")

    msg = one_line_error(
        run(str(hub_dir), "--preset", "bl-hub", "--config", "plate,covers", "--collection", str(coll_dir))
    )
    assert "no config 'plate', 'covers'" in msg
    assert "configs found: plates, embellishments, siglip2_embeddings" in msg

    msg = one_line_error(
        run(str(hub_dir), "--preset", "bl-hub", "--split", "test", "--collection", str(coll_dir))
    )
    assert "no split 'test'" in msg and "splits found: train" in msg

    msg = one_line_error(
        run(
            str(hub_dir),
            "--preset",
            "bl-hub",
            "--config",
            "siglip2_embeddings",
            "--collection",
            str(coll_dir),
        )
    )
    assert "has no 'image' column" in msg and "columns found: fname, siglip2_embeddings" in msg

    renamed = write_bl_hub(tmp_path / "renamed", columns={"fname": "file_name"})
    msg = one_line_error(run(str(renamed), "--preset", "bl-hub", "--collection", str(coll_dir)))
    assert "has no 'fname' column" in msg and "columns found: image, date, file_name, image_type" in msg

    result = run(str(hub_dir), "--collection", str(coll_dir), "--join-manifest", str(hub_dir / "README.md"))
    assert result.exit_code == BadInput.exit_code
    assert result.output.strip() == "error: --join-manifest works only with --preset bl-hub"

    # Nothing already ingested was lost.
    assert len(Collection(coll_dir)) == 3


def test_folder_without_readme_has_configs_as_folders(tmp_path: Path) -> None:
    bare = write_bl_hub(tmp_path / "bare", readme_header=False)
    coll_dir = tmp_path / "c"
    result = ingest_cli(bare, coll_dir, "--config", "embellishments", "--limit", "4")
    assert result.stdout.startswith("4 added")
    assert all(i.startswith("embellishments/") for i in Collection(coll_dir).ids.tolist())
    msg = one_line_error(
        run(str(bare), "--preset", "bl-hub", "--config", "nope", "--collection", str(coll_dir))
    )
    assert "configs found: embellishments, plates, siglip2_embeddings" in msg


def test_not_a_flickr_manifest(tmp_path: Path) -> None:
    bad = tmp_path / "m.tsv"
    bad.write_text("flickr_id\ttitle\n1\tx\n", encoding="utf-8")
    with pytest.raises(SourceError, match="not a BL Flickr manifest: no .*book_identifier"):
        FlickrJoin(bad)


def test_plain_hub_ingest_takes_images_option(hub_dir: Path, tmp_path: Path) -> None:
    coll_dir = tmp_path / "c"
    result = run(str(hub_dir), "--config", "plates", "--images", "thumbnails", "--collection", str(coll_dir))
    assert result.exit_code == 0, result.output
    coll = Collection(coll_dir)
    assert max(max(stored_size(coll, rid)) for rid in coll.ids.tolist()) == 400
    result = run(str(hub_dir), "--config", "plates", "--images", "remote", "--collection", str(coll_dir))
    assert result.exit_code == BadInput.exit_code
    assert "--images remote works only with --preset bl-hub" in result.output
