"""Taxonomy evaluation: metrics against hand-computed cases, then ``illustra eval --taxonomy``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from illustra.cli import main
from illustra.collection import Collection
from illustra.encoders import register_encoder
from illustra.errors import BadInput
from illustra.eval import taxonomy as tx
from illustra.eval.metrics import ranked_average_precision, ranked_precision

from .fakes import FakeEncoder
from .searchkit import build_colour_collection

LABELS = ["a", "b", "c"]


# -- metrics, by hand ----------------------------------------------------------------------------
def test_confusion_and_per_class_scores_match_hand_computation():
    # true:  a a a b b c
    # pred:  a a b b c c
    y_true = ["a", "a", "a", "b", "b", "c"]
    y_pred = ["a", "a", "b", "b", "c", "c"]
    cm = tx.confusion_matrix(y_true, y_pred, LABELS)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    s = tx.per_class_scores(cm, LABELS)
    # a: tp 2, predicted 2, actual 3 -> P 1, R 2/3, F1 = 2*(2/3)/(5/3) = 0.8
    assert s["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "n": 3})
    # b: tp 1, predicted 2, actual 2 -> P .5, R .5, F1 .5
    assert s["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "n": 2})
    # c: tp 1, predicted 2, actual 1 -> P .5, R 1, F1 = 1/1.5
    assert s["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "n": 1})
    assert tx.accuracy(cm) == pytest.approx(4 / 6)
    assert tx.macro_average(s, "f1") == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_never_predicted_and_empty_classes():
    cm = tx.confusion_matrix(["a", "a", "b"], ["b", "b", "b"], LABELS)
    s = tx.per_class_scores(cm, LABELS)
    assert s["a"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n": 2}  # never predicted
    assert s["b"]["precision"] == pytest.approx(1 / 3) and s["b"]["recall"] == 1.0
    assert s["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n": 0}  # no items
    # The macro average leaves out classes with no items.
    assert tx.macro_average(s, "recall") == pytest.approx(0.5)
    rep = tx.classification_report(["a", "a", "b"], ["b", "b", "b"], LABELS)
    assert rep["confusion"] == {
        "a": {"a": 0, "b": 2, "c": 0},
        "b": {"a": 0, "b": 1, "c": 0},
        "c": {"a": 0, "b": 0, "c": 0},
    }
    with pytest.raises(ValueError, match="not in the label set"):
        tx.confusion_matrix(["a"], ["z"], LABELS)


def test_ranking_metrics_by_hand():
    ranking = [True, False, True, False]
    assert ranked_precision(ranking, 1) == 1.0
    assert ranked_precision(ranking, 2) == 0.5
    assert ranked_precision(ranking, 10) == pytest.approx(0.2)  # a short ranking is not excused
    assert ranked_average_precision(ranking) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert ranked_average_precision([False, False]) == 0.0
    curve = tx.pr_curve(ranking)
    assert curve["recall"] == [0.5, 0.5, 1.0, 1.0]
    assert curve["precision"] == pytest.approx([1.0, 0.5, 2 / 3, 0.5], abs=1e-4)


def test_retrieval_report_ranks_by_label_score():
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.95], [0.1, 0.5]], dtype=np.float32)
    rep = tx.retrieval_report(scores, ["x", "y", "x", "y"], ["x", "y"], k=2)
    # label x ranks items 0,1,2,3 -> x,y,x,y: P@2 = .5, AP = (1 + 2/3)/2
    assert rep["x"]["p_at_k"] == 0.5 and rep["x"]["ap"] == pytest.approx(5 / 6)
    # label y ranks items 2,3,1,0 -> x,y,y,x: P@2 = .5, AP = (1/2 + 2/3)/2
    assert rep["y"]["p_at_k"] == 0.5 and rep["y"]["ap"] == pytest.approx(7 / 12)


# -- input files ---------------------------------------------------------------------------------
def test_label_and_taxonomy_files(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\nred/00,red\nred/01,red\nblue/00,blue\n", encoding="utf-8")
    assert tx.load_labels(labels) == {"red/00": "red", "red/01": "red", "blue/00": "blue"}
    bad = tmp_path / "bad.csv"
    bad.write_text("item,class\nx,y\n", encoding="utf-8")
    with pytest.raises(BadInput, match="header line 'id,label'"):
        tx.load_labels(bad)
    bad.write_text("id,label\nx,red\nx,blue\n", encoding="utf-8")
    with pytest.raises(BadInput, match="two labels"):
        tx.load_labels(bad)
    tax = tmp_path / "tax.csv"
    tax.write_text("label,prompt\nred,a red plate\nred,something red\nblue,\n", encoding="utf-8")
    t = tx.load_taxonomy(tax)
    assert t.labels == ["red", "blue"]
    assert t.prompts_for("red") == ["a red plate", "something red"]
    assert t.prompts_for("blue") == ["a picture of blue", "an illustration of blue", "a drawing of blue"]
    js = tmp_path / "tax.json"
    js.write_text(json.dumps({"labels": {"red": ["red"], "blue": []}}), encoding="utf-8")
    assert tx.load_taxonomy(js).labels == ["red", "blue"]
    with pytest.raises(BadInput, match="not in the taxonomy"):
        tx.check_labels({"x": "green"}, t)


# -- on a collection -----------------------------------------------------------------------------
class OtherFake(FakeEncoder):
    """Same vectors, another name: a model the collection was never embedded with."""

    name = "fake-other"


@pytest.fixture
def coll(tmp_path):
    register_encoder("fake-other", OtherFake)
    return build_colour_collection(tmp_path / "c", n_per_colour=3, metadata_only=1)


@pytest.fixture
def files(tmp_path):
    labels = tmp_path / "labels.csv"
    rows = ["id,label"]
    for colour in ("red", "green", "blue", "yellow"):
        rows += [f"{colour}/{j:02d},{colour}" for j in range(3)]
    # One mislabelled item (a red plate called blue), one unknown id, one item without an image.
    rows[1] = "red/00,blue"
    rows += ["red/77,red", "text-only/0,green"]
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    tax = tmp_path / "tax.csv"
    tax.write_text(
        "label,prompt\n" + "".join(f"{c},a {c} plate\n" for c in ("red", "green", "blue", "yellow")),
        encoding="utf-8",
    )
    return labels, tax


def test_evaluate_on_a_collection(coll, files):
    labels, tax = files
    r = tx.evaluate_taxonomy(coll, tx.load_labels(labels), tx.load_taxonomy(tax), model="fake", k=3)
    assert r["n_items"] == 12
    assert r["skipped"]["missing_ids"] == ["red/77"] and r["skipped"]["no_image_ids"] == ["text-only/0"]
    assert r["vectors"] == "stored embeddings"
    # 11 of 12 right: the red plate labelled blue is (correctly) seen as red.
    assert r["accuracy"] == pytest.approx(11 / 12)
    assert r["confusion"]["blue"]["red"] == 1 and r["confusion"]["red"]["red"] == 2
    assert r["per_class"]["red"]["precision"] == pytest.approx(2 / 3)
    assert r["per_class"]["blue"]["recall"] == pytest.approx(3 / 4)
    assert r["per_class"]["green"] == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "f1": 1.0, "n": 3, "p_at_k": 1.0, "ap": 1.0}
    )
    assert r["chance_accuracy"] == pytest.approx(4 / 12)
    assert r["measured"] and r["model"] == "fake"


def test_unembedded_model_is_embedded_on_the_fly(coll, files):
    labels, tax = files
    r = tx.evaluate_taxonomy(coll, tx.load_labels(labels), tx.load_taxonomy(tax), model="fake-other")
    assert r["vectors"] == "embedded now" and r["accuracy"] == pytest.approx(11 / 12)
    with pytest.raises(BadInput, match="none of the"):
        tx.evaluate_taxonomy(coll, {"nope/1": "red", "nope/2": "blue"}, model="fake")


def test_eval_cli_json_report_and_stored_result(coll, files, tmp_path):
    labels, tax = files
    res = CliRunner().invoke(
        main,
        ["eval", "--collection", str(coll.root), "--taxonomy", str(labels), "--labels", str(tax), "--json"],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {"accuracy", "per_class", "confusion"} <= set(doc)
    assert doc["accuracy"] == pytest.approx(11 / 12) and doc["k"] == 10
    assert set(doc["per_class"]["red"]) >= {"precision", "recall", "f1", "n"}
    assert "1 labelled ids are not in the collection" in res.stderr
    stored = coll.root / "eval" / "taxonomy-fake.json"
    assert json.loads(stored.read_text())["accuracy"] == doc["accuracy"]
    html = (coll.root / "eval" / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3  # per-class bars, confusion, PR curves
    assert "91.7%" in html
    manifest = Collection(coll.root).manifest
    assert manifest["evaluations"]["taxonomy:fake"]["accuracy"] == pytest.approx(0.9167, abs=1e-4)


def test_eval_cli_several_models_ranked(coll, files, tmp_path):
    labels, tax = files
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main,
        [
            "eval",
            "--collection",
            str(coll.root),
            "--taxonomy",
            str(labels),
            "--labels",
            str(tax),
            "--models",
            "fake,fake-other",
            "--output",
            str(out),
            "--no-save",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc["models"]) == {"fake", "fake-other"}
    assert [r["rank"] for r in doc["ranking"]] == [1, 2]
    assert (out / "report.html").is_file() and (out / "taxonomy-fake-other.json").is_file()
    assert "Ranking" in (out / "report.html").read_text()
    assert not (coll.root / "eval").exists()  # --no-save leaves the collection alone
    text = CliRunner().invoke(
        main, ["eval", "--collection", str(coll.root), "--taxonomy", str(labels), "--no-save"]
    )
    assert text.exit_code == 0 and "accuracy 0.917" in text.stdout


def test_eval_cli_errors(coll, tmp_path):
    res = CliRunner().invoke(main, ["eval", "--collection", str(coll.root)])
    assert res.exit_code == 2 and "--queries" in res.output and "--taxonomy" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("nope\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["eval", "--collection", str(coll.root), "--taxonomy", str(bad)])
    assert res.exit_code == 2 and "error: " in res.stderr and "id,label" in res.stderr


def test_labels_from_a_metadata_field(coll, tmp_path):
    labels = tx.labels_from_field(coll, "place", ["London", "Paris"], per_label=5)
    assert sorted(labels.values()) == ["London"] * 5 + ["Paris"] * 5
    assert all(coll.metadata(coll.row_of(i))["place"] == lab for i, lab in labels.items())
    assert "text-only/0" not in labels  # items without an image are never labelled
    assert tx.labels_from_field(coll, "place", ["London"], per_label=5) == {
        k: v for k, v in labels.items() if v == "London"
    }  # the same pick every time
    out = tmp_path / "l.csv"
    tx.write_labels(labels, out)
    assert tx.load_labels(out) == labels
    with pytest.raises(BadInput, match="no field 'colour'"):
        tx.labels_from_field(coll, "colour", ["red"])
