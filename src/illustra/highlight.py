"""Matched catalogue terms as safe highlighted segments.

A field value becomes a list of ``{"text": str, "match": bool}`` segments. Front ends escape each
segment's text and wrap matches (``to_html`` does exactly that), so a title holding markup can
never inject any. Segments come either from SQLite FTS5's ``highlight()`` output (exact, follows
the index's stemming) or from a list of matched words (``highlight_terms``).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from typing import TypedDict

# Markers FTS5 puts around matched words. Indexed text has every control character replaced by a
# space (``clean_text``), so these never occur in a stored value.
MARK_START = "\x02"
MARK_END = "\x03"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A word as SQLite's unicode61 tokenizer sees it: letters, digits and marks; "_" separates.
WORD = re.compile(r"[^\W_]+")


class Segment(TypedDict):
    text: str
    match: bool


def clean_text(value: object) -> str:
    """A metadata value as indexed: a string without control characters, whitespace kept simple."""
    if value is None:
        return ""
    return " ".join(_CONTROL.sub(" ", str(value)).split())


def fold(word: str) -> str:
    """Case- and accent-insensitive form of a word ("Égypte" -> "egypte")."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _append(out: list[Segment], text: str, match: bool) -> None:
    if not text:
        return
    if out and out[-1]["match"] == match:
        out[-1]["text"] += text
    else:
        out.append({"text": text, "match": match})


def segments_from_marked(marked: str) -> list[Segment]:
    """Parse text with MARK_START/MARK_END around matches (FTS5 ``highlight()``) into segments."""
    out: list[Segment] = []
    pos = 0
    while pos < len(marked):
        start = marked.find(MARK_START, pos)
        if start < 0:
            _append(out, marked[pos:], False)
            break
        _append(out, marked[pos:start], False)
        end = marked.find(MARK_END, start + 1)
        if end < 0:
            _append(out, marked[start + 1 :], True)
            break
        _append(out, marked[start + 1 : end], True)
        pos = end + 1
    return [
        {"text": s["text"].replace(MARK_START, "").replace(MARK_END, ""), "match": s["match"]} for s in out
    ]


def matched_words(segments: Iterable[Segment]) -> list[str]:
    """The distinct matched words of some segments, lower-cased, in order of appearance."""
    seen: dict[str, None] = {}
    for s in segments:
        if s["match"]:
            for w in WORD.findall(s["text"]):
                seen.setdefault(w.casefold(), None)
    return list(seen)


def highlight_terms(text: str, terms: Iterable[str]) -> list[Segment]:
    """Segments of ``text`` marking every whole word equal to one of ``terms`` (ignoring case and accents)."""
    wanted = {fold(t) for t in terms if t}
    out: list[Segment] = []
    pos = 0
    for m in WORD.finditer(text or ""):
        if fold(m.group()) in wanted:
            _append(out, text[pos : m.start()], False)
            _append(out, m.group(), True)
            pos = m.end()
    _append(out, (text or "")[pos:], False)
    return out


def to_html(segments: Iterable[Segment], tag: str = "mark") -> str:
    """Escaped HTML with matches wrapped in ``<mark>`` (or another plain tag name)."""
    if not tag.isalnum():
        raise ValueError(f"not a plain tag name: {tag!r}")
    parts = []
    for s in segments:
        text = html.escape(s["text"], quote=True)
        parts.append(f"<{tag}>{text}</{tag}>" if s["match"] else text)
    return "".join(parts)
