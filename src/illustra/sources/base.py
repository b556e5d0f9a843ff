"""What every source shares: metadata field mapping, the skip report, re-run bookkeeping, and the
driver that streams a source's rows into ``Collection.create``.

A source is an object with ``kind``, ``extra_fields``, ``text_fields``, ``describe()`` and
``rows(ctx)``; ``rows`` is a generator, so images are decoded one at a time (or a bounded window
at a time, see ``ordered_map``) and never all held in memory.

``ingest`` is the one driver every source goes through, and ``clean_row`` the one place a row is
normalised on its way in: HTML character references in its text ("all&#39;italiana") are decoded
there, exactly once. A collection ingested before that was done is repaired by its next ingest.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..collection import CORE_FIELDS
from ..progress import progress_bar as shared_progress_bar

REPORT_NAME = "ingest_report.tsv"
# Recorded in a source's manifest entry, in the same write as its rows: from that ingest on, every
# row of the collection has its text decoded (earlier rows are repaired by that same ingest).
DECODED_MARK = "html_unescaped"
# Row keys that are not text to decode: the stable id, the image and where it came from.
NOT_TEXT = frozenset({"id", "image", "image_path"})

# Column names (lower-cased, spaces and hyphens as underscores) that map onto collection fields.
FIELD_ALIASES: dict[str, str] = {
    "title": "title",
    "creator": "creator",
    "author": "creator",
    "authors": "creator",
    "first_author": "creator",
    "artist": "creator",
    "illustrator": "creator",
    "photographer": "creator",
    "maker": "creator",
    "date": "date",
    "date_created": "date",
    "created": "date",
    "publication_date": "date",
    "pub_date": "date",
    "year": "year",
    "place": "place",
    "pubplace": "place",
    "place_of_publication": "place",
    "publication_place": "place",
    "location": "place",
    "publisher": "publisher",
    "source_url": "source_url",
    "url": "source_url",
    "link": "source_url",
    "page_url": "source_url",
    "licence": "licence",
    "license": "licence",
    "rights": "licence",
    "description": "description",
    "caption": "description",
    "text": "description",
    "alt_text": "description",
}

# Names a source column may not keep as an extra field, because the collection uses them itself.
RESERVED = {"id", "image", "image_path", "year", *CORE_FIELDS}

_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")

T = TypeVar("T")
R = TypeVar("R")


def parse_year(value: Any) -> int | None:
    """The first 4-digit year in a date such as '1857', '[1875?]' or '1850-55'; None otherwise."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1 <= value <= 2200 else None
    m = _YEAR.search(str(value))
    if not m:
        return None
    year = int(m.group(1))
    return year if 1000 <= year <= 2200 else None


def to_text(value: Any) -> str | None:
    """Metadata values as strings: empty becomes None, lists and dicts become JSON."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return None
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str) if value else None
    text = str(value).strip()
    return text or None


def clean_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with the HTML character references in its text fields decoded ("&#39;" -> "'",
    "&amp;amp;" -> "&amp;": one pass, never repeated); ``row`` itself when nothing changes."""
    out = row
    for key, value in row.items():
        if key in NOT_TEXT or not isinstance(value, str) or "&" not in value:
            continue
        decoded = html.unescape(value)
        if decoded != value:
            if out is row:
                out = dict(row)
            out[key] = decoded
    return out


def text_decoded(manifest: dict[str, Any]) -> bool:
    """Whether every row of the collection went through ``clean_row`` (or was repaired)."""
    return any(s.get(DECODED_MARK) for s in manifest.get("sources", []))


def complete_entry(manifest: dict[str, Any], described: dict[str, Any]) -> dict[str, Any] | None:
    """The latest manifest entry of a finished ingest of the source ``described``, if any."""
    for entry in reversed(manifest.get("sources", [])):
        if entry.get("complete") and all(entry.get(k) == v for k, v in described.items()):
            return entry
    return None


