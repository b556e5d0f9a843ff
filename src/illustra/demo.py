"""The Open Clip Art demo: from nothing to a searchable collection with no model hub.

The build pipeline (``illustra.pipeline``) over the Open Clip Art source, after a check that the
Debian packages are there: packages -> ingest -> embed -> picture companion -> vector index ->
text index. Each stage is checked against the collection, so a second run rebuilds nothing and an
interrupted run resumes. Everything runs with the offline ``lite`` encoder by default. The demo
installs nothing: ``scripts/setup.sh`` installs the packages; without them it says what to run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import settings
from .errors import SourceError
from .pipeline import Built, Check, EmbedStage, Notify, Pipeline, PipelineRun, build_pipeline
from .sources import openclipart

DEMO_DIRNAME = "demo-openclipart"
DEFAULT_MODEL = "lite"
# Shown after a build; everyday subjects the clip art covers.
EXAMPLE_QUERIES = ("a cat", "a sailing ship", "a red apple", "a musical instrument", "a map of the world")


def _quiet(_msg: str) -> None:
    return None


def default_collection_dir() -> Path:
    return Path(str(settings.get("data_dir"))) / DEMO_DIRNAME


# -- Debian packages ----------------------------------------------------------------------------
def packages_installed(png_root: Path | None = None, svg_root: Path | None = None) -> bool:
    png = png_root if png_root is not None else openclipart.default_png_root()
    svg = svg_root if svg_root is not None else openclipart.default_svg_root()
    return png.is_dir() and svg.is_dir()


def install_command() -> str:
    return "sudo apt-get install -y " + " ".join(openclipart.PACKAGES)


@dataclass
class PackagesCheck:
    """The first stage: the Debian packages must be there. It cannot build itself: it says, in
    one line, what to run (``scripts/setup.sh`` installs them)."""

    png_root: Path
    svg_root: Path
    name: str = "packages"

    def is_current(self, collection: Path) -> Check:
        if packages_installed(self.png_root, self.svg_root):
            return Check(True, "present")
        return Check(False, f"{self.png_root if not self.png_root.is_dir() else self.svg_root} is missing")

    def build(self, collection: Path, progress: bool) -> Built:
        missing = self.png_root if not self.png_root.is_dir() else self.svg_root
        raise SourceError(f"Open Clip Art is not installed ({missing} is missing); run: {install_command()}")


@dataclass
class DemoBuild:
    """A demo build: the pipeline's run and the model its vectors came from."""

    run: PipelineRun
    model: str

    @property
    def collection(self) -> Path:
        return self.run.collection

    @property
    def stages(self) -> list[Any]:
        return self.run.stages

    @property
    def reused_everything(self) -> bool:
        return self.run.reused_everything


def demo_pipeline(
    *,
    model: str = DEFAULT_MODEL,
    limit: int | None = None,
    png_root: Path | None = None,
    svg_root: Path | None = None,
    notify: Notify = _quiet,
) -> Pipeline:
    png = Path(png_root) if png_root is not None else openclipart.default_png_root()
    svg = Path(svg_root) if svg_root is not None else openclipart.default_svg_root()
    pipeline = build_pipeline(openclipart.OpenClipArtSource(png, svg, limit=limit), model, notify=notify)
    pipeline.stages.insert(0, PackagesCheck(png, svg))
    return pipeline


def build_demo(
    root: str | Path | None = None,
    *,
    model: str = DEFAULT_MODEL,
    limit: int | None = None,
    progress: bool = True,
    notify: Notify = _quiet,
    png_root: Path | None = None,
    svg_root: Path | None = None,
) -> DemoBuild:
    """Ingest, embed and index the Open Clip Art demo collection, reusing finished stages."""
    root = Path(root) if root is not None else default_collection_dir()
    pipeline = demo_pipeline(model=model, limit=limit, png_root=png_root, svg_root=svg_root, notify=notify)
    packages = pipeline.stages[0]
    if not packages.is_current(root):
        packages.build(root, progress)  # says, in one line, what to run
    run = pipeline.run(root, progress=progress, notify=notify)
    embed = next(s for s in pipeline.stages if isinstance(s, EmbedStage))
    return DemoBuild(run, embed.model)


def example_results(
    root: str | Path, model: str, queries: Sequence[str] = EXAMPLE_QUERIES, k: int = 5
) -> list[dict[str, Any]]:
    """Top ``k`` results of a few example queries, as ``{"query", "results", "notices"}``."""
    from .search import Mode, SearchService

    service = SearchService(root, model)
    out = []
    for q in queries:
        resp = service.search_text(q, k=k, mode=Mode.VISUAL)
        out.append(
            {
                "query": q,
                "results": [
                    {"id": h.id, "score": h.score, "title": h.metadata.get("title")} for h in resp.results
                ],
                "notices": list(resp.notices),
            }
        )
    return out
