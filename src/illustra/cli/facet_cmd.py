"""``illustra facet``: facets by example: create, add or remove examples, search, list, show, delete."""

from __future__ import annotations

from typing import Any

import click

from ..search.limits import MAX_COMBINED_FACETS, MAX_K, MAX_OFFSET
from .common import collection_option, echo_json, model_option, notice
from .filter_options import base_url, filter_options, filters_from

EXAMPLE_FLAGS = {"--positive": "positive", "--negative": "negative", "--remove": "remove"}
EXAMPLES_HELP = (
    "Examples follow the name: --positive ID… marks items as what the facet is about, --negative "
    "ID… as items it is not about (each flag takes one or more ids, and may be repeated)."
)


def split_examples(tokens: tuple[str, ...], allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """``--positive a b --negative c`` (also ``--positive=a``) into lists of ids by flag."""
    from ..errors import BadInput

    out: dict[str, list[str]] = {EXAMPLE_FLAGS[f]: [] for f in allowed}
    current: str | None = None
    for token in tokens:
        flag, eq, value = token.partition("=")
        if token.startswith("--"):
            if flag not in allowed:
                raise BadInput(f"unknown option {flag!r}; give examples with {', '.join(allowed)} ID…")
            current = EXAMPLE_FLAGS[flag]
            if eq:
                out[current].append(value)
            continue
        if current is None:
            raise BadInput(f"{token!r}: say what it is: {' ID… / '.join(allowed)} ID…")
        out[current].append(token)
    return out


def _facets(collection_dir: str, model: str | None) -> Any:
    from ..facets import FacetSearch
    from ..search import SearchService

    return FacetSearch(SearchService(collection_dir, model))


def _report(saved: Any, skipped: list[Any], as_json: bool, verb: str) -> None:
    from ..facets.search import facet_json

    for s in skipped:
        notice(f"skipped {s.id!r}: {s.reason}")
    if as_json:
        echo_json(facet_json(saved, skipped))
        return
    d = saved.definition
    click.echo(f"facet {saved.name!r} {verb}: {len(d.positives)} positive, {len(d.negatives)} negative example(s)")


@click.group("facet")
def facet_group() -> None:
    """Facets by example: classifiers over the pictures, trained from items you mark."""


_EXAMPLE_CONTEXT = {"ignore_unknown_options": True, "allow_interspersed_args": True}


@facet_group.command("create", context_settings=_EXAMPLE_CONTEXT, help="Save a new facet. " + EXAMPLES_HELP)
@collection_option
@click.argument("name")
@click.argument("examples", nargs=-1, type=click.UNPROCESSED, metavar="--positive ID… [--negative ID…]")
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print the facet as JSON.")
def create_cmd(collection_dir: str, name: str, examples: tuple[str, ...], model: str | None, as_json: bool) -> None:
    from ..facets import FacetDefinition

    given = split_examples(examples, ("--positive", "--negative"))
    definition = FacetDefinition.of(given["positive"], given["negative"], check=False)
    saved, skipped = _facets(collection_dir, model).create(name, definition)
    _report(saved, skipped, as_json, "saved")


@facet_group.command(
    "add",
    context_settings=_EXAMPLE_CONTEXT,
    help="Add examples to a facet, or take them away with --remove ID…. " + EXAMPLES_HELP,
)
@collection_option
@click.argument("name")
@click.argument(
    "examples", nargs=-1, type=click.UNPROCESSED, metavar="[--positive ID…] [--negative ID…] [--remove ID…]"
)
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print the facet as JSON.")
def add_cmd(collection_dir: str, name: str, examples: tuple[str, ...], model: str | None, as_json: bool) -> None:
    from ..errors import BadInput

    given = split_examples(examples, ("--positive", "--negative", "--remove"))
    if not any(given.values()):
        raise BadInput("give examples to add (--positive/--negative ID…) or to take away (--remove ID…)")
    saved, skipped = _facets(collection_dir, model).change(
        name, given["positive"], given["negative"], given["remove"]
    )
    _report(saved, skipped, as_json, "changed")


@facet_group.command("search")
@collection_option
@click.argument("name")
@click.option("--and", "also", multiple=True, metavar="NAME",
              help=f"Combine with another saved facet (probabilities multiplied); repeatable, up to {MAX_COMBINED_FACETS} in all.")
@click.option("-k", "k", type=click.IntRange(1, MAX_K), default=10, show_default=True, help="Number of results.")
@click.option("--offset", type=click.IntRange(0, MAX_OFFSET), default=0, help="Skip this many results (paging).")
@filter_options
@model_option
@click.option("--base-url", "base", default=None, help="Server address permalinks point to (default: the 'host' and 'port' settings).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (the shape of 'illustra search --json').")
def search_cmd(
    collection_dir: str,
    name: str,
    also: tuple[str, ...],
    k: int,
    offset: int,
    model: str | None,
    base: str | None,
    as_json: bool,
    **filters: Any,
) -> None:
    """Rank the collection by one facet (or several combined), within filters."""
    from ..search.shape import response_json

    fs = _facets(collection_dir, model)
    facets = [fs.saved(n) for n in (name, *also)]
    resp = fs.search(facets, k=k, offset=offset, filters=filters_from(**filters))
    for n in resp.notices:
        notice(n)
    out = response_json(resp, fs.service.collection)
    if out.get("permalink"):
        out["permalink"] = base_url(base) + out["permalink"]
    if as_json:
        echo_json(out)
        return
    if not resp.results:
        click.echo("no results")
    else:
        click.echo(f"{'rank':>4}  {'prob.':>6}  {'year':>4}  {'id':<40}  title")
        for h in resp.results:
            title = (h.metadata.get("title") or "").replace("\n", " ")
            click.echo(f"{h.rank:>4}  {h.score:6.3f}  {h.metadata.get('year') or '':>4}  {h.id[:40]:<40}  {title[:70]}")
    if out.get("permalink"):
        notice(f"permalink: {out['permalink']}")


@facet_group.command("list")
@collection_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(collection_dir: str, as_json: bool) -> None:
    """Saved facets, by name."""
    from ..collection import Collection
    from ..facets import FacetStore

    facets = FacetStore(Collection(collection_dir).root).list()
    if as_json:
        echo_json([f.to_json() for f in facets])
        return
    if not facets:
        click.echo("no facets")
    for f in facets:
        d = f.definition
        click.echo(f"{f.name}  {len(d.positives)} positive, {len(d.negatives)} negative  (changed {f.updated})")


@facet_group.command("show")
@collection_option
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_cmd(collection_dir: str, name: str, as_json: bool) -> None:
    """A facet's examples."""
    from ..collection import Collection
    from ..facets import FacetStore
    from ..facets.search import facet_json

    f = FacetStore(Collection(collection_dir).root).get(name)
    if as_json:
        echo_json(facet_json(f))
        return
    click.echo(f"facet {f.name!r} (created {f.created}, changed {f.updated})")
    for label, ids in (("positive", f.definition.positives), ("negative", f.definition.negatives)):
        click.echo(f"{label} ({len(ids)}):")
        for i in ids:
            click.echo(f"  {i}")


@facet_group.command("delete")
@collection_option
@click.argument("name")
def delete_cmd(collection_dir: str, name: str) -> None:
    """Delete a saved facet."""
    from ..collection import Collection
    from ..facets import FacetStore

    FacetStore(Collection(collection_dir).root).delete(name)
    click.echo(f"facet {name!r} deleted")


commands = [facet_group]
