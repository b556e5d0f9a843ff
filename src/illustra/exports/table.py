"""CSV export: one row per item, the columns a citation or a spreadsheet needs.

Catalogue text is untrusted: a cell that a spreadsheet would read as a formula (starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is prefixed with ``'``, the usual guard
against formula injection.
"""

from __future__ import annotations

import csv
import io

from .items import ExportSet

CSV_COLUMNS = ["id", "title", "creator", "date", "place", "publisher", "source URL", "score", "rank", "permalink"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def to_csv(export: ExportSet) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in export.items:
        m = item.metadata
        date = m.get("date") or (m.get("year") if m.get("year") is not None else "")
        writer.writerow(
            [
                _cell(item.id),
                _cell(m.get("title")),
                _cell(m.get("creator")),
                _cell(date),
                _cell(m.get("place")),
                _cell(m.get("publisher")),
                _cell(item.source_url),
                "" if item.score is None else f"{item.score:.6f}",
                item.rank,
                _cell(export.permalink or item.page_url),
            ]
        )
    return buf.getvalue()
