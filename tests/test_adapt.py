"""Adapters (``illustra adapt``, ``MODEL+adapted``) and ``illustra eval --gallery-ids``, on real
collections with real FAISS indexes and the deterministic ``fake`` encoder.

In the "misnamed" collection every plate's title names another colour than the picture shows
(red plates are catalogued as green, ...): the base model cannot know that, an adapter learnt
from the catalogue text can, and its held-out quality says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from illustra import adapters
from illustra.cards import card_markdown
from illustra.cli import main
from illustra.collection import Collection
from illustra.encoders import register_encoder
from illustra.errors import BadInput, NotEmbedded
from illustra.index import build_index
from illustra.search import SearchService

from . import tiny_clip
from .fakes import COLOURS, FakeEncoder, solid
from .searchkit import colour_rows, embed_with

tiny_clip_dir = tiny_clip.tiny_clip_dir
tiny_siglip_dir = tiny_clip.tiny_siglip_dir

NAMES = list(COLOURS)
SWAP = {c: NAMES[(i + 3) % len(NAMES)] for i, c in enumerate(NAMES)}


def _build(root: Path, n_per_colour: int, misnamed: bool) -> Path:
    rows = colour_rows(n_per_colour)
    if misnamed:
        for r in rows:
            colour = r["id"].split("/")[0]
            r["title"] = f"A {SWAP[colour]} plate number {r['id'].split('/')[1]}"
    coll = Collection.create(root, rows, source={"kind": "test"})
    embed_with(coll)
    build_index(Collection(root), "fake")
    return root


@pytest.fixture(scope="module")
def misnamed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_encoder("fake", FakeEncoder)
    root = _build(tmp_path_factory.mktemp("adapt") / "misnamed", 13, misnamed=True)
    adapters.train(Collection(root), "fake")
    return root


def test_an_adapter_learns_what_the_catalogue_knows_and_is_used_when_it_beats_the_base(
    misnamed: Path,
) -> None:
    coll = Collection(misnamed)
    entry = coll.manifest["embeddings"]["fake+adapted"]
    held = entry["adapter"]["held_out"]
    assert held["items"] > 0 and held["adapted"]["mrr"] > held["base"]["mrr"]
    assert entry["adapter"]["used"] is True and entry["adapter"]["training_items"] == len(coll)
    # Search picks the adapter by default; --model fake still means the base model.
    assert SearchService(misnamed).model == "fake+adapted"
    assert SearchService(misnamed, "fake").model == "fake"
    # Red plates are catalogued as SWAP["red"]: the adapted space finds them by that word.
    adapted = SearchService(misnamed, "fake+adapted").search_text(SWAP["red"], k=5, mode="visual")
    assert all(h.id.startswith("red/") for h in adapted.results)
    base = SearchService(misnamed, "fake").search_text(SWAP["red"], k=5, mode="visual")
    assert not any(h.id.startswith("red/") for h in base.results)
    # A picture query goes through the model and the learnt map into the same space.
    by_picture = SearchService(misnamed, "fake+adapted").search_image(solid("blue"), k=3)
    assert all(h.id.startswith("blue/") for h in by_picture.results)


def test_the_card_says_what_the_adapter_learnt_and_how_it_was_measured(misnamed: Path) -> None:
    card = card_markdown(Collection(misnamed), ["fake"])
    assert "### Adapted to this collection" in card
    assert "catalogue text" in card and "held-out" in card and "search uses fake+adapted by default" in card


def test_an_adapter_that_does_not_beat_the_base_is_not_used(tmp_path: Path) -> None:
    root = _build(tmp_path / "honest", 13, misnamed=False)
    out = CliRunner().invoke(main, ["adapt", "--collection", str(root), "--model", "fake", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["used"] is False and report["model"] == "fake+adapted"
    assert SearchService(root).model == "fake"
    assert SearchService(root, "fake+adapted").model == "fake+adapted"  # still there when asked for


def test_eval_gallery_ids_ranks_only_the_listed_items(misnamed: Path, tmp_path: Path) -> None:
    gallery = tmp_path / "gallery.txt"
    listed = [f"{c}/{j:02d}" for c in ("red", "blue") for j in range(0, 13, 2)]
    gallery.write_text("\n".join(listed) + "\n", encoding="utf-8")
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"query": SWAP["red"], "relevant_ids": [f"red/{j:02d}" for j in range(13)]})
        + "\n"
        + json.dumps({"query": "green", "relevant_ids": ["green/00"]})
        + "\n",
        encoding="utf-8",
    )
    out = CliRunner().invoke(
        main,
        [
            "eval",
            "--collection",
            str(misnamed),
            "--model",
            "fake+adapted",
            "--queries",
            str(queries),
            "--gallery-ids",
            str(gallery),
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout)
    assert res["gallery_items"] == len(listed) and res["n_items"] == len(listed)
    scored = res["queries"][0]
    assert scored["n_relevant"] == 7 and set(scored["top"]) <= set(listed)
    assert scored["p@10"] == pytest.approx(0.7)  # the 7 listed red plates come first, then blue ones
    assert [e["query"] for e in res["excluded"]] == ["green"]  # its only relevant item is not listed
    gallery.write_text("red/00\nno/such-item\n", encoding="utf-8")
    bad = CliRunner().invoke(
        main,
        ["eval", "--collection", str(misnamed), "--queries", str(queries), "--gallery-ids", str(gallery)],
    )
    assert bad.exit_code == 2 and "no/such-item" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def _unchanged(root: Path, before: str) -> None:
    assert (root / "manifest.json").read_text(encoding="utf-8") == before
    assert not (root / "embeddings" / "fake_adapted").exists()


def test_bad_input_is_one_clear_message_and_changes_nothing(tmp_path: Path) -> None:
    small = _build(tmp_path / "small", 5, misnamed=True)  # 40 items: too little text
    before = (small / "manifest.json").read_text(encoding="utf-8")
    with pytest.raises(BadInput, match="at least 100 items.*40 have it"):
        adapters.train(Collection(small), "fake")
    _unchanged(small, before)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\nred/00,a ship\nblue/00,a map\n", encoding="utf-8")
    with pytest.raises(BadInput, match="at least 40 labelled items.*2 in 2"):
        adapters.train(Collection(small), "fake", source="labels", labels_path=labels)
    labels.write_text("red/00,a ship\nghost/9,a map\n", encoding="utf-8")
    out = CliRunner().invoke(main, ["adapt", "--collection", str(small), "--from", "labels", str(labels)])
    assert out.exit_code == 2 and "ghost/9" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    with pytest.raises(NotEmbedded, match="illustra embed --model lite"):
        adapters.train(Collection(small), "lite")
    out = CliRunner().invoke(main, ["adapt", "--collection", str(small), "--model", "lite"])
    assert out.exit_code == 4 and len(out.stderr.strip().splitlines()) == 1
    _unchanged(small, before)


def test_labels_and_excluded_ids(tmp_path: Path) -> None:
    root = _build(tmp_path / "labelled", 13, misnamed=False)
    coll = Collection(root)
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("\n".join(str(i) for i in coll.ids.tolist()[:20]) + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match="once 20 excluded ids are left out"):
        adapters.train(coll, "fake", exclude_path=exclude)
    labels = tmp_path / "labels.csv"
    labels.write_text("".join(f"{i},{SWAP[i.split('/')[0]]}\n" for i in coll.ids.tolist()), encoding="utf-8")
    report = adapters.train(
        Collection(root), "fake", source="labels", labels_path=labels, exclude_path=exclude
    )
    assert report["training_items"] == len(coll) - 20 and report["excluded_ids"] == 20
    assert report["trained_on"] == "labels (labels.csv)" and report["used"] is True


@pytest.mark.parametrize("which", ["clip", "siglip"])
def test_clip_and_siglip_models_adapt_through_the_cli(
    which: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``illustra adapt`` on CLIP- and SigLIP-family models (tiny, random weights): trained and
    measured on held-out items, and ``MODEL+adapted`` answers search and eval like any model name."""
    model = str(request.getfixturevalue(f"tiny_{which}_dir"))
    rows = colour_rows(13)
    for r in rows:
        colour = r["id"].split("/")[0]
        r["title"] = f"A {SWAP[colour]} plate number {r['id'].split('/')[1]}"
    root = tmp_path / "c"
    coll = Collection.create(root, rows, source={"kind": "test"})
    embed_with(coll, model)
    build_index(Collection(root), model)
    runner = CliRunner()
    out = runner.invoke(main, ["adapt", "--collection", str(root), "--model", model])
    assert out.exit_code == 0, out.output
    entry = Collection(root).manifest["embeddings"][f"{model}+adapted"]
    held = entry["adapter"]["held_out"]
    assert held["items"] > 0 and {"base", "adapted"} <= set(held)
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"query": "green", "relevant_ids": ["green/00", "green/01"]}) + "\n", encoding="utf-8"
    )
    adapted = ["--collection", str(root), "--model", f"{model}+adapted"]
    found = runner.invoke(main, ["search", *adapted, "a green plate", "--json"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["results"]
    ev = runner.invoke(main, ["eval", *adapted, "--queries", str(queries), "--json"])
    assert ev.exit_code == 0, ev.output
