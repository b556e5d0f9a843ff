"""The build pipeline and the one ingest driver: stages know whether they are current, a run builds
only what is not, an interrupted run continues, rows are written once, and metadata text is
decoded once."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from datasets.arrow_writer import ArrowWriter

from illustra.collection import Collection
from illustra.pipeline import (
    Built,
    Check,
    CompanionStage,
    EmbedStage,
    IngestStage,
    Pipeline,
    TextIndexStage,
    VectorIndexStage,
    build_pipeline,
)
from illustra.sources import FolderSource, ingest
from illustra.sources.base import IngestContext, clean_row

from .fakes import COLOURS
from .ingest_helpers import image_bytes, write_image


# -- a source of N rows, for counting what the driver writes -------------------------------------
class CountingSource:
    kind = "counting"
    extra_fields: list[str] = []
    text_fields: list[str] | None = ["title"]

    def __init__(self, start: int, n: int) -> None:
        self.start, self.n = start, n

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "n": self.n}

    def rows(self, ctx: IngestContext) -> Iterator[dict[str, Any]]:
        jpeg = image_bytes("red", (16, 12))
        for i in range(self.start, self.start + self.n):
            if ctx.claim(f"item-{i:05d}"):
                yield {"id": f"item-{i:05d}", "image": {"bytes": jpeg, "path": None}, "title": f"item {i}"}


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each row id is written to an Arrow file. Every ``ArrowWriter`` path
    (``write``'s buffer flushes, ``write_batch``, ``save_to_disk``) ends in ``write_table``."""
    seen: Counter[str] = Counter()
    real = ArrowWriter.write_table

    def write_table(self: ArrowWriter, table: Any, *args: Any, **kwargs: Any) -> Any:
        if "id" in table.column_names:
            seen.update(str(i) for i in table.column("id").to_pylist())
        return real(self, table, *args, **kwargs)

    monkeypatch.setattr(ArrowWriter, "write_table", write_table)
    return seen


@pytest.mark.parametrize("n", [40, 2500])
def test_the_driver_writes_each_row_a_bounded_number_of_times(tmp_path, writes, n):
    """Appending N rows costs O(N) writes: each row is staged once and committed once, however
    many rows come before or after it (a driver that commits every 1,000 rows by rewriting the
    collection writes the early rows again at every commit: quadratic)."""
    summary = ingest(tmp_path / "coll", CountingSource(0, n))
    assert summary.added == n == len(Collection(tmp_path / "coll"))
    assert len(writes) == n
    assert max(writes.values()) <= 2
    assert sum(writes.values()) <= 2 * n


def test_a_second_run_copies_the_earlier_rows_once(tmp_path, writes):
    ingest(tmp_path / "coll", CountingSource(0, 1200))
    writes.clear()
    summary = ingest(tmp_path / "coll", CountingSource(1200, 1300))
    assert summary.added == 1300 and len(Collection(tmp_path / "coll")) == 2500
    old = {k: v for k, v in writes.items() if int(k.split("-")[1]) < 1200}
    new = {k: v for k, v in writes.items() if int(k.split("-")[1]) >= 1200}
    assert len(old) == 1200 and max(old.values()) == 1  # the committed rows: copied once
    assert len(new) == 1300 and max(new.values()) <= 2


# -- HTML character references -------------------------------------------------------------------
def _folder_with_entities(tmp_path: Path) -> Path:
    folder = tmp_path / "scans"
    write_image(folder / "gelato.jpg", "red")
    write_image(folder / "chips.jpg", "blue")
    with (folder / "metadata.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file_name", "title", "creator", "description"])
        w.writerow(
            ["gelato.jpg", "Gelato all&#39;italiana", "Caf&eacute; Roma", "&lt;b&gt;two&lt;/b&gt; scoops"]
        )
        w.writerow(["chips.jpg", "Fish &amp;amp; chips", "A &amp; B", "plain"])
    return folder


def test_html_entities_in_source_metadata_are_decoded_at_ingest(tmp_path):
    ingest(tmp_path / "coll", FolderSource(_folder_with_entities(tmp_path)))
    coll = Collection(tmp_path / "coll")
    gelato = coll.metadata(coll.row_of("gelato"))
    assert gelato["title"] == "Gelato all'italiana"
    assert gelato["creator"] == "Café Roma"
    assert gelato["description"] == "<b>two</b> scoops"  # shown as text, never as markup
    chips = coll.metadata(coll.row_of("chips"))
    assert chips["title"] == "Fish &amp; chips"  # decoded once: "&amp;amp;" -> "&amp;"
    assert chips["creator"] == "A & B"


def test_clean_row_leaves_ids_and_paths_alone():
    row = {"id": "a&amp;b", "image_path": "/x/&amp;.png", "title": "a&amp;b", "year": 1850}
    assert clean_row(row) == {**row, "title": "a&b"}
    plain = {"id": "x", "title": "nothing to decode"}
    assert clean_row(plain) is plain


