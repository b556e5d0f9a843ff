"""Interrupting a command the hard way: ``kill -9`` once it has written some chunks."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def kill_after_chunks(
    argv: Sequence[str],
    chunk_dir: Path,
    at_least: int = 1,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    and_descendants: bool = False,
) -> None:
    """Run ``argv``; once ``chunk_dir`` holds ``at_least`` finished chunks, SIGKILL it. Fails if it
    finishes first or writes nothing in time. ``and_descendants`` also kills the processes it
    started (a local Ray instance), which would otherwise linger for a while after their owner."""
    proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not (chunk_dir.is_dir() and sum(p.suffix == ".npz" for p in chunk_dir.iterdir()) >= at_least):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no chunk was written in time"
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        descendants = _descendants(proc.pid) if and_descendants else []
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        _kill_all(descendants)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _descendants(pid: int) -> list[Any]:  # psutil.Process objects
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_all(processes: list[Any]) -> None:
    import psutil

    for p in processes:
        with contextlib.suppress(psutil.Error):  # already gone
            p.kill()
