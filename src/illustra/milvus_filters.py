"""Search filters as Milvus boolean expressions, built so that no value can change the expression.

The expression mirrors ``search.filters.FilterEngine`` exactly: each filterable field is stored in
Milvus lower-cased by the same Arrow kernel the engine uses (``<field>`` → ``f_<field>``), and a
value is matched after the same ``strip().lower()``; the year is stored with the engine's
``UNKNOWN_YEAR`` sentinel; titles are stored lower-cased for ``title_contains``.

Values never become expression syntax. Against a server that accepts filter templates (Milvus 2.5
and later) every value travels in ``filter_params`` and the expression holds only placeholders;
otherwise (Milvus Lite, older servers) values are written as string or integer literals with every
quote, backslash and line break escaped. Field names come from the index's own mapping, never from
the request. ``LIKE`` patterns are used only for titles free of ``%``, ``_`` and backslashes (their
escaping differs between Milvus versions); such a substring is matched over the collection's own
titles instead and handed to Milvus as a list of rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .collection import Collection
from .errors import BadInput
from .search.filters import UNKNOWN_YEAR, Filters

ROW = "row"  # primary key: the item's dataset row
VECTOR = "vector"
YEAR = "year"
TITLE = "title_lc"
FIELD_PREFIX = "f_"
# Milvus names: a letter or underscore, then letters, digits and underscores, at most 255.
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
LIKE_SPECIAL = ("%", "_", "\\")
_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(value: str) -> str:
    """A Milvus string literal holding exactly ``value``."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in value) + "'"


def field_names(filterable: Sequence[str]) -> dict[str, str]:
    """The Milvus field of each filterable field: ``f_`` and the name with anything other than a
    letter, digit or underscore replaced by ``_`` (numbered when two names collide)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for i, name in enumerate(filterable):
        base = FIELD_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", name)[:200]
        candidate = base if base not in used else f"{base}_{i}"
        out[name] = candidate
        used.add(candidate)
    return out


@dataclass
class Expression:
    """A filter expression and the values of its placeholders (empty with literals)."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.text)


class _Writer:
    """Places values in an expression: as template placeholders or as escaped literals."""

    def __init__(self, templates: bool) -> None:
        self.templates = templates
        self.params: dict[str, Any] = {}

    def value(self, v: str | int | list[int]) -> str:
        if self.templates:
            name = f"p{len(self.params)}"
            self.params[name] = v
            return "{" + name + "}"
        if isinstance(v, str):
            return quote(v)
        if isinstance(v, list):
            return "[" + ",".join(str(int(x)) for x in v) + "]"
        return str(int(v))


class ExpressionBuilder:
    """Builds the expression of one query's filters for one Milvus collection.

    ``fields`` maps each filterable field to its Milvus field; ``title_rows`` gives the rows whose
    lower-cased title contains a substring (the collection's own titles), used when the substring
    holds a ``LIKE`` wildcard or a backslash.
    """

    def __init__(
        self,
        fields: dict[str, str],
        *,
        has_title: bool,
        templates: bool,
        title_rows: Callable[[str], Sequence[int]] | None = None,
    ) -> None:
        for milvus_name in fields.values():
            if not NAME_RE.match(milvus_name):
                raise BadInput(f"{milvus_name!r} is not a valid Milvus field name")
        self.fields = fields
        self.has_title = has_title
        self.templates = templates
        self.title_rows = title_rows

    def build(
        self,
        filters: Filters | None,
        excluded_rows: Sequence[int] = (),
        allowed_rows: Sequence[int] | None = None,
    ) -> Expression:
        """The expression for ``filters`` without ``excluded_rows`` (and, when given, within
        ``allowed_rows``); an empty expression when nothing is filtered."""
        w = _Writer(self.templates)
        parts: list[str] = []
        f = filters or Filters()
        for name, value in f.fields.items():
            milvus_name = self.fields.get(name)
            if milvus_name is None:
                raise BadInput(
                    f"cannot filter on {name!r}; filterable fields: {', '.join(self.fields) or 'none'}"
                )
            parts.append(f"{milvus_name} == {w.value(str(value).strip().lower())}")
        if f.title_contains:
            parts.append(self._title(f.title_contains.strip().lower(), w))
        if f.has_years():
            parts.append(self._years(f, w))
        if excluded_rows:
            parts.append(f"{ROW} not in {w.value(sorted({int(r) for r in excluded_rows}))}")
        if allowed_rows is not None:
            parts.append(f"{ROW} in {w.value(sorted({int(r) for r in allowed_rows}))}")
        text = " and ".join(f"({p})" for p in parts)
        return Expression(text, w.params)

    def _title(self, needle: str, w: _Writer) -> str:
        if not self.has_title:
            raise BadInput("this collection has no title field to search within")
        if any(ch in needle for ch in LIKE_SPECIAL):
            if self.title_rows is None:
                raise BadInput("a title filter with %, _ or \\ cannot be answered here")
            return f"{ROW} in {w.value(sorted(int(r) for r in self.title_rows(needle)))}"
        # The pattern holds no wildcard but its ends: a literal even with templates, since
        # servers differ on placeholders inside LIKE.
        return f"{TITLE} like {quote('%' + needle + '%')}"

    def _years(self, f: Filters, w: _Writer) -> str:
        conds = [f"{YEAR} != {w.value(UNKNOWN_YEAR)}"]
        if f.year_from is not None:
            conds.append(f"{YEAR} >= {w.value(int(f.year_from))}")
        if f.year_to is not None:
            conds.append(f"{YEAR} <= {w.value(int(f.year_to))}")
        in_range = " and ".join(conds)
        if f.include_undated:
            return f"({in_range}) or {YEAR} == {w.value(UNKNOWN_YEAR)}"
        return in_range


def arrow_table(collection: Collection) -> pa.Table:
    table = collection.dataset.data
    return getattr(table, "table", table)


def lowered_column(table: pa.Table, name: str) -> pa.Array | None:
    """The column as the filter engine compares it (cast to text, lower-cased); None when it
    cannot be read as text."""
    try:
        col = table.column(name).combine_chunks()
        return pc.utf8_lower(col.cast(pa.string()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
