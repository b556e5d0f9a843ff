"""The progress bar every long operation shows on stderr (off when not asked for)."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(
    enabled: bool, total: int | None, desc: str, unit: str, *, leave: bool = True, smoothing: float = 0.3
) -> Any:
    """A tqdm bar on stderr; disabled when ``enabled`` is false or there is nothing to do."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not enabled or total == 0,
        dynamic_ncols=True,
        leave=leave,
        smoothing=smoothing,
    )
