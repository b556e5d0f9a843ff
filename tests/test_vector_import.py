"""Importing precomputed vectors as a model's embeddings (``illustra embed --from-parquet`` /
``--from-dataset``): matching by key or verified position, bad vectors listed, provenance in the
manifest, resume after kill -9, one-line errors, and search on the imported collection."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from illustra import images
from illustra.cli import main
from illustra.collection import Collection
from illustra.embedding_store import EmbeddingStore
from illustra.sources import HubSource, ingest

from . import tiny_clip
from .fakes import COLOURS, solid
from .killkit import kill_after_chunks

tiny_siglip_dir = tiny_clip.tiny_siglip_dir

REPO = Path(__file__).resolve().parents[1]
MODEL = "example/precomputed-model"  # no weights anywhere: the import never needs them
DIM = 8
BL = "google/siglip2-so400m-patch16-256"


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILLUSTRA_TORCH_THREADS", "1")


def make_collection(root: Path, n: int = 12, *, with_images: bool = False) -> Collection:
    colours = sorted(COLOURS)
    rows = []
    for i in range(n):
        row: dict = {"id": f"item-{i:02d}", "title": f"picture {i}", "fname": f"{1000 + i}_p{i}.jpg"}
        if with_images:
            row["image"] = {"bytes": images.encode_stored(solid(colours[i % len(colours)], (16, 16))), "path": None}
        rows.append(row)
    return Collection.create(root, rows, source={"kind": "test"}, extra_fields=["fname"])


def source_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def write_vectors(
    path: Path,
    vectors: list | np.ndarray,
    keys: list | None = None,
    *,
    key_name: str = "key",
    vec_name: str = "emb",
    fixed: int | None = None,
    value_type: pa.DataType = pa.float32(),
) -> Path:
    cols: dict[str, pa.Array] = {}
    if keys is not None:
        cols[key_name] = pa.array(keys)
    vecs = [None if v is None else [float(x) for x in v] for v in vectors]
    cols[vec_name] = pa.array(vecs, type=pa.list_(value_type, fixed) if fixed else pa.list_(value_type))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def stored(root: Path, model: str = MODEL) -> dict[str, np.ndarray]:
    coll = Collection(root)
    store = EmbeddingStore(coll, model)
    vecs = np.asarray(store.vectors())
    return {str(coll.ids[r]): vecs[i] for i, r in enumerate(store.rows().tolist())}


def one_line_error(res: Result, *needles: str) -> str:
    assert res.exit_code not in (0, None), res.output
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- matching ------------------------------------------------------------------------------------
def test_import_by_id_normalises_reports_duplicates_and_records_provenance(tmp_path: Path) -> None:
    coll = make_collection(tmp_path / "c")
    vecs = source_vectors(14)
    keys = [f"item-{i:02d}" for i in (3, 0, 7, 1, 9, 4, 8, 2, 5, 6)] + ["item-03", "nope-1", "nope-2", None]
    # Two files, the second starting with a repeat of a key the first file already gave.
    f1 = write_vectors(tmp_path / "v" / "a.parquet", vecs[:5], keys[:5])
    f2 = write_vectors(tmp_path / "v" / "b.parquet", vecs[5:], keys[5:])
    res = run("embed", "--collection", coll.root, "--from-parquet", f1, "--from-parquet", f2, "--model", MODEL,
              "--vector-column", "emb", "--key-column", "key", "--json", "--no-progress")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["imported"] == 10 and summary["source_rows"] == 14
    assert (summary["duplicates"], summary["unmatched"], summary["no_key"]) == (1, 2, 1)
    got = stored(coll.root)
    assert sorted(got) == sorted(keys[:10])
    for i, key in enumerate(keys[:10]):  # first wins: item-03 keeps the vector of row 0
        np.testing.assert_allclose(got[key], unit(vecs[i]), rtol=1e-6, atol=1e-6)
    assert np.allclose(np.linalg.norm(np.stack(list(got.values())), axis=1), 1.0, atol=1e-5)

    entry = Collection(coll.root).manifest["embeddings"][MODEL]
    assert entry["complete"] and entry["dim"] == DIM and entry["count"] == 10 and entry["normalised"] == "l2"
    assert entry["vectors"] == "imported" and entry["rows"] == 12
    (prov,) = entry["imported_from"]
    assert prov["kind"] == "parquet" and prov["files"] == [str(f1.resolve()), str(f2.resolve())]
    assert (prov["vector_column"], prov["key_column"], prov["match_field"]) == ("emb", "key", "id")
    assert prov["counts"] == {"source_rows": 14, "matched": 10, "duplicates": 1, "unmatched": 2, "no_key": 1,
                              "skipped": 0}

    # Running it again (the files after one flag, `--from-parquet FILE...`) imports nothing and keeps
    # every vector; provenance is replaced, not repeated.
    again = run("embed", "--collection", coll.root, "--model", MODEL, "--key-column", "key", "--json",
                "--no-progress", "--from-parquet", f1, f2)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["imported"] == 0 and json.loads(again.stdout)["already_done"] == 10
    assert sorted(stored(coll.root)) == sorted(keys[:10])
    entry = Collection(coll.root).manifest["embeddings"][MODEL]
    assert len(entry["imported_from"]) == 1 and entry["imported_from"][0]["files"] == prov["files"]
    # Files without --from-parquet are a one-line error.
    one_line_error(run("embed", "--collection", coll.root, "--model", MODEL, f1), "only --from-parquet takes several files")


def test_import_by_metadata_field_with_numeric_keys_and_fixed_size_vectors(tmp_path: Path) -> None:
    coll = make_collection(tmp_path / "c")
    vecs = source_vectors(12, seed=1)
    # fname-style keys, and a second source whose keys are integers matched against a text field.
    f = write_vectors(tmp_path / "v.parquet", vecs[::-1], [f"{1000 + i}_p{i}.jpg" for i in range(12)][::-1],
                      key_name="fname", vec_name="embedding", fixed=DIM)
    res = run("embed", "--collection", coll.root, "--from-parquet", f, "--model", MODEL,
              "--key-column", "fname", "--match-field", "fname", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "imported 12 vectors" in res.output and "'fname'" in res.output
    got = stored(coll.root)
    for i in range(12):
        np.testing.assert_allclose(got[f"item-{i:02d}"], unit(vecs[i]), atol=1e-6)
    prov = Collection(coll.root).manifest["embeddings"][MODEL]["imported_from"][-1]
    assert prov["match_field"] == "fname" and prov["vector_column"] == "embedding"

    c2 = Collection.create(tmp_path / "c2", [{"id": f"x{i}", "page": str(100 + i)} for i in range(4)],
                           source={"kind": "test"}, extra_fields=["page"])
    f2 = write_vectors(tmp_path / "v2.parquet", vecs[:4], [100, 101, 102, 103], key_name="page",
                       value_type=pa.float64())
    res = run("embed", "--collection", c2.root, "--from-parquet", f2, "--model", MODEL, "--key-column", "page",
              "--match-field", "page", "--no-progress")
    assert res.exit_code == 0, res.output
    assert sorted(stored(c2.root)) == ["x0", "x1", "x2", "x3"]

    # Two items naming the same picture file both get its vector.
    c3 = Collection.create(tmp_path / "c3", [{"id": f"y{i}", "fname": f"f{i % 3}.jpg"} for i in range(5)],
                           source={"kind": "test"}, extra_fields=["fname"])
    f3 = write_vectors(tmp_path / "v3.parquet", vecs[:3], ["f0.jpg", "f1.jpg", "f2.jpg"], key_name="fname")
    res = run("embed", "--collection", c3.root, "--from-parquet", f3, "--model", MODEL, "--key-column", "fname",
              "--match-field", "fname", "--json", "--no-progress")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["imported"] == 5 and json.loads(res.stdout)["duplicates"] == 0
    got = stored(c3.root)
    np.testing.assert_allclose(got["y3"], unit(vecs[0]), atol=1e-6)
    np.testing.assert_allclose(got["y4"], got["y1"])


def test_bad_vectors_are_skipped_and_listed(tmp_path: Path) -> None:
    coll = make_collection(tmp_path / "c", 8)
    good = source_vectors(8, seed=2)
    rows: list = [good[0], good[1].tolist() + [0.5], [float("nan")] + good[2][1:].tolist(),
                  [float("inf")] + good[3][1:].tolist(), np.zeros(DIM), None, good[6], good[7][:3]]
    f = write_vectors(tmp_path / "v.parquet", rows, [f"item-{i:02d}" for i in range(8)])
    res = run("embed", "--collection", coll.root, "--from-parquet", f, "--model", MODEL, "--key-column", "key",
              "--json", "--no-progress")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (summary["imported"], summary["skipped"], summary["total_skipped"]) == (2, 6, 6)
    with open(summary["skipped_path"], encoding="utf-8") as fh:
        listed = {r["id"]: r["reason"] for r in csv.DictReader(fh, delimiter="\t")}
    assert listed == {
        "item-01": f"vector has {DIM + 1} values, expected {DIM}",
        "item-02": "vector holds NaN or infinite values",
        "item-03": "vector holds NaN or infinite values",
        "item-04": "zero vector",
        "item-05": "no vector",
        "item-07": f"vector has 3 values, expected {DIM}",
    }
    got = stored(coll.root)
    assert sorted(got) == ["item-00", "item-06"]
    np.testing.assert_allclose(got["item-06"], unit(good[6]), atol=1e-6)


# -- by position ---------------------------------------------------------------------------------
def test_position_needs_verification(tmp_path: Path) -> None:
    coll = make_collection(tmp_path / "c", 6)
    vecs = source_vectors(6, seed=3)
    fnames = [f"{1000 + i}_p{i}.jpg" for i in range(6)]
    same = write_vectors(tmp_path / "same.parquet", vecs, fnames, key_name="fname")
    res = run("embed", "--collection", coll.root, "--from-parquet", same, "--model", MODEL, "--by-position",
              "--key-column", "fname", "--match-field", "fname", "--json", "--no-progress")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["match"].startswith("position, verified")
    got = stored(coll.root)
    for i in range(6):
        np.testing.assert_allclose(got[f"item-{i:02d}"], unit(vecs[i]), atol=1e-6)

    other = make_collection(tmp_path / "o", 6)
    swapped = write_vectors(tmp_path / "swapped.parquet", vecs, [fnames[i] for i in (0, 1, 3, 2, 4, 5)],
                            key_name="fname")
    line = one_line_error(run("embed", "--collection", other.root, "--from-parquet", swapped, "--model", MODEL,
                              "--by-position", "--key-column", "fname", "--match-field", "fname", "--no-progress"),
                          "source row 2", "1003_p3.jpg", "1002_p2.jpg")
    assert "do not line up" in line
    short = write_vectors(tmp_path / "short.parquet", vecs[:5], fnames[:5], key_name="fname")
    one_line_error(run("embed", "--collection", other.root, "--from-parquet", short, "--model", MODEL,
                       "--by-position", "--key-column", "fname", "--match-field", "fname"), "5 rows", "6 items")
    keyless = write_vectors(tmp_path / "keyless.parquet", vecs)
    one_line_error(run("embed", "--collection", other.root, "--from-parquet", keyless, "--model", MODEL,
                       "--by-position"), "cannot verify positions", "--key-column")
    one_line_error(run("embed", "--collection", other.root, "--from-parquet", keyless, "--model", MODEL),
                   "--key-column", "--by-position")
    assert not (EmbeddingStore(Collection(other.root), MODEL).chunk_dir).exists()


def _hub_folder(root: Path, n: int, vectors: np.ndarray, *, with_bad_image: int | None = None) -> Path:
    """A dataset folder laid out like the Hub one: an image config (no id column) and a
    ``siglip2_embeddings`` config, row-aligned, declared in the README's YAML header."""
    import datasets

    (root / "data").mkdir(parents=True)
    (root / "siglip2_embeddings").mkdir()
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*.parquet\n"
        "- config_name: siglip2_embeddings\n  data_files:\n  - split: train\n"
        "    path: siglip2_embeddings/train-*.parquet\n---\n",
        encoding="utf-8",
    )
    colours = sorted(COLOURS)
    pics = []
    for i in range(n):
        data = images.encode_stored(solid(colours[i % len(colours)], (16, 16)))
        pics.append({"bytes": b"not a picture" if i == with_bad_image else data, "path": None})
    feats = datasets.Features({"image": datasets.Image(), "title": datasets.Value("string")})
    ds = datasets.Dataset.from_dict({"image": pics, "title": [f"t{i}" for i in range(n)]}, features=feats)
    ds.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    half = n // 2
    for j, (lo, hi) in enumerate([(0, half), (half, n)]):
        write_vectors(root / "siglip2_embeddings" / f"train-0000{j}-of-00002.parquet", vectors[lo:hi],
                      vec_name="embedding", fixed=vectors.shape[1])
    return root


