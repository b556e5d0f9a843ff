"""``illustra search``: by text, by image file, or "more like this" an item."""

from __future__ import annotations

import click

from ..search.limits import MAX_K, MAX_OFFSET, MODE_NAMES, Mode
from .common import collection_option, echo_json, model_option, notice, text_model_option, use_text_model


def _field_filters(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"{v!r} is not FIELD=VALUE", param_hint="--where")
        k, _, val = v.partition("=")
        out[k.strip()] = val.strip()
    return out


@click.command("search")
@collection_option
@click.argument("query", required=False)
@click.option("--image", "image_path", type=click.Path(dir_okay=False), help="Search by an image file.")
@click.option("--like", "like_id", help="Search for items like the item with this id.")
@click.option("-k", "k", type=click.IntRange(1, MAX_K), default=10, show_default=True, help="Number of results.")
@click.option("--offset", type=click.IntRange(0, MAX_OFFSET), default=0, help="Skip this many results (paging).")
@click.option("--year-from", type=int, help="Only items from this year on.")
@click.option("--year-to", type=int, help="Only items up to this year.")
@click.option("--where", "where", multiple=True, metavar="FIELD=VALUE", help="Exact field match; repeatable.")
@click.option("--title-contains", help="Only items whose title contains this text.")
@click.option("--include-undated", is_flag=True, help="With --year-from/--year-to: keep items whose date is unknown.")
@click.option("--mode", type=click.Choice(MODE_NAMES, case_sensitive=False), default=None,
              help="What to match: the pictures, the catalogue text, or both (default: hybrid when the collection has text).")
@click.option("--no-collapse", is_flag=True,
              help="Show near-duplicates as results of their own (by default each is folded into its best match).")
@click.option("--group-books/--no-group-books", default=None,
              help="Fold results from one book into its best one (default: on for the text and hybrid modes).")
@model_option
@text_model_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def search_cmd(
    collection_dir: str,
    query: str | None,
    image_path: str | None,
    like_id: str | None,
    k: int,
    offset: int,
    year_from: int | None,
    year_to: int | None,
    where: tuple[str, ...],
    title_contains: str | None,
    include_undated: bool,
    mode: str | None,
    no_collapse: bool,
    group_books: bool | None,
    model: str | None,
    text_model: str | None,
    as_json: bool,
) -> None:
    """Search a collection: QUERY text, --image FILE, or --like ID."""
    use_text_model(text_model)
    from ..errors import BadInput
    from ..search import SearchService
    from ..search.collapse import GroupingRequest
    from ..search.filters import Filters
    from ..search.hybrid import explain_line
    from ..search.shape import response_json

    given = [x for x in (query, image_path, like_id) if x]
    if len(given) != 1:
        raise BadInput("give exactly one of: a text QUERY, --image FILE, or --like ID")
    filters = Filters(year_from=year_from, year_to=year_to, fields=_field_filters(where),
                      title_contains=title_contains, include_undated=include_undated)
    grouping = GroupingRequest(collapse=False if no_collapse else None, group_books=group_books)
    svc = SearchService(collection_dir, model)
    if query:
        resp = svc.search_text(query, k=k, offset=offset, filters=filters, mode=mode, grouping=grouping)
    elif image_path:
        resp = svc.search_image(image_path, k=k, offset=offset, filters=filters, grouping=grouping)
    else:
        resp = svc.search_like(str(like_id), k=k, offset=offset, filters=filters, grouping=grouping)
    for n in resp.notices:
        notice(n)
    if as_json:
        echo_json(response_json(resp, svc.collection))
        return
    if resp.undated_excluded:
        notice(f"{resp.undated_excluded:,} items with no known date were left out by the year filter "
               "(add --include-undated to keep them)")
    if not resp.results:
        click.echo("no results")
        return
    click.echo(f"{'rank':>4}  {'score':>6}  {'year':>4}  {'id':<40}  title")
    for h in resp.results:
        title = (h.metadata.get("title") or "").replace("\n", " ")
        year = h.metadata.get("year") or ""
        click.echo(f"{h.rank:>4}  {h.score:6.3f}  {year!s:>4}  {h.id[:40]:<40}  {title[:70]}")
        if resp.mode is not Mode.VISUAL and h.explain:
            click.echo(f"{'':>14}why: {explain_line(h.explain)}")
        if h.similar_count or h.same_book_count:
            folded = [f"+{h.similar_count} similar" if h.similar_count else "",
                      f"+{h.same_book_count} more from this book" if h.same_book_count else ""]
            click.echo(f"{'':>14}{', '.join(x for x in folded if x)}")


commands = [search_cmd]
