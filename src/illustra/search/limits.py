"""The search modes and the limits of a query: the one place CLI, API, page and eval read them."""

from __future__ import annotations

from enum import StrEnum

from ..errors import BadInput

MAX_K = 1000  # results per page
MAX_OFFSET = 10_000  # deepest page start
MAX_QUERY_CHARS = 1000  # a text query, after stripping
MAX_VALUE_CHARS = 300  # one filter value
MAX_ID_ECHO = 80  # an id quoted back in an error message is cut to this many characters
MAX_EXAMPLES = 1000  # marked examples (positive and negative together) of one facet or quick search
MAX_EXPORT_ITEMS = 10_000  # items in one export (CSV or IIIF manifest)
MAX_FACET_NAME_CHARS = 64  # a saved facet's name
MAX_COMBINED_FACETS = 8  # facets multiplied together in one search
MAX_DEFINITION_CHARS = 6000  # a facet definition encoded into a link (fits every common server's URL limit)


class Mode(StrEnum):
    """What a text query matches: the pictures, the catalogue text, or both fused."""

    VISUAL = "visual"
    TEXT = "text"
    HYBRID = "hybrid"

    @property
    def label(self) -> str:
        """The name of the mode on the page's control."""
        return MODE_LABELS[self]

    @property
    def searched(self) -> str:
        """What the mode searched, in words ("searched the …")."""
        return MODE_SEARCHED[self]


MODE_LABELS = {Mode.VISUAL: "Pictures", Mode.TEXT: "Catalogue text", Mode.HYBRID: "Both"}
MODE_SEARCHED = {Mode.VISUAL: "pictures", Mode.TEXT: "catalogue text", Mode.HYBRID: "pictures and catalogue text"}
MODE_NAMES = tuple(m.value for m in Mode)


def parse_mode(raw: str | Mode | None) -> Mode | None:
    """A mode from user input (case-insensitive); None or an empty string means "the default"."""
    if raw is None or isinstance(raw, Mode):
        return raw
    text = str(raw).strip().lower()
    if not text:
        return None
    try:
        return Mode(text)
    except ValueError:
        raise BadInput(f"mode must be one of {', '.join(MODE_NAMES)}, got {str(raw)[:40]!r}") from None


def parse_modes(spec: str) -> list[Mode]:
    """A comma-separated list of modes, in order, each once."""
    modes = [parse_mode(part) for part in str(spec).split(",") if part.strip()]
    if not modes:
        raise BadInput(f"give at least one mode: {', '.join(MODE_NAMES)}")
    return list(dict.fromkeys(m for m in modes if m is not None))


def check_query(query: str | None) -> str:
    """The text query, stripped; empty or too long is a ``BadInput``."""
    text = (query or "").strip()
    if not text:
        raise BadInput("the query is empty; give some words describing the picture")
    if len(text) > MAX_QUERY_CHARS:
        raise BadInput(f"the query is {len(text):,} characters; the limit is {MAX_QUERY_CHARS:,}")
    return text


def check_paging(k: int, offset: int) -> None:
    if not 1 <= k <= MAX_K:
        raise BadInput(f"k must be between 1 and {MAX_K}, got {k}")
    if not 0 <= offset <= MAX_OFFSET:
        raise BadInput(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")


def short_id(item_id: str) -> str:
    """An id as quoted in messages: long ones are cut, so a 20,000-character id is not echoed."""
    return item_id if len(item_id) <= MAX_ID_ECHO else item_id[: MAX_ID_ECHO - 1] + "…"