def test_hub_layout_by_position_from_ids_without_model_weights(tmp_path: Path) -> None:
    n = 6
    vecs = source_vectors(n, dim=1152, seed=4)
    hub = _hub_folder(tmp_path / "british-library-book-images", n, vecs, with_bad_image=2)
    ingest(tmp_path / "c", HubSource(str(hub), split="train"))  # row 2's picture is broken: not ingested
    coll = Collection(tmp_path / "c")
    assert coll.ids.tolist() == ["train-0", "train-1", "train-3", "train-4", "train-5"]
    res = run("embed", "--collection", coll.root, "--from-dataset", hub, "--by-position", "--json", "--no-progress")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["model"] == BL and summary["dim"] == 1152
    assert (summary["imported"], summary["unmatched"], summary["source_rows"]) == (5, 1, 6)
    got = stored(coll.root, BL)
    for i in (0, 1, 3, 4, 5):
        np.testing.assert_allclose(got[f"train-{i}"], unit(vecs[i]), atol=1e-6)
    prov = Collection(coll.root).manifest["embeddings"][BL]["imported_from"][-1]
    assert prov["kind"] == "dataset" and prov["config"] == "siglip2_embeddings" and prov["split"] == "train"
    assert prov["vector_column"] == "embedding" and prov["key_column"] is None
    assert "train-<source row>" in prov["match"]

    # A config that does not exist, and a split that does not: one line naming what there is.
    one_line_error(run("embed", "--collection", coll.root, "--from-dataset", hub, "--config", "clip_embeddings",
                       "--model", BL, "--by-position"), "no config 'clip_embeddings'",
                   "configs found: default, siglip2_embeddings")
    one_line_error(run("embed", "--collection", coll.root, "--from-dataset", hub, "--config", "siglip2_embeddings",
                       "--split", "test", "--model", BL, "--by-position"), "no split 'test'", "splits found: train")
    assert sorted(stored(coll.root, BL)) == sorted(got)  # nothing already imported was lost