def test_an_older_collection_is_repaired_by_its_next_ingest_and_only_once(tmp_path):
    root = tmp_path / "coll"
    # Rows as an ingest wrote them before entities were decoded (no mark in the manifest).
    old = [
        {
            "id": "old-1",
            "image": {"bytes": image_bytes("red"), "path": None},
            "title": "Gelato all&#39;italiana",
        },
        {
            "id": "old-2",
            "image": {"bytes": image_bytes("blue"), "path": None},
            "title": "Fish &amp;amp; chips",
        },
        {"id": "old-3", "image": {"bytes": image_bytes("green"), "path": None}, "title": "no entities"},
    ]
    Collection.create(root, old, source={"kind": "older"}, text_fields=["title"])
    stage = IngestStage(FolderSource(_folder_with_entities(tmp_path)))
    stage.build(root, progress=False)
    assert stage.is_current(root)
    for _ in range(2):  # a second ingest must not decode again
        summary = ingest(root, FolderSource(_folder_with_entities(tmp_path)))
        coll = Collection(root)
        assert coll.ids.tolist()[:3] == ["old-1", "old-2", "old-3"]  # rows keep their numbers
        assert coll.metadata(coll.row_of("old-1"))["title"] == "Gelato all'italiana"
        assert coll.metadata(coll.row_of("old-2"))["title"] == "Fish &amp; chips"
        assert coll.image_bytes(coll.row_of("old-2")) == image_bytes("blue")  # images kept
        assert summary.added == 0 and summary.images_filled == 0


def test_ingest_stage_is_not_current_for_a_collection_ingested_before_decoding(tmp_path):
    folder = _folder_with_entities(tmp_path)
    stage = IngestStage(FolderSource(folder))
    root = tmp_path / "coll"
    # A finished ingest of the same folder, recorded before entities were decoded.
    row = {"id": "gelato", "image": {"bytes": image_bytes("red"), "path": None}, "title": "all&#39;italiana"}
    Collection.create(root, [row], source={**FolderSource(folder).describe(), "complete": True})
    check = stage.is_current(root)
    assert not check and "HTML character references" in check.reason
    summary = stage.build(root, progress=False).result
    assert "1 items had HTML character references in their metadata decoded" in summary.notes
    assert summary.added == 1 and stage.is_current(root)
    coll = Collection(root)
    assert coll.metadata(coll.row_of("gelato"))["title"] == "all'italiana"


# -- the pipeline --------------------------------------------------------------------------------
def _colour_folder(tmp_path: Path, n: int = 6) -> Path:
    folder = tmp_path / "pictures"
    names = list(COLOURS)[:n]
    for name in names:
        write_image(folder / f"{name}.png", name, fmt="PNG")
    with (folder / "metadata.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file_name", "title"])
        for name in names:
            w.writerow([f"{name}.png", f"a {name} square"])
    return folder


def _statuses(run: Any) -> dict[str, str]:
    return {s.name: s.status for s in run.stages}


def test_pipeline_builds_what_is_not_current_and_then_nothing(tmp_path):
    root = tmp_path / "coll"
    pipeline = build_pipeline(FolderSource(_colour_folder(tmp_path)), "fake")
    notes: list[str] = []
    first = pipeline.run(root, progress=False, notify=notes.append)
    assert _statuses(first) == {
        "ingest": "built",
        "embed": "built",
        "similar": "reused",  # the fake model has no picture-only companion
        "index": "built",
        "text": "built",
    }
    assert notes[0] == "[1/5] ingest: no collection yet; building"
    assert first.result("ingest").added == 6 and first.result("embed").embedded == 6
    second = pipeline.run(root, progress=False)
    assert second.reused_everything
    assert [s.detail for s in second.stages][:2] == ["6 items already ingested", "6 vectors"]


def test_an_interrupted_pipeline_continues_where_it_stopped(tmp_path, monkeypatch):
    root = tmp_path / "coll"
    pipeline = build_pipeline(FolderSource(_colour_folder(tmp_path)), "fake")
    real = VectorIndexStage.build

    def killed(self: VectorIndexStage, collection: Path, progress: bool) -> Built:
        raise KeyboardInterrupt

    monkeypatch.setattr(VectorIndexStage, "build", killed)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(root, progress=False)
    monkeypatch.setattr(VectorIndexStage, "build", real)
    again = pipeline.run(root, progress=False)
    assert _statuses(again) == {
        "ingest": "reused",
        "embed": "reused",
        "similar": "reused",
        "index": "built",
        "text": "built",
    }


def test_new_rows_make_the_later_stages_stale(tmp_path):
    root = tmp_path / "coll"
    pipeline = build_pipeline(FolderSource(_colour_folder(tmp_path, 4)), "fake")
    pipeline.run(root, progress=False)
    ingest(root, FolderSource(write_image(tmp_path / "more" / "late.png", "white", fmt="PNG").parent))
    assert not EmbedStage("fake").is_current(root)
    run = pipeline.run(root, progress=False)
    assert _statuses(run) == {
        "ingest": "reused",
        "embed": "built",
        "similar": "reused",
        "index": "built",
        "text": "built",
    }
    assert run.result("embed").embedded == 1 and run.result("embed").already_done == 4


def test_companion_stage_follows_the_embed_stage_model():
    assert CompanionStage(EmbedStage("lite")).companion() == "lite-visual"
    assert CompanionStage(EmbedStage("fake")).companion() is None


def test_text_stage_rebuilds_when_sentence_vectors_are_asked_for(tmp_path):
    root = tmp_path / "coll"
    Pipeline([IngestStage(FolderSource(_colour_folder(tmp_path, 3))), TextIndexStage(False)]).run(
        root, progress=False
    )
    assert TextIndexStage(False).is_current(root) and TextIndexStage(None).is_current(root)
    assert TextIndexStage(True).is_current(root) == Check(False, "sentence vectors wanted")