def _undecoded(root: Path) -> tuple[set[str], Callable[[set[str]], Iterator[dict[str, Any]]]]:
    """Ids of the rows of a collection ingested before ``clean_row`` existed whose text it would
    change, and a generator of those rows decoded (images kept), leaving out the ids given."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..collection import Collection

    table = Collection(root).dataset.data.table
    hits: set[int] = set()
    for name in table.column_names:
        col = table.column(name)
        if name in NOT_TEXT or not pa.types.is_string(col.type):
            continue
        mask = pc.fill_null(pc.match_substring(col, "&"), False)
        hits.update(int(i) for i in pc.indices_nonzero(mask).to_pylist())
    rows: dict[str, int] = {}
    for i in sorted(hits):
        rec = table.slice(i, 1).drop_columns(["image"]).to_pylist()[0]
        if clean_row(rec) is not rec:
            rows[str(rec["id"])] = i

    def repaired(leave_out: set[str]) -> Iterator[dict[str, Any]]:
        for rid, i in rows.items():
            if rid not in leave_out:
                yield clean_row(table.slice(i, 1).to_pylist()[0])

    return set(rows), repaired


def clean_cell(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _norm_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


@dataclass
class FieldPlan:
    """How a source's columns become collection fields, decided once from the column names.

    The first column matching a known name fills that field; every other column is kept as an extra
    string field under its own name (prefixed ``meta_`` when the name is one the collection uses).
    """

    targets: dict[str, str]

    @classmethod
    def from_columns(cls, columns: Iterable[str], consumed: Iterable[str] = ()) -> FieldPlan:
        skip = set(consumed)
        targets: dict[str, str] = {}
        taken: set[str] = set()
        for i, col in enumerate(columns):
            if col in skip:
                continue
            alias = FIELD_ALIASES.get(_norm_name(col))
            if alias and alias not in taken:
                targets[col] = alias
                taken.add(alias)
                continue
            name = col.strip() or f"column_{i + 1}"
            if name in RESERVED or name in taken:
                name = f"meta_{name}"
            targets[col] = name
            taken.add(name)
        return cls(targets)

    @property
    def extra_fields(self) -> list[str]:
        core = {*CORE_FIELDS, "year"}
        return [t for t in self.targets.values() if t not in core]

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for col, target in self.targets.items():
            if col in record:
                out[target] = parse_year(record[col]) if target == "year" else to_text(record[col])
        if out.get("year") is None and out.get("date"):
            out["year"] = parse_year(out["date"])
        if out.get("date") is None and out.get("year") is not None:
            out["date"] = str(out["year"])
        return out


class IngestReport:
    """``ingest_report.tsv`` in the collection: one line per item that was skipped or kept without
    its image, written as it happens (nothing accumulates in memory), plus counts by reason."""

    HEADER = "id\tpath\treason\taction\n"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("w", encoding="utf-8")
        self._fh.write(self.HEADER)
        self.skipped = 0
        self.kept_without_image = 0
        self.recovered = 0
        self.reasons: Counter[str] = Counter()

    def add(self, item_id: str, path: str, reason: str, action: str = "skipped") -> None:
        reason = " ".join(reason.split())
        self._fh.write(f"{_tsv(item_id)}\t{_tsv(path)}\t{_tsv(reason)}\t{action}\n")
        self._fh.flush()
        if action == "skipped":
            self.skipped += 1
        elif action == "recovered":
            self.recovered += 1
        else:
            self.kept_without_image += 1
        # Count by the reason's kind, not its details, so the summary stays short.
        self.reasons[reason.split(":")[0][:60]] += 1

    def close(self) -> None:
        self._fh.close()


def _tsv(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


@dataclass
class IngestContext:
    """What a source needs to know while producing rows."""

    root: Path
    report: IngestReport
    known: set[str]  # ids already in the collection
    have_image: set[str]  # ids already in the collection with an image
    progress: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    # Facts a source records in its manifest entry when it has been read to the end.
    entry: dict[str, Any] = field(default_factory=dict)
    _claimed: set[str] = field(default_factory=set)

    def claim(self, item_id: str) -> bool:
        """True when this run should produce ``item_id``: not already in the collection with an
        image, and not already produced earlier in this run. Call it before costly work."""
        if item_id in self._claimed:
            self.counts["repeated_in_source"] += 1
            return False
        self._claimed.add(item_id)
        if item_id in self.have_image:
            self.counts["already_present"] += 1
            return False
        return True


class Source(Protocol):
    kind: str
    extra_fields: list[str]
    text_fields: list[str] | None

    def describe(self) -> dict[str, Any]: ...

    def rows(self, ctx: IngestContext) -> Iterator[dict[str, Any]]: ...


@dataclass
class IngestSummary:
    added: int
    images_filled: int
    skipped: int
    kept_without_image: int
    recovered: int
    already_present: int
    repeated_in_source: int
    reasons: dict[str, int]
    report_path: Path
    counts: dict[str, int]
    notes: list[str]
    total_items: int
    interrupted: bool = False

    def lines(self) -> list[str]:
        """Human-readable summary; the first line is 'N added, M skipped (see …)'."""
        first = f"{self.added} added, {self.skipped} skipped"
        if self.skipped:
            first += f" (see {self.report_path})"
        out = [first]
        if self.skipped:
            out.append("  skip reasons: " + ", ".join(f"{k} ({v})" for k, v in self.reasons.items()))
        if self.images_filled:
            out.append(f"{self.images_filled} existing items got their image")
        if self.already_present:
            out.append(f"{self.already_present} already in the collection")
        if self.repeated_in_source:
            out.append(f"{self.repeated_in_source} repeated ids in the source ignored")
        if self.recovered:
            out.append(f"{self.recovered} malformed rows recovered (see {self.report_path})")
        if self.kept_without_image:
            out.append(f"{self.kept_without_image} items kept without an image (see {self.report_path})")
        out.extend(self.notes)
        out.append(f"collection now holds {self.total_items} items")
        if self.interrupted:
            out.append(
                "interrupted: the items read so far were saved; run the same command again to continue"
            )
        return out


def existing_ids(root: Path) -> tuple[set[str], set[str]]:
    """Ids already in the collection at ``root``, and those of them that have an image.

    Reads only the id column and the image column's validity, never image bytes.
    """
    if not (root / "manifest.json").exists():
        return set(), set()
    import pyarrow.compute as pc

    from ..collection import Collection

    coll = Collection(root)
    table = coll.dataset.data
    known: set[str] = set()
    have: set[str] = set()
    ids = table.column("id")
    images = table.column("image")
    offset = 0
    for chunk in images.chunks:
        n = len(chunk)
        id_list = ids.slice(offset, n).to_pylist()
        has = pc.and_(
            chunk.is_valid(), pc.or_(chunk.field("bytes").is_valid(), chunk.field("path").is_valid())
        ).to_pylist()
        for rid, h in zip(id_list, has, strict=True):
            known.add(rid)
            if h:
                have.add(rid)
        offset += n
    return known, have


def ingest(root: str | Path, source: Source, *, progress: bool = False) -> IngestSummary:
    """Stream ``source``'s rows into the collection at ``root`` (created if missing).

    Rows are written once, in one streaming pass: nothing already written is rewritten as the
    source goes on (the collection's earlier rows are copied once per run, when it commits).
    Ids already present are skipped; an id present without an image is replaced in place when the
    source now supplies its image (e.g. a download that failed before). Every row goes through
    ``clean_row``; rows of an older collection whose text still holds HTML character references
    are repaired in place by the same commit. Ctrl-C keeps the rows read so far; a run that reads
    its source to the end is recorded as ``complete`` in its manifest entry.
    """
    from ..collection import Collection

    root = Path(root)
    known, have_image = existing_ids(root)
    repair_ids: set[str] = set()
    repairs: Callable[[set[str]], Iterator[dict[str, Any]]] | None = None
    if known and not text_decoded(Collection(root).manifest):
        repair_ids, repairs = _undecoded(root)
    report = IngestReport(root / REPORT_NAME)
    ctx = IngestContext(root=root, report=report, known=known, have_image=have_image, progress=progress)

    interrupted = False
    repaired = 0

    def gate(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal interrupted, repaired
        from_source: set[str] = set()
        try:
            for row in rows:
                rid = row["id"]
                if rid in ctx.known and (rid in ctx.have_image or not row.get("image")):
                    # Known and still without an image: nothing new to store.
                    ctx.counts["already_present"] += 1
                    continue
                if rid in repair_ids:
                    from_source.add(rid)
                yield clean_row(row)
        except KeyboardInterrupt:
            # Ctrl-C while reading the source: save the rows read so far, so a re-run continues.
            interrupted = True
        if repairs is not None:
            for row in repairs(from_source):
                repaired += 1
                yield row

    import datasets

    # Our own bar covers the rows; datasets' "Saving the dataset" bars would only add noise.
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        coll = Collection.create(
            root,
            gate(source.rows(ctx)),
            source={**source.describe(), DECODED_MARK: True},
            extra_fields=source.extra_fields,
            text_fields=source.text_fields,
            on_duplicate="replace",
        )
    finally:
        report.close()
        if bars_were_on:
            datasets.enable_progress_bars()
    last = coll.last_ingest
    if not interrupted:
        entries = list(coll.manifest.get("sources", []))
        entries[-1] = {**entries[-1], **ctx.entry, "skipped": report.skipped, "complete": True}
        coll.update_manifest(sources=entries)
    notes = list(ctx.notes)
    if repaired:
        notes.append(f"{repaired} items had HTML character references in their metadata decoded")
    return IngestSummary(
        added=int(last["added"]),
        images_filled=int(last.get("replaced", 0)) - repaired,
        skipped=report.skipped,
        kept_without_image=report.kept_without_image,
        recovered=report.recovered,
        already_present=ctx.counts["already_present"],
        repeated_in_source=ctx.counts["repeated_in_source"] + int(last["duplicates_skipped"]),
        reasons=dict(report.reasons.most_common()),
        report_path=report.path,
        counts=dict(ctx.counts),
        notes=notes,
        total_items=len(coll),
        interrupted=interrupted,
    )


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    window: int | None = None,
    inline: Callable[[T], bool] | None = None,
) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, results in input order, at most ``window`` in flight.

    The window bounds memory (each result may hold an image) while keeping every worker busy.
    Items for which ``inline(item)`` is true are cheap: they are computed in the calling thread,
    so a manifest of mostly metadata-only rows does not pay for a thread hop per row.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    window = window or workers * 4
    pool: ThreadPoolExecutor | None = None
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            if inline is not None and inline(item):
                if not pending:
                    yield fn(item)
                    continue
                done: Future[R] = Future()
                done.set_result(fn(item))
                pending.append(done)
            else:
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="illustra-ingest")
                pending.append(pool.submit(fn, item))
            while pending and (len(pending) >= window or pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def progress_bar(enabled: bool, total: int | None, desc: str, unit: str) -> Any:
    return shared_progress_bar(enabled, total, desc, unit, leave=False)