def test_hub_layout_that_differs_is_one_line(tmp_path: Path) -> None:
    hub = _hub_folder(tmp_path / "british-library-book-images", 4, source_vectors(4, dim=768, seed=5))
    ingest(tmp_path / "c", HubSource(str(hub), split="train"))
    line = one_line_error(run("embed", "--collection", tmp_path / "c", "--from-dataset", hub, "--by-position"),
                          "768-dimensional", "expected 1152-dimensional")
    assert "embedding" in line
    assert not EmbeddingStore(Collection(tmp_path / "c"), BL).chunk_dir.exists()


def test_bl_hub_collection_takes_the_published_vectors_by_fname(tmp_path: Path) -> None:
    """Items ingested with --preset bl-hub: the siglip2_embeddings config is matched on fname with
    no option but the dataset, and the model is the one the config is documented to hold."""
    import datasets

    from .blhub import PLATES, write_bl_hub

    hub = write_bl_hub(tmp_path / "british-library-book-images")
    res = CliRunner().invoke(main, ["ingest", "hub", str(hub), "--preset", "bl-hub", "--config", "plates",
                                    "--collection", str(tmp_path / "c"), "--no-progress"])
    assert res.exit_code == 0, res.output
    coll = Collection(tmp_path / "c")
    fnames = [f for f, _ in PLATES]
    vecs = source_vectors(len(fnames), dim=1152, seed=8)
    # Published layout: fname and a column of vectors; one picture of the collection has none.
    ds = datasets.Dataset.from_dict({"fname": fnames[1:], "siglip2_embeddings": vecs[1:].tolist()})
    for old in (hub / "siglip2_embeddings").glob("*.parquet"):
        old.unlink()
    ds.to_parquet(str(hub / "siglip2_embeddings" / "train-00000-of-00001.parquet"))

    res = run("embed", "--collection", coll.root, "--from-dataset", hub, "--json", "--no-progress")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["model"] == BL and summary["dim"] == 1152
    assert "'fname'" in summary["match"]
    by_fname = {str(f): str(i) for f, i in zip(coll.dataset["fname"], coll.ids.tolist(), strict=True)}
    got = stored(coll.root, BL)
    expected = {by_fname[f]: unit(vecs[j]) for j, f in enumerate(fnames) if j and f in by_fname}
    assert sorted(got) == sorted(expected) and len(got) == summary["imported"] > 0
    for item, vec in expected.items():
        np.testing.assert_allclose(got[item], vec, atol=1e-6)


