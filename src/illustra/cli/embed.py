"""``illustra embed``: embed a collection's images with a model (resumable)."""

from __future__ import annotations

from typing import Any

import click

from .. import settings
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
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Decode threads [setting workers].")
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Rows per resumable chunk [setting embed_chunk_rows].",
)
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
@click.option(
    "--similarity/--no-similarity",
    default=True,
    show_default=True,
    help="Also embed the model's picture-only space for 'more like this' and search by picture, "
    "where it has one (lite: lite-visual).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def embed_cmd(
    collection_dir: str,
    model: str | None,
    batch_size: int | None,
    workers: int | None,
    chunk_rows: int | None,
    no_progress: bool,
    similarity: bool,
    as_json: bool,
) -> None:
    """Embed every image of a collection not yet embedded with the model.

    Interrupt at any time and run the same command again: finished chunks are kept. Images that
    cannot be decoded are skipped and listed in embeddings/<model>/skipped.tsv.
    """
    from pathlib import Path

    from ..collection import Collection
    from ..pipeline import CompanionStage, EmbedOptions, EmbedStage, Pipeline, Stage

    Collection(collection_dir)  # a missing collection is a one-line error before any model loads
    embed = EmbedStage(model, EmbedOptions(batch_size, workers, chunk_rows), notify=notice)
    embed.encoder()
    stages: list[Stage] = [embed]
    if similarity and CompanionStage(embed).companion():
        stages.append(CompanionStage(embed))
    run = Pipeline(stages).run(Path(collection_dir), progress=not no_progress, force=True)
    summaries = [s.result for s in run.stages]
    if as_json:
        docs = [s.as_dict() for s in summaries]
        echo_json(docs[0] if len(docs) == 1 else {**docs[0], "similarity": docs[1]})
        return
    for summary in summaries:
        _report(summary)


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
