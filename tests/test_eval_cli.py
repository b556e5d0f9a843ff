from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from illustra.cli import main
from illustra.collection import Collection
from illustra.eval.retrieval import load_results
from illustra.index import build_index

from .searchkit import build_colour_collection

METRICS = {"map", "p@10", "r@10", "ndcg@10"}


@pytest.fixture
def coll_dir(tmp_path):
    root = tmp_path / "c"
    build_index(build_colour_collection(root), "fake")
    return root


@pytest.fixture
def queries(tmp_path):
    path = tmp_path / "q.jsonl"
    lines = [
        # Every red plate, plus an id the collection does not hold (ignored).
        {"query": "red", "relevant_ids": [f"red/{i:02d}" for i in range(6)] + ["red/99"]},
        {"query": "blue", "relevant_ids": ["blue/00", "blue/01", "green/00"]},
        {"query": "a unicorn", "relevant_ids": ["nowhere/1"]},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_eval_json_shape_and_values(coll_dir, queries):
    res = _run("eval", "--collection", str(coll_dir), "--queries", str(queries), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc["metrics"]) == METRICS and set(doc["random"]) == METRICS
    assert doc["model"] == "fake" and doc["k"] == 100 and doc["n_queries"] == 2
    red, blue = doc["queries"]
    assert {"query", "ap", "p@10", "r@10", "ndcg@10", "n_relevant"} <= set(red)
    assert red["query"] == "red" and red["n_relevant"] == 6
    assert red["ap"] == 1.0 and red["ndcg@10"] == 1.0 and red["p@10"] == pytest.approx(0.6)
    assert blue["n_relevant"] == 3 and blue["r@10"] == pytest.approx(2 / 3)
    assert [e["query"] for e in doc["excluded"]] == ["a unicorn"]
    assert doc["metrics"]["map"] > 2 * doc["random"]["map"]
    # Deterministic: a second run gives the same figures.
    again = json.loads(
        _run("eval", "--collection", str(coll_dir), "--queries", str(queries), "--json").stdout
    )
    assert {k: v for k, v in again.items() if k != "date"} == {k: v for k, v in doc.items() if k != "date"}


def test_eval_saves_result_for_the_web_app(coll_dir, queries):
    res = _run("eval", "--collection", str(coll_dir), "--queries", str(queries), "-k", "20")
    assert res.exit_code == 0, res.output
    assert (coll_dir / "eval" / "retrieval-fake.json").is_file()
    [saved] = load_results(Collection(coll_dir))
    assert saved["k"] == 20 and saved["date"] and set(saved["metrics"]) == METRICS
    # The human table shows each query and the random baseline.
    assert "red" in res.stdout and "random ranking" in res.stdout and "excluded: 'a unicorn'" in res.stdout
    res = _run("eval", "--collection", str(coll_dir), "--queries", str(queries), "--no-save", "--json")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["k"] == 100
    assert load_results(Collection(coll_dir))[0]["k"] == 20  # not overwritten


def test_eval_errors_are_one_line(coll_dir, tmp_path):
    res = _run("eval", "--collection", str(coll_dir), "--queries", str(tmp_path / "none.jsonl"))
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("error:") and len(res.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "red"}\n', encoding="utf-8")
    res = _run("eval", "--collection", str(coll_dir), "--queries", str(bad))
    assert res.exit_code == 2 and "bad.jsonl:1" in res.stderr
    res = _run("eval", "--collection", str(tmp_path / "absent"), "--queries", str(bad))
    assert res.exit_code == 3 and "does not exist" in res.stderr
