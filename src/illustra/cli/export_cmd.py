"""``illustra export``: a result set (text, picture, more like this, facets) as CSV or a IIIF manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..search.limits import MAX_EXPORT_ITEMS, MODE_NAMES
from .common import collection_option, model_option, notice
from .filter_options import base_url, filter_options, filters_from


@click.command("export")
@collection_option
@click.argument("query", required=False)
@click.option("--image", "image_path", type=click.Path(dir_okay=False), help="Export a search by this image file.")
@click.option("--like", "like_id", help="Export the items like the item with this id.")
@click.option("--facet", "facet_names", multiple=True, metavar="NAME",
              help="Export the ranking of a saved facet; repeat to combine facets.")
@click.option("--format", "fmt", type=click.Choice(["csv", "iiif"]), required=True,
              help="csv (a table) or iiif (a IIIF Presentation 3 manifest).")
@click.option("-k", "k", type=int, default=100, show_default=True,
              help=f"How many items, from the top (at most {MAX_EXPORT_ITEMS:,}).")
@click.option("--mode", type=click.Choice(MODE_NAMES, case_sensitive=False), default=None,
              help="For a text QUERY: the pictures, the catalogue text, or both.")
@filter_options
@model_option
@click.option("--base-url", "base", default=None,
              help="Address of the server the file's links point to (default: the 'host' and 'port' settings).")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
def export_cmd(
    collection_dir: str,
    query: str | None,
    image_path: str | None,
    like_id: str | None,
    facet_names: tuple[str, ...],
    fmt: str,
    k: int,
    mode: str | None,
    model: str | None,
    base: str | None,
    output: Path,
    **filters: Any,
) -> None:
    """Export a result set: QUERY text, --image FILE, --like ID or --facet NAME."""
    from ..collection import write_bytes_atomic
    from ..errors import BadInput
    from ..exports.build import from_response, render
    from ..exports.items import check_export_size
    from ..facets import FacetSearch
    from ..search import SearchService
    from ..search.paging import page_through
    from ..search.permalink import link_path

    given = [x for x in (query, image_path, like_id, facet_names) if x]
    if len(given) != 1:
        raise BadInput("give exactly one of: a text QUERY, --image FILE, --like ID or --facet NAME")
    check_export_size(k)
    f = filters_from(**filters)
    svc = SearchService(collection_dir, model)
    if facet_names:
        fs = FacetSearch(svc)
        resp = fs.ranked([fs.saved(n) for n in facet_names], k, 0, f)
    elif query:
        text = str(query)
        resp = page_through(lambda kk, oo: svc.search_text(text, kk, oo, f, mode), k)
    elif like_id:
        resp = page_through(lambda kk, oo: svc.search_like(like_id, kk, oo, f), k)
    else:
        resp = page_through(lambda kk, oo: svc.search_image(str(image_path), kk, oo, f), k)
    for n in resp.notices:
        notice(n)
    root = base_url(base)
    path = link_path(resp, svc.collection)
    query = f"{path.partition('?')[2]}&" if path else ""
    export = from_response(resp, svc, root, f"{root}/api/export?{query}format={fmt}&k={k}")
    out = render(export, fmt, root)
    write_bytes_atomic(output, out.body.encode("utf-8"))
    notice(f"{len(export.items):,} item(s) written to {output}")
    if export.permalink:
        notice(f"permalink: {export.permalink}")


commands = [export_cmd]
