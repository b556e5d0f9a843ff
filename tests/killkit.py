"""Interrupting a command the hard way: ``kill -9`` once it has written some chunks."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def kill_after_chunks(
    argv: Sequence[str],
    chunk_dir: Path,
    at_least: int = 1,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> None:
    """Run ``argv``; once ``chunk_dir`` holds ``at_least`` finished chunks, SIGKILL it. Fails if it
    finishes first or writes nothing in time."""
    proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not (chunk_dir.is_dir() and sum(p.suffix == ".npz" for p in chunk_dir.iterdir()) >= at_least):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no chunk was written in time"
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
