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
    from ..collection import Collection
    from ..embedding_store import embedded_models, pick_model
    from ..index import build_index

    coll = Collection(collection_dir)
    models = [pick_model(coll, model)] if model else embedded_models(coll)
    if not models:
        from ..textindex import has_text_metadata

        if not has_text_metadata(coll):
            pick_model(coll, None)  # raises NotEmbedded with the standard message
        notice("no pictures are embedded yet: building the catalogue text index only")
    for m in models:
        info = build_index(coll, m, None if kind == "auto" else kind)
        notice(f"indexed {info['count']} vectors for {m} ({info['kind']}, {info['build_seconds']} s)")
    from ..textindex import index_hook

    index_hook(coll, notice, semantic=text_semantic)

commands = [index_cmd]
