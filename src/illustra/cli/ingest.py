"""``illustra ingest folder|hub|manifest``: build or extend a collection from a source."""

from __future__ import annotations

import sys
from typing import Any

import click

from .common import collection_option, notice

SIZES = ["small", "medium", "large", "original"]

limit_option = click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Read at most this many items (for a trial run).",
)
progress_option = click.option(
    "--progress/--no-progress", default=True, help="Show a progress bar on stderr (default: on)."
)


def _run(collection_dir: str, source: Any, progress: bool) -> None:
    """The pipeline's ingest stage (the one ingest driver), then the usual summary."""
    from pathlib import Path

    from ..pipeline import IngestStage, Pipeline

    run = Pipeline([IngestStage(source)]).run(Path(collection_dir), progress=progress, force=True)
    _report(run.result("ingest"))


def _report(summary: Any) -> None:
    lines = summary.lines()
    click.echo(lines[0])
    for line in lines[1:]:
        notice(line)
    if summary.interrupted:
        sys.exit(130)


@click.group("ingest")
def ingest() -> None:
    """Create a collection, or add to one, from a folder, a 🤗 dataset or a manifest.

    Re-running is safe: items already in the collection are skipped, and items that were kept
    without an image (e.g. a failed download) get it when it can be had.
    """


@ingest.command("folder")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=str))
@collection_option
@click.option(
    "--metadata",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    default=None,
    help="A metadata.csv/.jsonl sidecar kept elsewhere (file_name relative to PATH).",
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Decoding threads.")
@limit_option
@progress_option
def ingest_folder(
    path: str,
    collection_dir: str,
    metadata: str | None,
    workers: int | None,
    limit: int | None,
    progress: bool,
) -> None:
    """Add every image under PATH (recursively), with metadata.csv / metadata.jsonl sidecars."""
    from ..sources import FolderSource

    source = FolderSource(path, metadata=metadata, workers=workers, limit=limit)
    _run(collection_dir, source, progress)


@ingest.command("hub")
@click.argument("name")
@click.option(
    "--preset",
    type=click.Choice(["bl-hub"]),
    default=None,
    help="A known dataset: bl-hub is biglam/british-library-book-images (fname parsed into book fields).",
)
@click.option(
    "--config",
    "config_name",
    default=None,
    help="Dataset configuration (subset) name; with --preset bl-hub a comma-separated list "
    "(default: every image config).",
)
@click.option("--split", default="train", show_default=True, help="Split to read.")
@collection_option
@click.option(
    "--streaming/--no-streaming",
    default=True,
    help="Read row by row without downloading the whole dataset first (default: stream).",
)
@click.option("--image-column", default=None, help="Column holding the image (default: detected).")
@click.option(
    "--id-column", default=None, help="Column holding a stable id (default: detected, else split-index)."
)
@click.option(
    "--images",
    "images_mode",
    type=click.Choice(["thumbnails", "copy", "remote"]),
    default=None,
    help="Store a thumbnail (thumbnail_store_side), a bounded copy (stored_image_side), or, with "
    "--preset bl-hub and --join-manifest, no image but its Flickr URL (default: thumbnails above "
    "100,000 rows for bl-hub, else copy).",
)
@click.option(
    "--join-manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    default=None,
    help="bl-hub: a BL Flickr manifest (.tsv, optionally .gz) adding title, creator, place, publisher "
    "and Flickr URLs.",
)
@click.option(
    "--size",
    type=click.Choice(SIZES),
    default="medium",
    show_default=True,
    help="bl-hub with --join-manifest: which Flickr image size's URL to record.",
)
@click.option("--cache-dir", default=None, help="Where 🤗 datasets keeps its downloads and cache.")
@limit_option
@progress_option
def ingest_hub(
    name: str,
    preset: str | None,
    config_name: str | None,
    split: str,
    collection_dir: str,
    streaming: bool,
    image_column: str | None,
    id_column: str | None,
    images_mode: str | None,
    join_manifest: str | None,
    size: str,
    cache_dir: str | None,
    limit: int | None,
    progress: bool,
) -> None:
    """Add rows of a 🤗 dataset NAME (a Hub id or a local folder of parquet/imagefolder files)."""
    from .. import settings
    from ..errors import BadInput
    from ..sources import BLHubSource, HubSource

    source: Any
    if preset == "bl-hub":
        if image_column or id_column:
            raise BadInput("--image-column and --id-column do not apply to --preset bl-hub")
        source = BLHubSource(
            name,
            configs=config_name,
            split=split,
            streaming=streaming,
            images_mode=images_mode,
            join_manifest=join_manifest,
            size=size,
            limit=limit,
            cache_dir=cache_dir,
        )
    else:
        if join_manifest:
            raise BadInput("--join-manifest works only with --preset bl-hub")
        if images_mode == "remote":
            raise BadInput("--images remote works only with --preset bl-hub and --join-manifest")
        side = settings.get("thumbnail_store_side") if images_mode == "thumbnails" else None
        source = HubSource(
            name,
            config=config_name,
            split=split,
            streaming=streaming,
            image_column=image_column,
            id_column=id_column,
            limit=limit,
            cache_dir=cache_dir,
            store_side=side,
        )
    _run(collection_dir, source, progress)


@ingest.command("manifest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option("--preset", type=click.Choice(["bl-flickr"]), default=None, help="A known manifest format.")
@click.option("--download", is_flag=True, help="Fetch http(s) images (otherwise rows keep only their URL).")
@collection_option
@click.option("--image-column", default=None, help="Column with the image path or URL (default: detected).")
@click.option(
    "--id-column", default=None, help="Column with a stable id (default: detected, else row number)."
)
@click.option(
    "--size",
    type=click.Choice(SIZES),
    default="medium",
    show_default=True,
    help="bl-flickr: which Flickr image size to use.",
)
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="Concurrent downloads.")
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=None, help="Connect/read timeout in seconds."
)
@click.option("--retries", type=click.IntRange(min=0), default=None, help="Retries for transient failures.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Where downloaded originals are kept (default: <collection>/downloads).",
)
@limit_option
@progress_option
def ingest_manifest(
    file: str,
    preset: str | None,
    download: bool,
    collection_dir: str,
    image_column: str | None,
    id_column: str | None,
    size: str,
    concurrency: int | None,
    timeout: float | None,
    retries: int | None,
    cache_dir: str | None,
    limit: int | None,
    progress: bool,
) -> None:
    """Add the rows of a CSV/TSV manifest FILE (optionally .gz)."""
    from pathlib import Path

    from ..sources import PRESETS, DownloadConfig, ManifestSource

    config = None
    if download:
        config = DownloadConfig(
            cache_dir=Path(cache_dir) if cache_dir else None,
            concurrency=concurrency or 0,
            timeout=timeout or 0.0,
            retries=retries if retries is not None else -1,
        )
    common: dict[str, Any] = {"download": config, "limit": limit}
    if preset:
        source: ManifestSource = PRESETS[preset](file, size=size, **common)
    else:
        source = ManifestSource(file, image_column=image_column, id_column=id_column, **common)
    _run(collection_dir, source, progress)


commands = [ingest]
