"""``illustra duplicates``: find near-copies among the pictures and group them; list or export them."""

from __future__ import annotations

import sys
from typing import Any

import click

from .common import collection_option, echo_json, model_option, notice


def _progress(show: bool) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def report(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(total=total, desc=phase, unit="chunk", file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return report


@click.command("duplicates")
@collection_option
@click.option("--threshold", type=str, default=None,
              help="Cosine similarity (above 0, at most 1) at which two pictures count as near-copies "
              "[default: the measured 0.94].")
@model_option
@click.option("--list", "list_only", is_flag=True, help="List the clusters already found (builds nothing).")
@click.option("--min-size", type=click.IntRange(2, None), default=2, show_default=True,
              help="With --list or --csv: only clusters of at least this many items.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write the clusters as CSV, one line per item ('-' for stdout; builds nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars on stderr.")
def duplicates_cmd(
    collection_dir: str,
    threshold: str | None,
    model: str | None,
    list_only: bool,
    min_size: int,
    csv_path: str | None,
    as_json: bool,
    progress: bool,
) -> None:
    """Find pictures printed again (near-copies) and group them into clusters.

    Interrupted, it resumes where it stopped; run again with another --threshold, it regroups
    without comparing the pictures again."""
    from ..collection import Collection
    from ..duplicates import DuplicateStore, build_duplicates, check_threshold
    from ..duplicates.listing import cluster_entry, iter_clusters, write_csv
    from ..errors import BadInput

    coll = Collection(collection_dir)
    if list_only or csv_path:
        if threshold is not None:
            raise BadInput("--threshold builds clusters; give it without --list/--csv (then list them)")
        clusters = DuplicateStore(coll).require()
        if csv_path:
            if csv_path == "-":
                write_csv(coll, clusters, sys.stdout, min_size)
            else:
                import io
                from pathlib import Path

                from ..collection import write_bytes_atomic

                buf = io.StringIO()
                n = write_csv(coll, clusters, buf, min_size)
                write_bytes_atomic(Path(csv_path), buf.getvalue().encode("utf-8"))
                notice(f"wrote {n:,} clusters to {csv_path}")
            if not list_only:
                return
        entries = [cluster_entry(coll, clusters, c, 10**9 if as_json else 5) for c in iter_clusters(clusters, min_size)]
        if as_json:
            echo_json({**_public_meta(clusters.meta), "min_size": min_size, "clusters": entries})
            return
        click.echo(f"{len(entries):,} clusters of at least {min_size} items (threshold {clusters.meta.get('threshold')})")
        for e in entries:
            ids = ", ".join(i["id"] for i in e["items"])
            more = f", … (+{e['size'] - len(e['items'])})" if e["size"] > len(e["items"]) else ""
            click.echo(f"{e['cluster']:>6}  {e['size']:>5} items  {e['books']:>4} books  {ids}{more}")
        return
    t = check_threshold(threshold)
    summary = build_duplicates(coll, t, model=model, progress=_progress(progress), notify=notice)
    if as_json:
        echo_json(_public_meta(summary))
        return
    click.echo(
        f"{summary['clusters']:,} clusters, {summary['items_in_clusters']:,} of {summary['vectors']:,} pictures "
        f"have a near-copy at cosine >= {summary['threshold']} (largest cluster {summary['largest']:,}); "
        f"{summary['seconds']} s"
    )


def _public_meta(meta: dict[str, Any]) -> dict[str, Any]:
    keep = ("threshold", "space", "vectors", "items", "clusters", "items_in_clusters", "largest",
            "pairs_above_threshold", "seconds", "graph_seconds", "built")
    return {k: meta[k] for k in keep if k in meta}


commands = [duplicates_cmd]
