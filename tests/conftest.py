from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from illustra.encoders import register_encoder  # noqa: E402

from .browserkit import browser, page  # noqa: E402, F401 - fixtures for the browser tests
from .fakes import FakeEncoder  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
HOSTILE = SHARED / "data" / "hostile_images"
BL_SAMPLE = SHARED / "data" / "bl_flickr" / "bl_flickr_manifest_sample2000.tsv"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(autouse=True)
def _fake_encoder() -> None:
    register_encoder("fake", FakeEncoder)


@pytest.fixture
def hostile_dir() -> Path:
    if not HOSTILE.is_dir():
        pytest.skip("shared hostile images not present")
    return HOSTILE
