"""Grouping a ranking: near-copies of one picture folded into one result ("+N similar"), and the
results from one book folded into one ("+N more from this book").

Grouping works on the ranked rows, before any result is built, the same way for every mode and
every front end. Walking the ranking, a row whose near-duplicate cluster already has a result is
folded into it; else a row whose book already has a result is folded into that one; else it becomes
a result of its own. The grouped list is therefore a function of the ranking alone, and a page is a
slice of it: to fill page ``offset .. offset + k`` the ranking is read deeper (twice as deep each
time) until it holds ``offset + k + 1`` groups or ends, up to ``MAX_DEPTH`` rows. The response says
how deep it read (``grouping.depth``); folded counts are those found within that depth.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..collection import Collection
from ..duplicates.store import DuplicateStore
from .types import Hit

BOOK_FIELD = "book_identifier"
# Deepest a grouped ranking is read (100 x 2^5: hybrid candidate depths double from 100); beyond
# it a page may hold fewer than k groups, and says so.
MAX_DEPTH = 3200
# Rows folded into one result that are returned with it (its count says how many there are).
MAX_FOLDED_SHOWN = 24


@dataclass(frozen=True)
class GroupingRequest:
    """What a reader asked for; None means the default (near-duplicates collapsed whenever they
    have been found; books grouped for catalogue-text matches, i.e. the text and hybrid modes)."""

    collapse: bool | None = None
    group_books: bool | None = None

    def items(self) -> list[tuple[str, str]]:
        """As query-string pairs, for links that keep the choice."""
        out = []
        if self.collapse is not None:
            out.append(("collapse", "1" if self.collapse else "0"))
        if self.group_books is not None:
            out.append(("group_books", "1" if self.group_books else "0"))
        return out


@dataclass(frozen=True)
class Grouping:
    """What a search actually groups by."""

    duplicates: bool = False
    books: bool = False

    @property
    def active(self) -> bool:
        return self.duplicates or self.books


@dataclass
class Group:
    """One result of a grouped ranking: the position of its row in the ranking, and the positions
    folded into it as near-copies (``similar``) and as other results from its book (``book``)."""

    first: int
    similar: list[int] = field(default_factory=list)
    book: list[int] = field(default_factory=list)


@dataclass
class GroupedPage:
    groups: list[Group]
    rows: np.ndarray  # the ranking as read
    scores: np.ndarray
    has_more: bool
    info: dict[str, Any]


class Grouper:
    """The per-row keys rankings are grouped by, for one collection: near-duplicate clusters (read
    again when ``illustra duplicates`` writes new ones) and books (read once)."""

    def __init__(self, collection: Collection, table: Any) -> None:
        self.duplicates = DuplicateStore(collection)
        self._table = table
        self._n = len(collection)
        self._books: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def has_books(self) -> bool:
        return BOOK_FIELD in self._table.column_names

    def book_keys(self) -> np.ndarray:
        """(rows,) int32 code of each row's book; -1 where it has none."""
        if self._books is None:
            with self._lock:
                if self._books is None:
                    self._books = _book_codes(self._table)
        return self._books

    def cluster_keys(self) -> np.ndarray | None:
        clusters = self.duplicates.current()
        return None if clusters is None else clusters.keys_for(self._n)

    def resolve(self, request: GroupingRequest | None, text_match: bool) -> Grouping:
        """What to group by. Without a request nothing is grouped: evaluation, exports and other
        callers of the service see the ranking itself; front ends pass the reader's request."""
        if request is None:
            return Grouping()
        req = request
        dups = req.collapse is not False and self.duplicates.current() is not None
        books = (req.group_books if req.group_books is not None else text_match) and self.has_books
        return Grouping(duplicates=dups, books=bool(books))

    def group(self, rows: Sequence[int] | np.ndarray, grouping: Grouping) -> list[Group]:
        rows = np.asarray(rows, np.int64)
        clusters = self.cluster_keys() if grouping.duplicates else None
        books = self.book_keys() if grouping.books else None
        c_of = clusters[rows] if clusters is not None else np.full(len(rows), -1)
        b_of = books[rows] if books is not None else np.full(len(rows), -1)
        by_cluster: dict[int, Group] = {}
        by_book: dict[int, Group] = {}
        out: list[Group] = []
        for i, (c, b) in enumerate(zip(c_of.tolist(), b_of.tolist(), strict=True)):
            if c >= 0 and c in by_cluster:
                by_cluster[c].similar.append(i)
            elif b >= 0 and b in by_book:
                by_book[b].book.append(i)
            else:
                g = Group(i)
                out.append(g)
                if c >= 0:
                    by_cluster[c] = g
                if b >= 0:
                    by_book[b] = g
        return out

    def page(
        self,
        rank: Callable[[int], tuple[Any, Any]],
        offset: int,
        k: int,
        grouping: Grouping,
        start_depth: int = 0,
    ) -> GroupedPage:
        """Page ``offset .. offset + k`` of the grouped ranking; ``rank(depth)`` gives (scores,
        rows) of at least the best ``depth`` rows, fewer only when the ranking ends."""
        depth = min(MAX_DEPTH, max(start_depth, 2 * (offset + k + 1), 50))
        while True:
            scores, rows = rank(depth)
            groups = self.group(rows, grouping)
            ended = len(rows) < depth
            if len(groups) > offset + k or ended or depth >= MAX_DEPTH:
                break
            depth = min(MAX_DEPTH, depth * 2)
        complete = ended or len(groups) > offset + k
        page = groups[offset : offset + k]
        info = {
            "duplicates": grouping.duplicates,
            "books": grouping.books,
            "depth": int(depth),
            "ranked": int(len(rows)),
            "complete": bool(complete),
            "folded": int(sum(len(g.similar) + len(g.book) for g in page)),
        }
        return GroupedPage(page, np.asarray(rows), np.asarray(scores), len(groups) > offset + k, info)


