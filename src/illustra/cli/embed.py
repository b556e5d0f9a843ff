"""``illustra embed``: embed a collection's images with a model, or import precomputed vectors
as a model's embeddings (both resumable)."""

from __future__ import annotations

from typing import Any

import click

from .. import settings
from ..errors import BadInput
from .common import collection_option, echo_json, notice


@click.command("embed")
@collection_option
@click.option(
    "--model",
    default=None,
    help="'lite', a Hugging Face CLIP/SigLIP id, or a local model directory "
    f"[default: {settings.SETTINGS['model'].default}, or 'lite' when that cannot be loaded].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Images per model call [setting batch_size].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Decode threads [setting workers]; with --engine ray, encoder actors "
    "[default: one per --gpus-per-worker GPUs of the cluster, else 1].",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Rows per resumable chunk [setting embed_chunk_rows; 8192 source rows when importing vectors].",
)
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Embed in this process, or as a Ray Data pipeline on a Ray cluster or a Ray instance "
    "started here (pip install 'illustra[ray]').",
)
@click.option(
    "--ray-address",
    default=None,
    help="With --engine ray: auto (the cluster this machine belongs to), ray://HOST:PORT (Ray Client) "
    "or HOST:PORT [default: $RAY_ADDRESS, else a Ray instance started here].",
)
@click.option(
    "--gpus-per-worker",
    type=click.FloatRange(min=0),
    default=None,
    help="With --engine ray: GPUs each encoder actor holds [default: 0].",
)
@click.option(
    "--similarity/--no-similarity",
    default=True,
    show_default=True,
    help="Also embed the model's picture-only space for 'more like this' and search by picture, "
    "where it has one (lite: lite-visual).",
)
@click.option(
    "--from-parquet",
    "from_parquet",
    multiple=True,
    type=click.Path(path_type=str),
    help="Import vectors from these parquet files (or folders of them) instead of embedding pictures: "
    "--from-parquet FILE... (or the flag repeated). Needs --model (the model that made them) and --key-column or --by-position.",
)
@click.option(
    "--from-dataset",
    "from_dataset",
    default=None,
    help="Import vectors from a Hugging Face dataset (Hub name or local folder), e.g. "
    "biglam/british-library-book-images with --config siglip2_embeddings.",
)
@click.option("--config", "dataset_config", default=None, help="Configuration of --from-dataset.")
@click.option("--split", "dataset_split", default="train", show_default=True, help="Split of --from-dataset.")
@click.option(
    "--vector-column",
    default=None,
    help="Source column holding the vectors [default: the only list-of-numbers column].",
)
@click.option("--key-column", default=None, help="Source column naming each vector's item.")
@click.option(
    "--match-field",
    default=None,
    help="Collection field the --key-column values are matched against [default: the item id], e.g. fname.",
)
@click.option(
    "--by-position",
    is_flag=True,
    help="Match source row i to item i, once verified: with --key-column its values must equal the "
    "collection's (--match-field or id) row for row; without it the items must come from the same "
    "dataset and split, ingested without an id column.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.argument("more_parquet", nargs=-1, type=click.Path(path_type=str), metavar="[FILE]...")
def embed_cmd(
    collection_dir: str,
    model: str | None,
    batch_size: int | None,
    workers: int | None,
    chunk_rows: int | None,
    no_progress: bool,
    engine: str,
    ray_address: str | None,
    gpus_per_worker: float | None,
    similarity: bool,
    from_parquet: tuple[str, ...],
    from_dataset: str | None,
    dataset_config: str | None,
    dataset_split: str,
    vector_column: str | None,
    key_column: str | None,
    match_field: str | None,
    by_position: bool,
    as_json: bool,
    more_parquet: tuple[str, ...],
) -> None:
    """Embed every image of a collection not yet embedded with the model.

    Interrupt at any time and run the same command again: finished chunks are kept. Images that
    cannot be decoded are skipped and listed in embeddings/<model>/skipped.tsv.

    With --from-parquet or --from-dataset, precomputed vectors are imported as the model's
    embeddings instead (no picture is embedded, the model's weights are not needed); vectors
    that cannot be used are listed the same way.
    """
    from pathlib import Path

    from ..collection import Collection

    if more_parquet:
        # `--from-parquet a.parquet b.parquet ...`: the files after the first arrive as arguments.
        if not from_parquet:
            raise BadInput(f"unexpected argument {more_parquet[0]!r}: only --from-parquet takes several files")
        from_parquet = (*from_parquet, *more_parquet)
    if engine != "ray" and (ray_address or gpus_per_worker is not None):
        raise BadInput("--ray-address and --gpus-per-worker only apply with --engine ray")
    if engine == "ray" and (from_parquet or from_dataset):
        raise BadInput("--engine ray embeds pictures; importing vectors needs no engine")
    if from_parquet or from_dataset:
        _import(
            collection_dir,
            model,
            from_parquet,
            from_dataset,
            dataset_config,
            dataset_split,
            vector_column,
            key_column,
            match_field,
            by_position,
            chunk_rows,
            not no_progress,
            as_json,
        )
        return
    ignored = [
        name
        for name, value in (
            ("--config", dataset_config),
            ("--vector-column", vector_column),
            ("--key-column", key_column),
            ("--match-field", match_field),
        )
        if value
    ] + (["--by-position"] if by_position else [])
    if ignored:
        raise BadInput(f"{', '.join(ignored)} only apply with --from-parquet or --from-dataset")
    from ..pipeline import CompanionStage, EmbedOptions, EmbedStage, Pipeline, Stage

    Collection(collection_dir)  # a missing collection is a one-line error before any model loads
    ray_engine = None
    if engine == "ray":
        from ..embed_ray import RayEngine

        ray_engine = RayEngine(ray_address, workers, gpus_per_worker or 0.0)
    try:
        if ray_engine is not None:
            ray_engine.check()  # Ray installed and the cluster answering, before any model loads
        embed = EmbedStage(model, EmbedOptions(batch_size, workers, chunk_rows, ray_engine), notify=notice)
        embed.encoder()
        stages: list[Stage] = [embed]
        if similarity and CompanionStage(embed).companion():
            stages.append(CompanionStage(embed))
        run = Pipeline(stages).run(Path(collection_dir), progress=not no_progress, force=True)
    finally:
        if ray_engine is not None:
            ray_engine.close()  # one Ray session serves the model and its companion
    summaries = [s.result for s in run.stages]
    if as_json:
        docs = [s.as_dict() for s in summaries]
        echo_json(docs[0] if len(docs) == 1 else {**docs[0], "similarity": docs[1]})
        return
    for summary in summaries:
        _report(summary)


def _import(
    collection_dir: str,
    model: str | None,
    from_parquet: tuple[str, ...],
    from_dataset: str | None,
    dataset_config: str | None,
    dataset_split: str,
    vector_column: str | None,
    key_column: str | None,
    match_field: str | None,
    by_position: bool,
    chunk_rows: int | None,
    progress: bool,
    as_json: bool,
) -> None:
    from ..collection import Collection
    from ..vector_import import DatasetVectors, ParquetVectors, VectorSource, import_vectors, known_layout

    if from_parquet and from_dataset:
        raise BadInput("give --from-parquet or --from-dataset, not both")
    collection = Collection(collection_dir)  # a missing collection is a one-line error before any source loads
    layout = known_layout(from_dataset, dataset_config) if from_dataset else None
    if layout is not None and dataset_config is None:
        dataset_config = layout.config  # the config that holds the published vectors
    if model is None:
        if layout is None:
            raise BadInput("give --model: the model the imported vectors were made with")
        model = layout.model
    source: VectorSource
    if from_dataset:
        source = DatasetVectors(from_dataset, dataset_config, dataset_split)
    else:
        source = ParquetVectors(from_parquet)
    summary = import_vectors(
        collection,
        source,
        model=model,
        vector_column=vector_column,
        key_column=key_column,
        match_field=match_field,
        by_position=by_position,
        batch_rows=chunk_rows,
        progress=progress,
        notify=notice,
    )
    if as_json:
        echo_json(summary.as_dict())
        return
    parts = [f"imported {summary.imported} vectors for {summary.model} in {summary.seconds:.1f} s"]
    parts.append(f"{summary.source_rows} source rows read, matched by {summary.match}")
    if summary.already_done:
        parts.append(f"{summary.already_done} already done")
    if summary.skipped:
        parts.append(f"{summary.skipped} skipped (see {summary.skipped_path})")
    if summary.duplicates:
        parts.append(f"{summary.duplicates} duplicate keys (the first kept)")
    if summary.unmatched:
        parts.append(f"{summary.unmatched} rows matched no item")
    if summary.no_key:
        parts.append(f"{summary.no_key} rows without a key")
    parts.append(f"{summary.total_vectors} vectors of dim {summary.dim} in {summary.path}")
    click.echo("; ".join(parts))


def _report(summary: Any) -> None:
    parts = [f"embedded {summary.embedded} images with {summary.model} in {summary.seconds:.1f} s"]
    if summary.embedded:
        parts[0] += f" ({summary.images_per_s:.1f} images/s)"
    if summary.already_done:
        parts.append(f"{summary.already_done} already done")
    if summary.skipped:
        parts.append(f"{summary.skipped} skipped (see {summary.skipped_path})")
    if summary.no_image:
        parts.append(f"{summary.no_image} rows without an image")
    parts.append(f"{summary.total_vectors} vectors of dim {summary.dim} in {summary.path}")
    click.echo("; ".join(parts))


commands = [embed_cmd]
