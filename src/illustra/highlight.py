"""Matched catalogue terms as safe highlighted segments.

A field value becomes a list of ``{"text": str, "match": bool}`` segments. Front ends escape each
segment's text and wrap matches (``to_html`` does exactly that), so a title holding markup can
never inject any. The text index marks the words whose stem the query looks for
(``highlight_words``); ``highlight_terms`` marks given words, for front ends that only have
``explain.matched_terms``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import TypedDict

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A word: a run of letters and digits; punctuation, spaces and "_" separate words.
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
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _append(out: list[Segment], text: str, match: bool) -> None:
    if not text:
        return
    if out and out[-1]["match"] == match:
        out[-1]["text"] += text
    else:
        out.append({"text": text, "match": match})


def matched_words(segments: Iterable[Segment]) -> list[str]:
    """The distinct matched words of some segments, lower-cased, in order of appearance."""
    seen: dict[str, None] = {}
    for s in segments:
        if s["match"]:
            for w in WORD.findall(s["text"]):
                seen.setdefault(w.casefold(), None)
    return list(seen)


def highlight_words(text: str, is_match: Callable[[str], bool]) -> list[Segment]:
    """Segments of ``text`` marking every whole word for which ``is_match(word)`` holds."""
    out: list[Segment] = []
    pos = 0
    text = text or ""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    for m in WORD.finditer(text):
        if is_match(m.group()):
            _append(out, text[pos : m.start()], False)
            _append(out, m.group(), True)
            pos = m.end()
    _append(out, text[pos:], False)
    return out


def highlight_terms(text: str, terms: Iterable[str]) -> list[Segment]:
    """Segments of ``text`` marking every whole word equal to one of ``terms`` (ignoring case and accents)."""
    wanted = {fold(t) for t in terms if t}
    return highlight_words(text, lambda w: fold(w) in wanted)


def to_html(segments: Iterable[Segment], tag: str = "mark") -> str:
    """Escaped HTML with matches wrapped in ``<mark>`` (or another plain tag name)."""
    if not tag.isalnum():
        raise ValueError(f"not a plain tag name: {tag!r}")
    parts = []
    for s in segments:
        text = html.escape(s["text"], quote=True)
        parts.append(f"<{tag}>{text}</{tag}>" if s["match"] else text)
    return "".join(parts)