def grouped_hits(
    page: GroupedPage, offset: int, make_hits: Callable[[list[int], list[float]], list[Hit]]
) -> list[Hit]:
    """The page's results, each with the first ``MAX_FOLDED_SHOWN`` rows folded into it (ranked by
    their place in the ungrouped ranking) and how many there are. ``make_hits(rows, scores)`` builds
    results in order."""
    rows, scores = page.rows.tolist(), page.scores.tolist()
    firsts = [g.first for g in page.groups]
    hits = make_hits([rows[i] for i in firsts], [scores[i] for i in firsts])
    for i, (hit, g) in enumerate(zip(hits, page.groups, strict=True)):
        hit.rank = offset + i + 1
        hit.similar = _folded(g.similar, rows, scores, make_hits)
        hit.similar_count = len(g.similar)
        hit.same_book = _folded(g.book, rows, scores, make_hits)
        hit.same_book_count = len(g.book)
    return hits


def _folded(
    positions: list[int], rows: list[int], scores: list[float], make_hits: Callable[[list[int], list[float]], list[Hit]]
) -> list[Hit]:
    shown = positions[:MAX_FOLDED_SHOWN]
    out = make_hits([rows[i] for i in shown], [scores[i] for i in shown]) if shown else []
    for h, i in zip(out, shown, strict=True):
        h.rank = i + 1  # place in the ungrouped ranking
    return out


def incomplete_notice(info: dict[str, Any]) -> str | None:
    if info.get("complete", True):
        return None
    return (
        f"grouping looked at the best {info['ranked']:,} matches only; turn grouping off "
        "(collapse=false, group_books=false) to page further"
    )


def _book_codes(table: Any) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if BOOK_FIELD not in table.column_names:
        return np.full(table.num_rows, -1, np.int32)
    col = table.column(BOOK_FIELD)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    text = pc.utf8_trim_whitespace(col)
    empty = pc.fill_null(pc.equal(text, ""), True)
    codes = pc.dictionary_encode(text).combine_chunks().indices
    out = np.asarray(pc.fill_null(codes, -1).to_numpy(zero_copy_only=False), np.int64)
    out[np.asarray(empty.to_numpy(zero_copy_only=False), bool)] = -1
    return out.astype(np.int32)
