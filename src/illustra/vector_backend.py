"""The one interface the search service ranks through, and which backend answers a model.

``index/<model>/index.json`` says where a model's vectors are searched: the FAISS index beside it
(the default), or a Milvus collection (``"backend": "milvus"``, written by
``illustra index --backend milvus``). ``search`` and ``serve`` read it, so they need no flag.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .collection import Collection
from .errors import CollectionError
from .index import VectorIndex, index_dir, load_index

if TYPE_CHECKING:
    from .search.scope import Scope


class VectorBackend(Protocol):
    """Top-n vector ranking of one model's vectors under a query's scope."""

    model: str
    kind: str
    dim: int

    def __len__(self) -> int: ...

    @property
    def rows(self) -> np.ndarray:
        """Dataset row of each stored vector, ascending (read from the collection's embeddings)."""
        ...

    @property
    def vectors(self) -> np.ndarray:
        """The stored vectors, position by position (memory-mapped from the collection)."""
        ...

    def position_of_row(self, row: int) -> int | None: ...

    def rank(self, vec: np.ndarray, n: int, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (scores, dataset rows) for a query vector within ``scope``, best first, ties
        broken by row, so that pages cut from different depths agree."""
        ...

    def vectors_of(self, rows: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vector of each of ``rows`` that has one."""
        ...


class FaissBackend(VectorIndex):
    """A loaded FAISS index ranking within the scope's row mask."""

    @classmethod
    def wrap(cls, index: VectorIndex) -> FaissBackend:
        return cls(**{f.name: getattr(index, f.name) for f in fields(index)})

    def rank(self, vec: np.ndarray, n: int, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        mask = scope.mask()
        allowed = None if mask is None else self.allowed_positions(mask)
        scores, pos = self.search(vec, n, allowed)
        return scores, self.rows[pos]

    def vectors_of(self, rows: Sequence[int]) -> dict[int, np.ndarray]:
        found = {int(r): p for r in rows if (p := self.position_of_row(int(r))) is not None}
        order = sorted(found, key=found.__getitem__)
        vecs = self.take(np.asarray([found[r] for r in order], np.int64))
        return dict(zip(order, vecs, strict=True))


def index_info(collection: Collection, model: str) -> dict[str, Any] | None:
    """The model's ``index.json``, or None when there is none."""
    path = index_dir(collection, model) / "index.json"
    if not path.is_file():
        return None
    try:
        info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CollectionError(f"{path} is unreadable: {exc}") from exc
    return info


def load_backend(collection: Collection, model: str) -> VectorBackend:
    """The backend that answers ``model``'s vector searches, as its ``index.json`` records."""
    info = index_info(collection, model)
    if info is not None and info.get("backend") == "milvus":
        from .milvus_index import MilvusIndex

        return MilvusIndex.open(collection, model, info)
    return FaissBackend.wrap(load_index(collection, model))