# -- resume --------------------------------------------------------------------------------------
_SLOW_RUNNER = """
import sys, time
from illustra.embedding_store import EmbeddingStore
write = EmbeddingStore.write_chunk
def slow(self, *a, **k):
    write(self, *a, **k)
    time.sleep(0.25)
EmbeddingStore.write_chunk = slow
from illustra.cli import main
main.main(args=sys.argv[1:], prog_name="illustra")
"""


def test_killed_import_resumes_every_vector_exactly_once(tmp_path: Path) -> None:
    n = 40
    coll = make_collection(tmp_path / "c", n)
    vecs = source_vectors(n, seed=6)
    order = np.random.default_rng(7).permutation(n)
    files = []
    for j in range(0, n, 4):  # ten files of four rows, each row its own chunk
        part = order[j : j + 4]
        files.append(write_vectors(tmp_path / "v" / f"part-{j:03d}.parquet", vecs[part],
                                   [f"item-{i:02d}" for i in part]))
    args = ["embed", "--collection", str(coll.root), "--from-parquet", str(tmp_path / "v"), "--model", MODEL,
            "--key-column", "key", "--chunk-rows", "1", "--no-progress"]
    chunk_dir = EmbeddingStore(coll, MODEL).chunk_dir
    kill_after_chunks([sys.executable, "-c", _SLOW_RUNNER, *args], chunk_dir, 3, cwd=REPO)

    store = EmbeddingStore(Collection(coll.root), MODEL)
    before, _ = store.done_rows()
    assert 0 < len(before) < n
    assert not (store.dir / "vectors.npy").exists()

    res = run(*args[:-1], "--json", "--no-progress")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["already_done"] == len(before) and summary["imported"] == n - len(before)
    assert summary["duplicates"] == 0
    # Every item has exactly one vector in the chunks, equal to its source.
    rows_in_chunks = np.concatenate([np.load(p)["rows"] for p in EmbeddingStore(Collection(coll.root), MODEL)
                                     .chunk_paths()])
    assert sorted(rows_in_chunks.tolist()) == list(range(n))
    got = stored(coll.root)
    assert len(got) == n
    for i in range(n):
        np.testing.assert_allclose(got[f"item-{i:02d}"], unit(vecs[i]), atol=1e-6)


