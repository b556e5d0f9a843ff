from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from illustra import settings  # noqa: E402
from illustra.encoders import register_encoder  # noqa: E402

from .blsample import write_bl_manifest  # noqa: E402
from .browserkit import browser, offline, page  # noqa: E402, F401 - fixtures for the browser tests
from .fakes import FakeEncoder  # noqa: E402
from .hostile import write_hostile_images  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(autouse=True)
def _fake_encoder() -> None:
    register_encoder("fake", FakeEncoder)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Any:
    """Settings a command made current in this process (``--setting``, ``--text-model``) end with
    the test that ran it, as they end with the command."""
    yield
    settings.reset()


@pytest.fixture(scope="session")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Odd and hostile image files with EXPECTED.tsv (see tests/hostile.py), written once per run."""
    return write_hostile_images(tmp_path_factory.mktemp("hostile_images"))


@pytest.fixture(scope="session")
def bl_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BL Flickr manifest of 240 rows, 12 of them short (see tests/blsample.py)."""
    return write_bl_manifest(tmp_path_factory.mktemp("bl_flickr") / "bl_flickr_manifest_sample.tsv")


# A skipped test is a failed check: the suite needs everything it tests (scripts/setup.sh installs
# the system packages), so any skip makes the run fail, with the skipped tests listed.
_SKIPPED: list[tuple[str, str]] = []  # (test id, reason)


def _note_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _SKIPPED.append((report.nodeid, reason.removeprefix("Skipped: ")))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note_skip(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note_skip(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SKIPPED and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skipped = _SKIPPED
    if not skipped:
        return
    terminalreporter.section("skipped tests fail the run", sep="=", red=True, bold=True)
    for nodeid, reason in skipped:
        terminalreporter.line(f"SKIPPED {nodeid}: {reason}", red=True)
    terminalreporter.line(
        f"{len(skipped)} test(s) skipped: every test must run. Install what they need "
        "(bash scripts/setup.sh) or make them stand on their own.",
        red=True,
        bold=True,
    )
