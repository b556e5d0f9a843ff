"""``illustra index``: build the vector index (FAISS, or a Milvus collection) and, where the collection
has text, the text index."""

from __future__ import annotations

import click

from .common import collection_option, model_option, notice


@click.command("index")
@collection_option
@model_option
@click.option(
    "--kind",
    type=click.Choice(["auto", "flat", "hnsw", "ivfsq", "ivfpq"]),
    default="auto",
    show_default=True,
    help="Index type: exact 'flat' for small collections, approximate 'hnsw', 'ivfsq' or 'ivfpq' for "
    "large ones (auto: by size and memory budget).",
)
@click.option(
    "--memory-budget",
    default=None,
    metavar="SIZE",
    help="Memory the vector index may hold, e.g. 2GB or 512MB (default: the index_memory_budget "
    "setting); tighter budgets get quantised vectors, re-ranked exactly from disk.",
)
@click.option(
    "--backend",
    type=click.Choice(["faiss", "milvus"]),
    default=None,
    help="Where vectors are searched: a FAISS index in the collection (default), or a Milvus collection "
    "(the default with --milvus-uri); search and serve then use it without further flags.",
)
@click.option(
    "--milvus-uri",
    default=None,
    metavar="PATH.db|http://HOST:19530",
    help="Milvus Lite file (embedded) or Milvus server (default: index/milvus.db in the collection).",
)
@click.option(
    "--milvus-collection",
    default=None,
    metavar="NAME",
    help="Name of the Milvus collection (default: from the collection's folder and the model); "
    "a picture-only companion model gets NAME_<model>.",
)
@click.option(
    "--text-semantic/--no-text-semantic",
    default=None,
    help="Also embed the catalogue text with a sentence model for the text index "
    "(default: for collections up to the text_semantic_auto_max setting).",
)
def index_cmd(
    collection_dir: str,
    model: str | None,
    kind: str,
    memory_budget: str | None,
    backend: str | None,
    milvus_uri: str | None,
    milvus_collection: str | None,
    text_semantic: bool | None,
) -> None:
    """Build the search index for an embedded collection."""
    from pathlib import Path

    from .. import settings

    if memory_budget is not None:
        budget = settings.parse_size(memory_budget)  # a bad size: BadInput, one line, status 2
        settings.use(settings.current().replace(index_memory_budget=budget))

    from ..pipeline import Pipeline, Stage, TextIndexStage, VectorIndexStage

    vectors: Stage = VectorIndexStage([model] if model else None, None if kind == "auto" else kind, notify=notice)
    if backend == "milvus" or (backend is None and (milvus_uri or milvus_collection)):
        from ..milvus_build import MilvusIndexStage

        vectors = MilvusIndexStage([model] if model else None, milvus_uri, milvus_collection, kind, notify=notice)
    elif milvus_uri or milvus_collection:
        raise click.UsageError("--milvus-uri and --milvus-collection go with --backend milvus")
    stages: list[Stage] = [vectors, TextIndexStage(text_semantic, notify=notice)]
    Pipeline(stages).run(Path(collection_dir), force=True)


commands = [index_cmd]
