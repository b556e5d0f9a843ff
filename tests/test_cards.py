"""Collection and model cards: ``illustra card``, ``render_about`` and the About page."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from starlette.testclient import TestClient

from illustra import cards
from illustra.api import create_app
from illustra.cli import main
from illustra.collection import Collection
from illustra.eval import taxonomy as tx
from illustra.index import build_index

from .searchkit import build_colour_collection


@pytest.fixture
def coll(tmp_path: Path) -> Collection:
    c = build_colour_collection(tmp_path / "c", n_per_colour=3, metadata_only=2)
    build_index(c, "fake")
    return Collection(tmp_path / "c")


def _evaluate(coll: Collection) -> dict:
    labels = {f"{c}/{j:02d}": c for c in ("red", "green", "blue") for j in range(3)}
    result = tx.evaluate_taxonomy(coll, labels, model="fake", k=3)
    tx.save_result(coll, result)
    return result


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_card_without_evaluation_says_so(coll):
    md = cards.card_markdown(coll)
    meta = _front_matter(md)
    assert meta["pretty_name"] == "c" and meta["language"] == ["en"]
    assert meta["size_categories"] == ["n<1K"] and meta["license"] == "other"
    assert "zero-shot-image-classification" in meta["task_categories"]
    for heading in (
        "# Dataset Card for c",
        "### Dataset Sources",
        "### Licensing Information",
        "## Dataset Structure",
        "### Out-of-Scope Use",
        "### Known gaps",
        "## Model card: fake",
        "### Training data (as its makers describe it)",
        "### In-domain evaluation",
        "### Out-of-scope uses",
        "## Guardrails",
    ):
        assert heading in md, heading
    assert cards.NO_EVALUATION in md
    assert "- **test**: 26 items" in md  # 24 plates + 2 catalogue-only entries
    assert "2 of 26 items have no image" in md
    assert "- **Date range (item years):** 1700–1823" in md
    assert "Not recorded: Illustra has no description of this model." in md
    assert "Surveillance and facial recognition, always." in md


def test_card_with_evaluation_reports_figures_and_date(coll):
    result = _evaluate(coll)
    md = cards.card_markdown(coll)
    assert cards.NO_EVALUATION not in md
    assert f"In-domain evaluation measured **{result['measured']}** on 9 labelled items in 3 classes" in md
    assert "Zero-shot classification accuracy: **100.0%**" in md
    assert "| red | 3 | 1.000 | 1.000 | 1.000 | 1.000 |" in md


def test_model_facts_follow_the_makers():
    clip = cards.model_facts("openai/clip-vit-base-patch32")
    assert clip["known"] and "400 million" in clip["training_data"]
    assert any("fixed class taxonomy" in x for x in clip["out_of_scope"])
    assert any("facial recognition" in x for x in clip["out_of_scope"])
    laion = cards.model_facts("laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    assert "LAION-2B" in laion["training_data"]
    lite = cards.model_facts("lite")
    assert "ImageNet" in lite["training_data"] and lite["known"]
    assert not cards.model_facts("someone/else")["known"]


def test_render_about(coll):
    about = cards.render_about(coll)
    assert about["has_evaluation"] is False
    (model,) = about["models"]
    assert model["name"] == "fake" and model["evaluation"] is None
    assert model["evaluation_statement"] == cards.NO_EVALUATION
    assert about["collection"]["items"] == 26 and about["collection"]["date_range"] == {
        "from": 1700,
        "to": 1823,
    }
    result = _evaluate(coll)
    about = cards.render_about(coll)
    ev = about["models"][0]["evaluation"]
    assert about["has_evaluation"] and ev["measured"] == result["measured"] and ev["accuracy"] == 1.0
    assert [r["label"] for r in ev["per_class"]] == ["blue", "green", "red"]
    assert ev["figure"].startswith("data:image/png;base64,")
    assert (coll.root / "eval" / "taxonomy-fake-per-class.png").is_file()  # cached for the next request


def test_card_command(coll, tmp_path):
    res = CliRunner().invoke(main, ["card", "--collection", str(coll.root)])
    assert res.exit_code == 0, res.output
    path = coll.root / "README.md"
    assert f"card written to {path}" in res.stderr and path.read_text().startswith("---\n")
    out = tmp_path / "cards" / "card.md"
    assert (
        CliRunner().invoke(main, ["card", "--collection", str(coll.root), "--output", str(out)]).exit_code
        == 0
    )
    assert "## Model card: fake" in out.read_text()
    printed = CliRunner().invoke(main, ["card", "--collection", str(coll.root), "--output", "-"])
    assert printed.stdout.startswith("---\n")
    missing = CliRunner().invoke(main, ["card", "--collection", str(tmp_path / "nope")])
    assert missing.exit_code == 3 and "does not exist" in missing.stderr


def test_about_page_shows_cards(coll):
    with TestClient(create_app(coll.root)) as client:
        page = client.get("/about").text
        assert "Model card:" in page and "data-no-evaluation" in page
        assert "No in-domain evaluation has been run" in page
        result = _evaluate(coll)
        page = client.get("/about").text
        assert "data-no-evaluation" not in page
        assert f'datetime="{result["measured"]}"' in page and "<strong>100.0%</strong>" in page
        assert 'class="eval-figure" src="data:image/png;base64,' in page
