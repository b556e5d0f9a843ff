"""The filter options of a search (years, exact fields, title words), for commands beyond
``illustra search`` that take the same filters: ``facet search`` and ``export``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..search.filters import Filters

_OPTIONS = [
    click.option("--year-from", type=int, help="Only items from this year on."),
    click.option("--year-to", type=int, help="Only items up to this year."),
    click.option("--where", "where", multiple=True, metavar="FIELD=VALUE", help="Exact field match; repeatable."),
    click.option("--title-contains", help="Only items whose title contains this text."),
    click.option(
        "--include-undated", is_flag=True, help="With --year-from/--year-to: keep items whose date is unknown."
    ),
]


def filter_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def filters_from(
    year_from: int | None,
    year_to: int | None,
    where: tuple[str, ...],
    title_contains: str | None,
    include_undated: bool,
) -> Filters:
    fields: dict[str, str] = {}
    for v in where:
        if "=" not in v:
            raise click.BadParameter(f"{v!r} is not FIELD=VALUE", param_hint="--where")
        k, _, val = v.partition("=")
        fields[k.strip()] = val.strip()
    return Filters(
        year_from=year_from,
        year_to=year_to,
        fields=fields,
        title_contains=title_contains,
        include_undated=include_undated,
    )


def base_url(given: str | None) -> str:
    """Where permalinks point: ``given``, else the address ``illustra serve`` listens on."""
    from .. import settings

    if given:
        return given.rstrip("/")
    return f"http://{settings.get('host')}:{settings.get('port')}"
