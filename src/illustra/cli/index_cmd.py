"""``illustra index``: build the FAISS index (and, where the collection has text, the text index)."""

from __future__ import annotations

import click

from .common import collection_option, model_option, notice


@click.command("index")
@collection_option
@model_option
@click.option(
    "--kind",
    type=click.Choice(["auto", "flat", "hnsw", "ivfpq"]),
    default="auto",
    show_default=True,
    help="Index type: exact 'flat' for small collections, approximate 'hnsw' or 'ivfpq' for large ones.",
)
@click.option(
    "--text-semantic/--no-text-semantic",
    default=None,
    help="Also embed the catalogue text with a sentence model for the text index "
    "(default: for collections up to the text_semantic_auto_max setting).",
)
def index_cmd(collection_dir: str, model: str | None, kind: str, text_semantic: bool | None) -> None:
    """Build the search index for an embedded collection."""
    from pathlib import Path

    from ..pipeline import Pipeline, Stage, TextIndexStage, VectorIndexStage

    stages: list[Stage] = [
        VectorIndexStage([model] if model else None, None if kind == "auto" else kind, notify=notice),
        TextIndexStage(text_semantic, notify=notice),
    ]
    Pipeline(stages).run(Path(collection_dir), force=True)


commands = [index_cmd]
