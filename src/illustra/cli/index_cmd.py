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
def index_cmd(collection_dir: str, model: str | None, kind: str) -> None:
    """Build the search index for an embedded collection."""
    from ..collection import Collection
    from ..embedding_store import embedded_models, pick_model
    from ..index import build_index

    coll = Collection(collection_dir)
    models = [pick_model(coll, model)] if model else embedded_models(coll)
    if not models:
        pick_model(coll, None)  # raises NotEmbedded with the standard message
    for m in models:
        info = build_index(coll, m, None if kind == "auto" else kind)
        notice(f"indexed {info['count']} vectors for {m} ({info['kind']}, {info['build_seconds']} s)")
    for hook in INDEX_HOOKS:
        hook(coll, notice)


# Other indexes built by `illustra index` (e.g. the metadata text index) register here.
INDEX_HOOKS: list = []

commands = [index_cmd]
