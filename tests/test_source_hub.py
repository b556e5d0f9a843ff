"""The hub source goes through the real ``datasets.load_dataset`` call with local files: parquet
shards and an imagefolder tree, the same formats Hub datasets are published in."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

from illustra.cli import main
from illustra.collection import Collection
from illustra.errors import SourceError
from illustra.sources import HubSource, ingest

from .ingest_helpers import image_bytes, read_tsv, write_image


def write_parquet(folder: Path, rows: dict[str, list], with_image: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    feats: dict[str, datasets.FeatureType] = {k: datasets.Value("string") for k in rows if k != "image"}
    if "year" in rows:
        feats["year"] = datasets.Value("int32")
    if with_image:
        feats["image"] = datasets.Image()
    ds = datasets.Dataset.from_dict(rows, features=datasets.Features(feats))
    ds.to_parquet(str(folder / "train-00000-of-00001.parquet"))
    return folder


@pytest.fixture
def parquet_dataset(tmp_path: Path) -> Path:
    return write_parquet(
        tmp_path / "pq",
        {
            "image": [
                {"bytes": image_bytes("red"), "path": "red.jpg"},
                {"bytes": image_bytes("blue", fmt="PNG"), "path": None},
                {"bytes": b"<html>not an image</html>", "path": "fake.jpg"},
            ],
            "image_id": ["r1", "b2", "x3"],
            "caption": ["a red square", "a blue square", "broken"],
            "artist": ["Ann", "Bo", None],
            "year": [1890, 1901, None],
            "collection": ["box A", "box B", "box C"],
        },
    )


def test_streamed_parquet_rows_map_metadata_and_skip_bad_images(
    parquet_dataset: Path, tmp_path: Path
) -> None:
    source = HubSource(str(parquet_dataset), split="train", streaming=True)
    assert (source.image_column, source.id_column) == ("image", "image_id")
    summary = ingest(tmp_path / "c", source)
    coll = Collection(tmp_path / "c")
    assert coll.ids.tolist() == ["r1", "b2"]
    red = coll.metadata(coll.row_of("r1"))
    assert red["description"] == "a red square"
    assert red["creator"] == "Ann"
    assert red["year"] == 1890 and red["date"] == "1890"
    assert red["collection"] == "box A"
    assert red["image_path"] == "red.jpg"
    assert coll.has_image(coll.row_of("b2"))
    assert summary.skipped == 1
    report = read_tsv(tmp_path / "c" / "ingest_report.tsv")
    assert [(r["id"], r["reason"]) for r in report] == [("x3", "not an image")]
    assert "description" in coll.text_fields


def test_imagefolder_without_streaming_uses_split_index_ids(tmp_path: Path) -> None:
    root = tmp_path / "imf"
    write_image(root / "train" / "a.png", "red", fmt="PNG")
    write_image(root / "train" / "b.png", "green", fmt="PNG")
    (root / "train" / "metadata.csv").write_text(
        "file_name,title,text\na.png,Red one,red thing\nb.png,Green one,\n"
    )
    result = CliRunner().invoke(
        main,
        [
            "ingest",
            "hub",
            str(root),
            "--split",
            "train",
            "--no-streaming",
            "--cache-dir",
            str(tmp_path / "hf-cache"),
            "--collection",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("2 added, 0 skipped")
    coll = Collection(tmp_path / "c")
    assert sorted(coll.ids.tolist()) == ["train-0", "train-1"]
    titles = {coll.metadata(i)["title"]: coll.metadata(i) for i in range(len(coll))}
    assert set(titles) == {"Red one", "Green one"}
    assert titles["Red one"]["description"] == "red thing"
    assert titles["Red one"]["image_path"].endswith("a.png")


def test_limit_and_explicit_columns(parquet_dataset: Path, tmp_path: Path) -> None:
    source = HubSource(str(parquet_dataset), image_column="image", id_column="caption", limit=1)
    summary = ingest(tmp_path / "c", source)
    assert summary.added == 1
    assert Collection(tmp_path / "c").ids.tolist() == ["a red square"]
    with pytest.raises(SourceError, match="no column 'picture'"):
        HubSource(str(parquet_dataset), image_column="picture")


def test_rerun_adds_nothing(parquet_dataset: Path, tmp_path: Path) -> None:
    ingest(tmp_path / "c", HubSource(str(parquet_dataset)))
    again = ingest(tmp_path / "c", HubSource(str(parquet_dataset)))
    assert again.added == 0 and again.already_present == 2


def test_metadata_only_dataset(tmp_path: Path) -> None:
    folder = write_parquet(tmp_path / "meta", {"id": ["a", "b"], "title": ["T1", "T2"]}, with_image=False)
    ingest(tmp_path / "c", HubSource(str(folder)))
    coll = Collection(tmp_path / "c")
    assert coll.ids.tolist() == ["a", "b"] and not coll.has_image(0)
    assert coll.metadata(1)["title"] == "T2"


def test_unreachable_hub_is_one_clear_line(tmp_path: Path) -> None:
    # Tests run with HF_DATASETS_OFFLINE=1 (conftest): the Hub cannot be reached.
    with pytest.raises(SourceError, match="cannot reach the Hugging Face Hub") as err:
        HubSource("nobody-here/no-such-dataset")
    assert "\n" not in str(err.value)
    result = CliRunner().invoke(
        main, ["ingest", "hub", "nobody-here/no-such-dataset", "--collection", str(tmp_path / "c")]
    )
    assert result.exit_code == SourceError.exit_code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the Hugging Face Hub")
    assert "Traceback" not in result.output


def test_local_folder_without_data_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="cannot load dataset from"):
        HubSource(str(tmp_path / "empty"))
