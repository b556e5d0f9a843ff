"""Search parameters from a query string or form: validated once, the same way for the API and the page.

Every problem becomes ``BadInput`` (422) with a one-line message naming the parameter, so a bad
``k`` or an unknown filter field never reaches the search service as a 500.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import BadInput
from ..filters import Filters

API_MAX_K = 100
MAX_OFFSET = 10_000
MAX_QUERY_CHARS = 500
MAX_VALUE_CHARS = 300
MODES = ("visual", "text", "hybrid")

# Parameters with a meaning of their own; any other name must be a filterable field.
SEARCH_PARAMS = ("q", "k", "offset", "mode", "year_from", "year_to", "year", "title_contains")


@dataclass
class SearchParams:
    q: str | None = None
    k: int = 10
    offset: int = 0
    mode: str | None = None
    filters: Filters = field(default_factory=Filters)
    # Parameters the caller allowed beyond the search ones (e.g. the page's ``like``), by name.
    extra: dict[str, str] = field(default_factory=dict)

    def filter_items(self) -> list[tuple[str, str]]:
        """The filters as query-string pairs (to carry search state in links)."""
        f = self.filters
        out: list[tuple[str, str]] = []
        if f.year_from is not None:
            out.append(("year_from", str(f.year_from)))
        if f.year_to is not None:
            out.append(("year_to", str(f.year_to)))
        if f.title_contains:
            out.append(("title_contains", f.title_contains))
        out.extend(sorted(f.fields.items()))
        return out


def _int(name: str, raw: str, lo: int, hi: int, what: str = "a whole number") -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadInput(f"{name} must be {what} between {lo} and {hi}, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise BadInput(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _year(name: str, raw: str) -> int:
    return _int(name, raw, -9999, 9999, "a year (a whole number)")


def parse_search_params(
    items: Iterable[tuple[str, str]],
    filterable: Sequence[str],
    *,
    default_k: int = 10,
    max_k: int = API_MAX_K,
    allowed_extra: Iterable[str] = (),
    skip_empty: bool = False,
    ignore_unknown: bool = False,
) -> tuple[SearchParams, list[str]]:
    """Parse (name, value) pairs into ``SearchParams``; returns it and the names that were ignored.

    ``skip_empty`` treats ``name=`` as absent (HTML forms send every field); ``ignore_unknown`` drops
    unknown names instead of refusing them (the page is lenient with shared links, the API is not).
    """
    extra_names = set(allowed_extra)
    seen: dict[str, str] = {}
    ignored: list[str] = []
    for name, value in items:
        if skip_empty and not value.strip():
            continue
        known = name in SEARCH_PARAMS or name in filterable or name in extra_names
        if not known:
            if ignore_unknown:
                ignored.append(name)
                continue
            raise BadInput(
                f"unknown parameter {name[:60]!r}; search parameters: {', '.join(SEARCH_PARAMS)}; "
                f"filterable fields: {', '.join(filterable) or 'none'}"
            )
        if name in seen:
            raise BadInput(f"give {name!r} only once")
        if len(value) > MAX_QUERY_CHARS:
            label = "the query" if name == "q" else name
            raise BadInput(f"{label} is {len(value)} characters; the limit is {MAX_QUERY_CHARS}")
        seen[name] = value

    p = SearchParams(k=default_k)
    if "q" in seen:
        p.q = seen["q"]
    if "k" in seen:
        p.k = _int("k", seen["k"], 1, max_k)
    if "offset" in seen:
        p.offset = _int("offset", seen["offset"], 0, MAX_OFFSET)
    if "mode" in seen:
        mode = seen["mode"].strip().lower()
        if mode not in MODES:
            raise BadInput(f"mode must be one of {', '.join(MODES)}, got {seen['mode'][:40]!r}")
        p.mode = mode
    f = Filters()
    if "year" in seen:
        if "year_from" in seen or "year_to" in seen:
            raise BadInput("give either year or year_from/year_to, not both")
        f.year_from = f.year_to = _year("year", seen["year"])
    if "year_from" in seen:
        f.year_from = _year("year_from", seen["year_from"])
    if "year_to" in seen:
        f.year_to = _year("year_to", seen["year_to"])
    if f.year_from is not None and f.year_to is not None and f.year_from > f.year_to:
        raise BadInput(f"year_from ({f.year_from}) is after year_to ({f.year_to})")
    if seen.get("title_contains", "").strip():
        f.title_contains = seen["title_contains"].strip()
    for name in filterable:
        if name in seen and name not in SEARCH_PARAMS:
            value = seen[name].strip()
            if len(value) > MAX_VALUE_CHARS:
                raise BadInput(f"{name} is {len(value)} characters; the limit is {MAX_VALUE_CHARS}")
            if value:
                f.fields[name] = value
    p.filters = f
    p.extra = {n: seen[n] for n in extra_names if n in seen}
    return p, ignored


def require_query(q: str | None) -> str:
    """The text query, stripped; empty or missing is a ``BadInput``."""
    text = (q or "").strip()
    if not text:
        raise BadInput("the query is empty; give q=<words describing the picture>")
    if len(text) > MAX_QUERY_CHARS:
        raise BadInput(f"the query is {len(text)} characters; the limit is {MAX_QUERY_CHARS}")
    return text
