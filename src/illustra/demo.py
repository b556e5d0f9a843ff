"""The Open Clip Art demo: from nothing to a searchable collection with no model hub.

Stages, each checked against the collection's manifest so a second run reuses what is built and
an interrupted run resumes: Debian packages present -> ingest complete -> embeddings complete ->
index present. Everything runs with the offline ``lite`` encoder by default.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import settings
from .collection import Collection
from .embedding_store import EmbeddingStore
from .errors import SourceError
from .sources import openclipart

DEMO_DIRNAME = "demo-openclipart"
DEFAULT_MODEL = "lite"
# Shown after a build; everyday subjects the clip art covers.
EXAMPLE_QUERIES = ("a cat", "a sailing ship", "a red apple", "a musical instrument", "a map of the world")

Notify = Callable[[str], None]


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


def ensure_packages(
    *,
    png_root: Path | None = None,
    svg_root: Path | None = None,
    notify: Notify = _quiet,
    install: bool | None = None,
) -> str:
    """Make sure the Open Clip Art packages are installed: 'present' or 'installed'.

    When ``install`` (default: when running as root), installs them with apt-get; otherwise
    raises ``SourceError`` naming the command to run.
    """
    png_root = png_root if png_root is not None else openclipart.default_png_root()
    svg_root = svg_root if svg_root is not None else openclipart.default_svg_root()
    if packages_installed(png_root, svg_root):
        return "present"
    if shutil.which("apt-get") is None:
        raise SourceError(
            f"the demo needs the Debian packages {' and '.join(openclipart.PACKAGES)} "
            f"({png_root} is missing) and this system has no apt-get"
        )
    if install is None:
        install = os.geteuid() == 0
    if not install:
        raise SourceError(f"Open Clip Art is not installed ({png_root} is missing); run: {install_command()}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", *openclipart.PACKAGES]
    notify("installing " + " ".join(openclipart.PACKAGES) + " with apt-get")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        # A fresh system may have no package lists yet.
        subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not packages_installed(png_root, svg_root):
        last = (proc.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise SourceError(f"'{' '.join(cmd)}' failed (exit {proc.returncode}): {last[0]}")
    return "installed"


# -- stages -------------------------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    status: str  # "built" | "reused"
    seconds: float
    detail: str = ""


@dataclass
class DemoBuild:
    collection: Path
    model: str
    stages: list[Stage] = field(default_factory=list)

    @property
    def reused_everything(self) -> bool:
        return all(s.status == "reused" for s in self.stages)


def embedding_complete(coll: Collection, model: str) -> bool:
    """Embeddings for ``model`` are finished and were made over every row the collection now has."""
    store = EmbeddingStore(coll, model)
    return store.complete and int(store.entry.get("rows", -1)) == len(coll)


def index_current(coll: Collection, model: str) -> bool:
    """The FAISS index for ``model`` exists and covers the current embeddings."""
    from .index import index_dir

    info = coll.manifest.get("indexes", {}).get(model)
    emb = coll.manifest.get("embeddings", {}).get(model, {})
    if not info or not (index_dir(coll, model) / "index.faiss").is_file():
        return False
    return int(info.get("count", -1)) == int(emb.get("count", -2))


def text_index_current(coll: Collection) -> bool:
    """The catalogue text index exists and describes the collection's current rows."""
    from .textindex import fingerprint, has_text_metadata, text_dir

    info = coll.manifest.get("text_index")
    if not info:
        return not has_text_metadata(coll)
    return (text_dir(coll) / "textindex.json").is_file() and info.get("fingerprint") == fingerprint(
        coll, coll.text_fields
    )


def build_demo(
    root: str | Path | None = None,
    *,
    model: str = DEFAULT_MODEL,
    limit: int | None = None,
    progress: bool = True,
    notify: Notify = _quiet,
    after_index: Callable[[Collection], None] | None = None,
    install: bool | None = None,
    png_root: Path | None = None,
    svg_root: Path | None = None,
) -> DemoBuild:
    """Ingest, embed and index the Open Clip Art demo collection, reusing finished stages.

    ``after_index(collection)`` builds any further indexes (the CLI passes `illustra index`'s
    hooks); it runs whenever the catalogue text index is missing or out of date.
    """
    root = Path(root) if root is not None else default_collection_dir()
    build = DemoBuild(collection=root, model=model)

    t = time.perf_counter()
    status = ensure_packages(png_root=png_root, svg_root=svg_root, notify=notify, install=install)
    build.stages.append(Stage("packages", "built" if status == "installed" else "reused", _since(t), status))

    t = time.perf_counter()
    report = openclipart.ingest_openclipart(
        root, limit=limit, png_root=png_root, svg_root=svg_root, progress=progress
    )
    if report.skipped:
        build.stages.append(
            Stage("ingest", "reused", _since(t), f"{len(Collection(root))} images already ingested")
        )
    else:
        detail = f"{report.added} images added"
        if report.already_present:
            detail += f", {report.already_present} already present"
        failed = sum(report.image_failures.values())
        if failed:
            why = ", ".join(f"{k}: {v}" for k, v in report.image_failures.items())
            detail += f", {failed} skipped ({why}; see {report.report_path})"
        if report.metadata_failures:
            detail += f", {report.metadata_failures} with unreadable SVG metadata (title from file name)"
        build.stages.append(Stage("ingest", "built", _since(t), detail))

    coll = Collection(root)
    t = time.perf_counter()
    if embedding_complete(coll, model):
        build.stages.append(
            Stage("embed", "reused", _since(t), f"{EmbeddingStore(coll, model).entry.get('count')} vectors")
        )
    else:
        from .embed import embed_collection
        from .encoders import load_encoder

        encoder = load_encoder(model, notify=notify)
        model = build.model = encoder.name
        embed_collection(coll, encoder, progress=progress)
        coll = Collection(root)
        build.stages.append(
            Stage("embed", "built", _since(t), f"{EmbeddingStore(coll, model).entry.get('count')} vectors")
        )

    t = time.perf_counter()
    if index_current(coll, model):
        build.stages.append(Stage("index", "reused", _since(t), "index present"))
    else:
        from .index import build_index

        info = build_index(coll, model)
        build.stages.append(Stage("index", "built", _since(t), f"{info['count']} vectors ({info['kind']})"))

    _similarity_stage(build, root, model, progress)

    if after_index is not None:
        # The other indexes `illustra index` builds (the catalogue text index for hybrid search).
        coll = Collection(root)
        t = time.perf_counter()
        if text_index_current(coll):
            build.stages.append(Stage("text", "reused", _since(t), "catalogue text index present"))
        else:
            after_index(coll)
            build.stages.append(Stage("text", "built", _since(t), "catalogue text index"))
    return build


def _similarity_stage(build: Any, root: Path, model: str, progress: bool) -> None:
    """The model's picture-only space for "more like this" (lite: lite-visual), embedded and indexed."""
    from .encoders import load_encoder, similarity_model_of

    t = time.perf_counter()
    companion = similarity_model_of(model)
    if companion is None:
        return
    coll = Collection(root)
    if embedding_complete(coll, companion) and index_current(coll, companion):
        build.stages.append(Stage("similar", "reused", _since(t), f"{companion} index present"))
        return
    from .embed import embed_collection
    from .index import build_index

    if not embedding_complete(coll, companion):
        embed_collection(coll, load_encoder(companion), progress=progress)
    info = build_index(Collection(root), companion)
    build.stages.append(
        Stage("similar", "built", _since(t), f"{info['count']} {companion} vectors ({info['kind']})")
    )


def _since(t: float) -> float:
    return round(time.perf_counter() - t, 3)


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
