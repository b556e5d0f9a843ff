"""``illustra map``: lay out every picture of a collection in 2D for the page's Map view."""

from __future__ import annotations

import click

from .common import collection_option, echo_json, model_option
from .duplicates_cmd import _progress


@click.command("map")
@collection_option
@model_option
@click.option("--sample", type=click.IntRange(2, None), default=None,
              help="Fit the layout on this many pictures and place the rest (default: all of them up to "
              "200,000 pictures, else a sample of 50,000).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample and the layout.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars on stderr.")
def map_cmd(
    collection_dir: str, model: str | None, sample: int | None, seed: int, as_json: bool, progress: bool
) -> None:
    """Build the collection map: every picture placed by similarity, regions named by their text.

    Interrupted, it resumes where it stopped."""
    from ..collection import Collection
    from ..map import build_map

    summary = build_map(Collection(collection_dir), model=model, sample=sample, seed=seed, progress=_progress(progress))
    if as_json:
        echo_json(summary)
        return
    click.echo(
        f"map of {summary['placed']:,} pictures ({summary['method']}, fitted on {summary['fit_sample']:,}), "
        f"{summary['labels']:,} region labels; {summary['seconds']} s"
    )


commands = [map_cmd]
