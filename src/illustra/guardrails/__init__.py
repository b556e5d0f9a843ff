"""Guardrails applied by the search service to every front end (CLI, API, web page).

``Guardrails.check_text(query)`` returns notices to show above results, or raises ``Refused``;
``Guardrails.check_upload(image)`` raises ``Refused`` for uploads that must not be searched;
``Guardrails.hidden_ids()`` lists items the collection owner has hidden.

What they do, and why (CLIP's model card puts facial recognition out of scope, and the model was
evaluated in English only):

* an uploaded photograph in which a face dominates is refused (``faces.py``): any photograph showing
  a face at portrait scale (head-and-shoulders, half-length, a small group; drawings of people are
  not refused); items already in the collection can still be used for "more like this";
* a query containing a sensitive term gets a content note, or is refused when the term is blocked
  (``terms.py``, shipped list + owner overrides in ``<collection>/guardrails.json``);
* a query that does not look English gets a notice (``language.py``);
* items the owner hid after a "report this result" are left out of every search (``feedback.py``).

All of it is on by default (setting ``guardrails``); ``face_guard`` and ``language_notice`` turn
single parts off, and ``guardrails.json`` can do the same per collection.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import BadInput, Refused
from ..settings import Settings, current
from . import terms as _terms
from .feedback import FeedbackStore
from .language import language_notice

__all__ = ["Guardrails", "FeedbackStore", "OWNER_FILE", "FACE_REFUSAL"]

OWNER_FILE = "guardrails.json"
FACE_REFUSAL = (
    "This picture looks like a photograph in which a face dominates. Searching by faces is out of "
    "scope: the model was not made or tested for recognising people, and face matching can be used "
    "to track them. Try a picture of an object or a scene, or use 'more like this' on an item in "
    "the collection."
)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _db_stamp(path: Path) -> tuple[int, int, bytes] | None:
    """mtime, size and SQLite's file change counter (header bytes 24-27, bumped by every commit)."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            fh.seek(24)
            return (st.st_mtime_ns, st.st_size, fh.read(4))
    except OSError:
        return None


class Guardrails:
    def __init__(
        self,
        collection_root: Path | str,
        enabled: bool = True,
        settings: Settings | None = None,
        *,
        face_guard: bool | None = None,
        language_notice: bool | None = None,
        terms_file: str | Path | None = None,
    ) -> None:
        self.root = Path(collection_root)
        self.enabled = enabled
        self._settings = settings
        self._face_guard = face_guard
        self._language_notice = language_notice
        self._terms_file = terms_file
        self.feedback = FeedbackStore(self.root)
        self._lock = threading.Lock()
        self._owner_cache: tuple[tuple[int, int] | None, dict[str, Any]] | None = None
        self._terms_cache: tuple[Any, _terms.TermList] | None = None
        self._hidden_cache: tuple[tuple[int, int, bytes] | None, frozenset[str]] | None = None
        # A multilingual text model embedding the queries (name, languages): the notice names them.
        self.text_model: tuple[str, list[str]] | None = None

    # -- configuration -------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self._settings if self._settings is not None else current()

    def owner_config(self) -> dict[str, Any]:
        """``<collection>/guardrails.json`` (re-read when it changes; {} when absent)."""
        path = self.root / OWNER_FILE
        stamp = _stamp(path)
        cached = self._owner_cache
        if cached is not None and cached[0] == stamp:
            return cached[1]
        data: dict[str, Any] = {}
        if stamp is not None:
            data = _terms.read_override_file(path)
        self._owner_cache = (stamp, data)
        return data

    def _flag(self, explicit: bool | None, name: str) -> bool:
        if explicit is not None:
            return explicit
        owner = self.owner_config().get(name)
        if isinstance(owner, bool):
            return owner
        return bool(self.settings[name])

    @property
    def face_guard(self) -> bool:
        return self.enabled and self._flag(self._face_guard, "face_guard")

    @property
    def language_notice(self) -> bool:
        return self.enabled and self._flag(self._language_notice, "language_notice")

    def term_list(self) -> _terms.TermList:
        """The compiled term list: shipped, then the terms_file setting, then the owner's file."""
        terms_file = (
            self._terms_file if self._terms_file is not None else (self.settings.terms_file or None)
        )
        owner_path = self.root / OWNER_FILE
        key = (str(terms_file), _stamp(Path(terms_file)) if terms_file else None, _stamp(owner_path))
        with self._lock:
            cached = self._terms_cache
            if cached is not None and cached[0] == key:
                return cached[1]
        overrides: list[tuple[dict[str, Any], str]] = []
        if terms_file:
            if not Path(terms_file).is_file():
                raise BadInput(f"the terms file {terms_file} does not exist (setting terms_file)")
            overrides.append((_terms.read_override_file(terms_file), str(terms_file)))
        owner = self.owner_config()
        if owner:
            overrides.append((owner, str(owner_path)))
        built = _terms.build(overrides)
        with self._lock:
            self._terms_cache = (key, built)
        return built

    # -- checks ----------------------------------------------------------------------------
    def check_text(self, query: str) -> list[str]:
        """Notices to show above the results; raises ``Refused`` for a blocked term."""
        if not self.enabled or not (query or "").strip():
            return []
        matches = self.term_list().match(query)
        blocked = [m for m in matches if m.term.action == "block"]
        if blocked:
            first = blocked[0].term
            raise Refused(
                f"This search was refused: the query contains a term this collection blocks. {first.message()}"
            )
        notices: list[str] = []
        seen: set[str] = set()
        for m in matches:
            msg = "Content note: " + m.term.message()
            if m.term.category not in seen and msg not in notices:
                seen.add(m.term.category)
                notices.append(msg)
        if self.language_notice:
            lang = language_notice(query, self.text_model)
            if lang:
                notices.append(lang)
        return notices

    def check_upload(self, image: Image.Image) -> None:
        """Refuse an uploaded photograph showing a face at portrait scale (setting face_min_fraction)."""
        if not self.face_guard:
            return None
        from .faces import face_dominates

        fraction = self.owner_config().get("face_min_fraction", self.settings.face_min_fraction)
        if face_dominates(image, float(fraction)) is not None:
            raise Refused(FACE_REFUSAL)
        return None

    def hidden_ids(self) -> frozenset[str]:
        """Items the owner hid; re-read only when ``feedback.sqlite`` changes."""
        stamp = _db_stamp(self.feedback.path)
        cached = self._hidden_cache
        if cached is not None and cached[0] == stamp:
            return cached[1]
        ids = self.feedback.hidden() if stamp is not None else frozenset()
        self._hidden_cache = (stamp, ids)
        return ids

    def describe(self) -> dict[str, Any]:
        """What is switched on, for the About page and ``illustra info``."""
        tl = self.term_list() if self.enabled else None
        entries = {(t.entry, t.action) for t in (tl.terms if tl is not None else [])}
        by_action: dict[str, int] = {}
        for _, action in entries:
            by_action[action] = by_action.get(action, 0) + 1
        return {
            "enabled": self.enabled,
            "face_guard": self.face_guard,
            "language_notice": self.language_notice,
            "terms": by_action,
            "owner_file": str(self.root / OWNER_FILE) if (self.root / OWNER_FILE).exists() else None,
            "hidden_items": len(self.hidden_ids()),
        }
