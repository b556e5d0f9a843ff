"""Search parameters from a query string or form: validated once, the same way for the API and the page.

Every problem becomes ``BadInput`` (422) with a one-line message naming the parameter, so a bad
``k`` or an unknown filter field never reaches the search service as a 500.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import BadInput
from .collapse import GroupingRequest
from .filters import Filters
from .limits import MAX_K, MAX_OFFSET, MAX_QUERY_CHARS, MAX_VALUE_CHARS, Mode, check_query, parse_mode

# Parameters with a meaning of their own; any other name must be a filterable field.
SEARCH_PARAMS = (
    "q", "k", "offset", "mode", "year_from", "year_to", "year", "title_contains", "include_undated",
    "collapse", "group_books",
)
# What each parameter is called in messages shown to readers.
PARAM_LABELS = {
    "q": "the query",
    "k": "the number of results",
    "offset": "the page start",
    "mode": "the search mode",
    "year": "the year",
    "year_from": "the first year",
    "year_to": "the last year",
    "title_contains": "the title filter",
    "include_undated": "include undated items",
    "collapse": "collapse near-duplicates",
    "group_books": "group results by book",
}
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


class BadParam(BadInput):
    """A search parameter that is not valid. ``words`` says what is wrong in a reader's terms (a
    page shows it beside the field ``param``); the message adds the parameter's name for API clients."""

    def __init__(self, param: str, words: str) -> None:
        super().__init__(f"{words} (parameter {param})")
        self.param = param
        self.words = words


@dataclass
class SearchParams:
    q: str | None = None
    k: int = 10
    offset: int = 0
    mode: str | None = None
    filters: Filters = field(default_factory=Filters)
    # Near-duplicates folded into one result, results grouped by book (None: the defaults).
    grouping: GroupingRequest = field(default_factory=GroupingRequest)
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
        if f.include_undated:
            out.append(("include_undated", "1"))
        return out


def _int(name: str, raw: str, lo: int, hi: int, what: str = "a whole number") -> int:
    label = PARAM_LABELS.get(name, name)
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadParam(name, f"{label} must be {what} between {lo} and {hi}, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise BadParam(name, f"{label} must be between {lo} and {hi}, got {value}")
    return value


def _bool(name: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise BadParam(name, f"{PARAM_LABELS.get(name, name)} must be true or false, got {raw[:40]!r}")


def _year(name: str, raw: str) -> int:
    return _int(name, raw, -9999, 9999, "a year (a whole number)")


def parse_search_params(
    items: Iterable[tuple[str, str]],
    filterable: Sequence[str],
    *,
    default_k: int = 10,
    max_k: int = MAX_K,
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
            raise BadParam(name, f"give {name!r} only once")
        if len(value) > MAX_QUERY_CHARS:
            label = PARAM_LABELS.get(name, name)
            raise BadParam(name, f"{label} is {len(value):,} characters; the limit is {MAX_QUERY_CHARS:,}")
        seen[name] = value

    p = SearchParams(k=default_k)
    if "q" in seen:
        p.q = seen["q"]
    if "k" in seen:
        p.k = _int("k", seen["k"], 1, max_k)
    if "offset" in seen:
        p.offset = _int("offset", seen["offset"], 0, MAX_OFFSET)
    if "mode" in seen:
        try:
            p.mode = parse_mode(seen["mode"])
        except BadInput:
            choices = ", ".join(f"{m.label} ({m})" for m in Mode)
            raise BadParam("mode", f"the search mode must be one of {choices}, got {seen['mode'][:40]!r}") from None
    f = Filters()
    if "year" in seen:
        if "year_from" in seen or "year_to" in seen:
            raise BadParam("year", "give either a single year or a range of years, not both")
        f.year_from = f.year_to = _year("year", seen["year"])
    if "year_from" in seen:
        f.year_from = _year("year_from", seen["year_from"])
    if "year_to" in seen:
        f.year_to = _year("year_to", seen["year_to"])
    if f.year_from is not None and f.year_to is not None and f.year_from > f.year_to:
        raise BadParam(
            "year_to", f"the first year ({f.year_from}) is after the last year ({f.year_to}); swap them"
        )
    if "include_undated" in seen:
        f.include_undated = _bool("include_undated", seen["include_undated"])
    p.grouping = GroupingRequest(
        collapse=_bool("collapse", seen["collapse"]) if "collapse" in seen else None,
        group_books=_bool("group_books", seen["group_books"]) if "group_books" in seen else None,
    )
    if seen.get("title_contains", "").strip():
        f.title_contains = seen["title_contains"].strip()
    for name in filterable:
        if name in seen and name not in SEARCH_PARAMS:
            value = seen[name].strip()
            if len(value) > MAX_VALUE_CHARS:
                raise BadParam(name, f"{name} is {len(value):,} characters; the limit is {MAX_VALUE_CHARS:,}")
            if value:
                f.fields[name] = value
    p.filters = f
    p.extra = {n: seen[n] for n in extra_names if n in seen}
    return p, ignored


def require_query(q: str | None) -> str:
    """The text query, stripped; empty or missing is a ``BadParam`` naming ``q``."""
    try:
        return check_query(q)
    except BadInput as exc:
        raise BadParam("q", exc.message) from None