# -- errors --------------------------------------------------------------------------------------
def test_bad_input_is_one_line_and_loses_nothing(tmp_path: Path) -> None:
    coll = make_collection(tmp_path / "c", 4)
    keys = [f"item-{i:02d}" for i in range(4)]
    good = write_vectors(tmp_path / "good.parquet", source_vectors(4), keys)
    base = ["embed", "--collection", coll.root, "--model", MODEL, "--no-progress"]
    assert run(*base, "--from-parquet", good, "--key-column", "key").exit_code == 0
    before = stored(coll.root)

    one_line_error(run(*base, "--from-parquet", good, "--vector-column", "vec", "--key-column", "key"),
                   "no column 'vec'", "emb (list<float>)", "key (string)")
    one_line_error(run(*base, "--from-parquet", good, "--vector-column", "key", "--key-column", "key"),
                   "holds string, not vectors")
    one_line_error(run(*base, "--from-parquet", good, "--key-column", "id"), "no column 'id'", "key (string)")
    one_line_error(run(*base, "--from-parquet", good, "--key-column", "key", "--match-field", "fnam"),
                   "no field 'fnam'", "fname")
    one_line_error(run(*base, "--from-parquet", tmp_path / "missing.parquet", "--key-column", "key"),
                   "does not exist")
    wide = write_vectors(tmp_path / "wide.parquet", source_vectors(4, dim=DIM + 4), keys)
    one_line_error(run(*base, "--from-parquet", wide, "--key-column", "key"),
                   f"{DIM + 4}-dimensional", f"already holds {DIM}-dimensional")
    other = write_vectors(tmp_path / "other.parquet", source_vectors(4), ["a", "b", "c", "d"])
    one_line_error(run(*base, "--from-parquet", other, "--key-column", "key"),
                   "no key of source column 'key'", "'a'", "'item-00'")
    one_line_error(run("embed", "--collection", coll.root, "--from-parquet", good, "--key-column", "key",
                       "--no-progress"), "--model")
    # The registered test model gives 16-dimensional vectors: 8-dimensional ones do not fit it.
    one_line_error(run("embed", "--collection", coll.root, "--from-parquet", good, "--key-column", "key",
                       "--model", "fake", "--no-progress"), "8-dimensional", "fake gives 16-dimensional")
    one_line_error(run("embed", "--collection", coll.root, "--key-column", "key"), "only apply with")
    after = stored(coll.root)
    assert sorted(after) == sorted(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


# -- searching what was imported -----------------------------------------------------------------
def test_imported_collection_searches_with_the_model_and_like_needs_none(
    tmp_path: Path, tiny_siglip_dir: Path
) -> None:
    from illustra.encoders import load_encoder
    from illustra.search.service import SearchService

    model_dir = tmp_path / "siglip-model"
    shutil.copytree(tiny_siglip_dir, model_dir)
    enc = load_encoder(str(model_dir))
    coll = make_collection(tmp_path / "c", 8, with_images=True)
    # Vectors as the model would make them: its image tower on each item's picture.
    pics = [Image.open(__import__("io").BytesIO(Collection(coll.root).image_bytes(r))) for r in range(8)]
    vecs = enc.embed_images([p.convert("RGB") for p in pics])
    f = write_vectors(tmp_path / "v.parquet", vecs, [f"item-{i:02d}" for i in range(8)])
    res = run("embed", "--collection", coll.root, "--from-parquet", f, "--model", model_dir, "--key-column", "key",
              "--no-progress")
    assert res.exit_code == 0, res.output
    assert run("index", "--collection", coll.root).exit_code == 0

    svc = SearchService(coll.root)
    assert svc.model == str(model_dir)
    resp = svc.search_text("a red picture of a ship", k=3)
    assert len(resp.results) == 3
    assert svc.encoder.name == str(model_dir) and svc.encoder.supports_text
    # An upload is embedded with the image tower: the item's own picture comes back first.
    by_picture = svc.search_image(pics[5].convert("RGB"), k=1)
    assert by_picture.results[0].id == "item-05"

    # "More like this" uses stored vectors only: it works with the model gone.
    os.rename(model_dir, tmp_path / "elsewhere")
    res = run("search", "--collection", coll.root, "--like", "item-03", "-k", "3")
    assert res.exit_code == 0, res.output
    assert "item-" in res.output
