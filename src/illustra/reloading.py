"""A file-backed object a server keeps loaded, read again when a new build replaces the file."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from .errors import NotBuilt

T = TypeVar("T")


class ReloadingFile(Generic[T]):
    """What ``load`` makes of the file at ``path()``: loaded at first use and again whenever the
    file's modification time or size changes (builds replace it atomically)."""

    def __init__(self, path: Callable[[], Path], load: Callable[[Path], T], not_built: str) -> None:
        self._path = path
        self._load = load
        self._not_built = not_built
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._value: T | None = None

    def current(self) -> T | None:
        """The loaded object, or None when the file has not been built."""
        path = self._path()
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._value = self._load(path)
                    self._stamp = stamp
        return self._value

    def require(self) -> T:
        found = self.current()
        if found is None:
            raise NotBuilt(self._not_built)
        return found
