"""Sensitive query terms: a shipped list, overridable by the collection owner.

Sources, later ones overriding earlier ones term by term (or category by category):

1. ``illustra/data/sensitive_terms.json`` (shipped; see its ``about``);
2. the ``terms_file`` setting (JSON like the shipped file's overrides, or CSV ``term,action[,category,explanation]``);
3. ``<collection>/guardrails.json`` (``{"terms": ..., "categories": ...}``).

Actions: ``note`` (a content note above the results), ``block`` (the query is refused) and
``off``. Matching is on whole words after lower-casing and stripping accents, with singular and
plural forms treated alike, so "Savages" matches "savage" but "coloured plates" does not match
"coloured {person}".
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import BadInput

ACTIONS = ("note", "block", "off")
PERSON = "{person}"
_WORD = re.compile(r"[a-z0-9]+")
_IRREGULAR = {"men": "man", "women": "woman", "people": "people", "children": "child", "thieves": "thief"}


def words_of(text: str) -> list[str]:
    """Lower-case ASCII words with accents stripped."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return _WORD.findall("".join(c for c in folded if not unicodedata.combining(c)))


def singular(word: str) -> str:
    """A rough singular: good enough to make "savages"/"savage" and "negroes"/"negro" agree.

    Both sides of a match go through it, so consistency matters more than correct English.
    """
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or word.endswith("ss"):
        return word
    if word.endswith("men"):
        return word[:-3] + "man"
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("oes", "ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class Term:
    text: str
    category: str
    action: str
    explanation: str
    words: tuple[str, ...]
    entry: str = ""  # the list entry it came from ("coloured {person}" for "coloured man")

    def message(self) -> str:
        return self.explanation.replace("{term}", self.text)


@dataclass(frozen=True)
class Match:
    term: Term
    matched: str


class TermList:
    """A compiled term list. ``match(query)`` returns the matching terms (action note or block)."""

    def __init__(self, terms: Iterable[Term]) -> None:
        self.terms = [t for t in terms if t.action != "off"]
        self._by_first: dict[str, list[Term]] = {}
        for t in self.terms:
            self._by_first.setdefault(t.words[0], []).append(t)

    def __len__(self) -> int:
        return len(self.terms)

    def match(self, query: str) -> list[Match]:
        raw = words_of(query)
        # A query word matches a term word written as it is or as its singular, so the term
        # "savage" matches "savages" while the term "natives" does not match "native plants".
        forms = [{w, singular(w)} for w in raw]
        found: dict[str, Match] = {}
        for i, fs in enumerate(forms):
            for first in fs:
                for t in self._by_first.get(first, []):
                    n = len(t.words)
                    if i + n <= len(forms) and all(t.words[j] in forms[i + j] for j in range(n)):
                        found.setdefault(t.text, Match(t, " ".join(raw[i : i + n])))
        # "halfcaste" for "half-caste": multi-word terms also match written as one word.
        every = set().union(*forms) if forms else set()
        for t in self.terms:
            if len(t.words) > 1 and t.text not in found and "".join(t.words) in every:
                found[t.text] = Match(t, "".join(t.words))
        return list(found.values())


# -- loading --------------------------------------------------------------------------------------
def _check_action(action: Any, where: str) -> str:
    a = str(action or "").strip().lower()
    if a not in ACTIONS:
        raise BadInput(f"{where}: action must be one of {', '.join(ACTIONS)}, not {action!r}")
    return a


def shipped() -> dict[str, Any]:
    text = resources.files("illustra.data").joinpath("sensitive_terms.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def read_override_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or CSV override file into ``{"terms": [...], "categories": {...}}``."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BadInput(f"cannot read term file {p}: {exc.strerror or exc}") from exc
    if p.suffix.lower() in (".csv", ".tsv", ".txt"):
        delim = "\t" if p.suffix.lower() == ".tsv" else ","
        rows = list(csv.DictReader(raw.splitlines(), delimiter=delim))
        if rows and "term" not in rows[0]:
            raise BadInput(f"{p}: the first line must be a header with 'term' and 'action' columns")
        return {"terms": [{k: (v or "").strip() for k, v in r.items() if k} for r in rows]}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{p} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise BadInput(f"{p}: expected a JSON object with 'terms' and/or 'categories'")
    return data


def _override_entries(data: dict[str, Any], where: str) -> list[dict[str, Any]]:
    terms = data.get("terms", [])
    if isinstance(terms, dict):  # shorthand {"savage": "block"}
        return [{"term": k, "action": v} for k, v in terms.items()]
    if not isinstance(terms, list):
        raise BadInput(f"{where}: 'terms' must be a list or an object")
    out = []
    for i, e in enumerate(terms):
        if not isinstance(e, dict) or not str(e.get("term", "")).strip():
            raise BadInput(f"{where}: terms[{i}] needs a non-empty 'term'")
        out.append(e)
    return out


def build(overrides: Iterable[tuple[dict[str, Any], str]] = ()) -> TermList:
    """The shipped list with each ``(override data, where it came from)`` applied in order."""
    base = shipped()
    person_words = [str(w) for w in base.get("person_words", [])]
    categories: dict[str, dict[str, str]] = {
        name: {"action": str(c["action"]), "explanation": str(c["explanation"])}
        for name, c in base["categories"].items()
    }
    # term text -> (category, explicit action or None, explanation or None)
    entries: dict[str, tuple[str, str | None, str | None]] = {}
    for cat, terms in base["terms"].items():
        for t in terms:
            entries[str(t)] = (cat, None, None)
    for data, where in overrides:
        for name, c in (data.get("categories") or {}).items():
            if not isinstance(c, dict):
                raise BadInput(f"{where}: categories.{name} must be an object")
            cur = categories.setdefault(
                name, {"action": "note", "explanation": "'{term}' is a sensitive term."}
            )
            if "action" in c:
                cur["action"] = _check_action(c["action"], f"{where}: categories.{name}")
            if c.get("explanation"):
                cur["explanation"] = str(c["explanation"])
        for e in _override_entries(data, where):
            text = str(e["term"]).strip()
            old = entries.get(text)
            cat = str(e.get("category") or (old[0] if old else "local"))
            action = _check_action(e["action"], f"{where}: term {text!r}") if e.get("action") else None
            expl = str(e["explanation"]) if e.get("explanation") else None
            entries[text] = (cat, action or (old[1] if old else None), expl or (old[2] if old else None))
            categories.setdefault(
                cat, {"action": "note", "explanation": "'{term}' is marked as sensitive here."}
            )
    compiled: list[Term] = []
    for text, (cat, action, expl) in entries.items():
        c = categories[cat]
        act = action or c["action"]
        explanation = expl or c["explanation"]
        for variant in _expand(text, person_words):
            words = tuple(words_of(variant))
            if words:
                compiled.append(
                    Term(
                        text=variant,
                        category=cat,
                        action=act,
                        explanation=explanation,
                        words=words,
                        entry=text,
                    )
                )
    return TermList(compiled)


def _expand(text: str, person_words: list[str]) -> list[str]:
    if PERSON not in text:
        return [text]
    return [text.replace(PERSON, w) for w in person_words]
