"""Public answers never show where files live on the server.

The CLI may print paths; the API and the page must not: an error message naming the collection
directory, a source record's folders or the guardrails file would tell every visitor how the
server's disk is laid out. ``Redactor`` knows the server paths of one collection and rewrites
them out of messages; ``public_about`` is the About data without them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..search.shape import is_web_url

COLLECTION_NAME = "<collection>"
SERVER_PATH = "<server path>"
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def is_server_path(value: object) -> bool:
    """An absolute file-system path (or ``file:`` URL), as opposed to a web URL or a name."""
    if not isinstance(value, str):
        return False
    v = value.strip()
    if not v or is_web_url(v):
        return False
    if v.lower().startswith("file:"):
        return True
    if v.startswith("//"):
        return False
    return v.startswith(("/", "~/", "\\\\")) or bool(_DRIVE.match(v))


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in _strings(v)]
    return []


class Redactor:
    """Rewrites the server paths of one collection out of text shown to clients."""

    def __init__(self, root: str | Path, extra: list[str] | None = None) -> None:
        self.root = Path(root)
        roots = {str(self.root), str(self.root.absolute()), str(self.root.resolve())}
        self._roots = sorted((r for r in roots if r not in ("", "/", ".")), key=len, reverse=True)
        others = {p.strip().rstrip("/") for p in (extra or []) if is_server_path(p)}
        self._others = sorted((p for p in others if len(p) > 1), key=len, reverse=True)

    @classmethod
    def for_collection(cls, collection: Any) -> Redactor:
        """Paths recorded in the manifest's source records count as server paths too."""
        sources = collection.manifest.get("sources", []) if hasattr(collection, "manifest") else []
        return cls(collection.root, [s for s in _strings(sources) if is_server_path(s)])

    def text(self, message: str) -> str:
        for root in self._roots:
            message = message.replace(root, COLLECTION_NAME)
        for other in self._others:
            message = message.replace(other, SERVER_PATH)
        return message

    def relative(self, value: str) -> str | None:
        """A path inside the collection as a path relative to it; None for any other path."""
        for root in self._roots:
            if value.startswith(root + "/"):
                return value[len(root) + 1 :]
        return None


def public_about(data: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """The About data (collection and model cards, guardrails) without server paths: path fields
    and source details that are paths are left out, a file inside the collection is named
    relative to it, and the Markdown card loses its location line."""
    card = dict(data.get("collection") or {})
    card.pop("path", None)
    sources = []
    for src in card.get("sources") or []:
        src = dict(src)
        src["details"] = {k: v for k, v in (src.get("details") or {}).items() if not is_server_path(v)}
        sources.append(src)
    if "sources" in card:
        card["sources"] = sources
    out = dict(data)
    if "collection" in data:
        out["collection"] = card
    guard = data.get("guardrails")
    if isinstance(guard, dict):
        guard = dict(guard)
        owner = guard.get("owner_file")
        if isinstance(owner, str):
            guard["owner_file"] = redactor.relative(owner) or Path(owner).name
        out["guardrails"] = guard
    md = data.get("markdown")
    if isinstance(md, str):
        out["markdown"] = _public_markdown(md, redactor)
    return _drop_paths(out, redactor)


def _public_markdown(md: str, redactor: Redactor) -> str:
    lines = []
    for line in md.splitlines():
        if line.startswith("- **Location:**"):
            continue
        # "(png_root: /usr/share/..., limit: 50)": a detail whose value is a path goes entirely.
        line = re.sub(r"\b[\w-]+: (?:/|~/|file:)[^,)\s]*(?:, )?", "", line).replace(" ()", "")
        lines.append(redactor.text(line))
    return "\n".join(lines) + ("\n" if md.endswith("\n") else "")


def _drop_paths(obj: Any, redactor: Redactor) -> Any:
    """Any remaining string that is a server path is left out; other text is rewritten."""
    if isinstance(obj, dict):
        return {k: _drop_paths(v, redactor) for k, v in obj.items() if not is_server_path(v)}
    if isinstance(obj, list):
        return [_drop_paths(v, redactor) for v in obj if not is_server_path(v)]
    if isinstance(obj, str):
        return redactor.text(obj)
    return obj
