"""Runs the ``illustra`` command in a child process with the test encoders registered.

Used by tests that must kill a real ``illustra embed`` process (``python -m tests.embed_runner
embed --collection DIR --model slowfake ...``). ``slowfake`` is the deterministic fake encoder
that takes a while per batch, so a run can be interrupted half way.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import numpy as np
from PIL import Image

from illustra.encoders import register_encoder

from .fakes import FakeEncoder


class SlowFakeEncoder(FakeEncoder):
    name = "slowfake"

    def __init__(self, delay: float | None = None) -> None:
        super().__init__()
        self.delay = float(os.environ.get("SLOWFAKE_DELAY", "0.1")) if delay is None else delay
        self.images_seen = 0

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.images_seen += len(images)
        time.sleep(self.delay)
        return super().embed_images(images)


def main(argv: list[str]) -> None:
    register_encoder("fake", FakeEncoder)
    register_encoder("slowfake", SlowFakeEncoder)
    from illustra.cli import main as cli_main

    cli_main.main(args=argv, prog_name="illustra")


if __name__ == "__main__":
    main(sys.argv[1:])
