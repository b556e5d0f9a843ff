"""The build side as one pipeline of stages:

    ingest -> embed -> picture companion -> vector index -> text index

Each stage has a ``name``, knows whether it is current for a collection (``is_current``, with the
reason when it is not) and how to build itself (``build``). ``Pipeline.run`` builds, in order,
the stages that are not current and reuses the others, so a second run rebuilds nothing and an
interrupted run continues where it stopped: every stage keeps what it finished (ingest commits
the rows read before Ctrl-C, embedding keeps its finished chunks, indexes are written atomically).

``illustra ingest``, ``embed`` and ``index`` run single stages (always building: they are asked
for explicitly); ``illustra demo`` runs the whole pipeline over the Open Clip Art source.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .collection import Collection
from .embedding_store import EmbeddingStore, embedded_models, pick_model, similarity_companion
from .sources.base import Source, complete_entry, text_decoded

Notify = Callable[[str], None]


def _quiet(_msg: str) -> None:
    return None


@dataclass(frozen=True)
class Check:
    """Whether a stage is current; ``reason`` says what is there, or why it must be built."""

    current: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.current


@dataclass
class Built:
    """What a stage's build did: a one-line ``detail`` and its result (e.g. an ``IngestSummary``)."""

    detail: str
    result: Any = None


class Stage(Protocol):
    name: str

    def is_current(self, collection: Path) -> Check: ...

    def build(self, collection: Path, progress: bool) -> Built: ...


@dataclass
class StageRun:
    name: str
    status: str  # "built" | "reused"
    seconds: float
    detail: str = ""
    result: Any = None


@dataclass
class PipelineRun:
    collection: Path
    stages: list[StageRun] = field(default_factory=list)

    @property
    def reused_everything(self) -> bool:
        return all(s.status == "reused" for s in self.stages)

    def result(self, name: str) -> Any:
        return next((s.result for s in self.stages if s.name == name), None)


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def run(
        self,
        collection: str | Path,
        *,
        progress: bool = True,
        notify: Notify = _quiet,
        force: bool = False,
    ) -> PipelineRun:
        """Build each stage that is not current (every stage when ``force``), in order.

        ``notify`` hears one line per stage before it is built, saying why.
        """
        root = Path(collection)
        run = PipelineRun(root)
        n = len(self.stages)
        for i, stage in enumerate(self.stages, start=1):
            t = time.perf_counter()
            check = Check(False, "asked for") if force else stage.is_current(root)
            if check:
                run.stages.append(StageRun(stage.name, "reused", _since(t), check.reason))
                continue
            notify(f"[{i}/{n}] {stage.name}: {check.reason}; building")
            built = stage.build(root, progress)
            run.stages.append(StageRun(stage.name, "built", _since(t), built.detail, built.result))
        return run


def _since(t: float) -> float:
    return round(time.perf_counter() - t, 3)


def _open(root: Path) -> Collection | None:
    return Collection(root) if (root / "manifest.json").is_file() else None


# -- current-state checks shared by the stages ---------------------------------------------------
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


# -- stages --------------------------------------------------------------------------------------
class IngestStage:
    """Rows of a source into the collection, through the one ingest driver.

    Current when a finished ingest of the same source is recorded and every row's text is decoded.
    ``build`` returns the driver's ``IngestSummary``.
    """

    name = "ingest"

    def __init__(self, source: Source) -> None:
        self.source = source

    def is_current(self, collection: Path) -> Check:
        coll = _open(collection)
        if coll is None:
            return Check(False, "no collection yet")
        entry = complete_entry(coll.manifest, self.source.describe())
        if entry is None:
            return Check(False, f"no finished {self.source.kind} ingest")
        if not text_decoded(coll.manifest):
            return Check(False, "metadata was ingested before HTML character references were decoded")
        return Check(True, f"{len(coll)} items already ingested")

    def build(self, collection: Path, progress: bool) -> Built:
        from .sources.base import ingest

        summary = ingest(collection, self.source, progress=progress)
        detail = f"{summary.added} images added"
        if summary.already_present:
            detail += f", {summary.already_present} already present"
        if summary.skipped:
            why = ", ".join(f"{k}: {v}" for k, v in summary.reasons.items())
            detail += f", {summary.skipped} skipped ({why}; see {summary.report_path})"
        unreadable = summary.counts.get("metadata_failures", 0)
        if unreadable:
            detail += f", {unreadable} with unreadable metadata (title from file name)"
        if summary.interrupted:
            detail += "; interrupted"
        return Built(detail, summary)


@dataclass
class EmbedOptions:
    batch_size: int | None = None
    workers: int | None = None
    chunk_rows: int | None = None
    ray: Any = None  # an embed_ray.RayEngine: embed on Ray instead of in this process


class EmbedStage:
    """Every image embedded with a model (resumable: finished chunks are kept).

    ``model`` is a name, or None for the configured default (``lite`` when that cannot be
    loaded, said through ``notify``). ``build`` returns the ``EmbedSummary``.
    """

    name = "embed"

    def __init__(
        self, model: str | None, options: EmbedOptions | None = None, *, notify: Notify = _quiet
    ) -> None:
        self.spec = model
        self.options = options or EmbedOptions()
        self.notify = notify
        self._encoder: Any = None

    def encoder(self) -> Any:
        if self._encoder is None:
            from .encoders import load_encoder

            self._encoder = load_encoder(self.spec, notify=self.notify)
        return self._encoder

    @property
    def model(self) -> str:
        """The model's name: the loaded encoder's once loaded, else the one asked for."""
        if self._encoder is not None:
            return str(self._encoder.name)
        from .encoders import resolve_model_name

        return resolve_model_name(self.spec)

    def is_current(self, collection: Path) -> Check:
        return _embedding_check(collection, self.model)

    def build(self, collection: Path, progress: bool) -> Built:
        summary = _embed(collection, self.encoder(), self.options, progress)
        return Built(f"{summary.total_vectors} vectors", summary)


class CompanionStage:
    """The picture-only companion space of the embed stage's model (lite: lite-visual), which
    answers "more like this" and search by picture; current when the model has none."""

    name = "similar"

    def __init__(self, embed: EmbedStage) -> None:
        self.embed = embed

    def companion(self) -> str | None:
        from .encoders import similarity_model_of

        return similarity_model_of(self.embed.model)

    def is_current(self, collection: Path) -> Check:
        coll = _open(collection)
        if coll is not None:
            # Known from the manifest: no need to load the model to ask for its companion.
            recorded = similarity_companion(coll, self.embed.model)
            if recorded is not None and embedding_complete(coll, recorded):
                return _embedding_check(collection, recorded)
        companion = self.companion()
        if companion is None:
            return Check(True, f"{self.embed.model} has no picture-only companion")
        return _embedding_check(collection, companion)

    def build(self, collection: Path, progress: bool) -> Built:
        from .encoders import load_encoder

        companion = self.companion()
        if companion is None:
            return Built(f"{self.embed.model} has no picture-only companion")
        summary = _embed(collection, load_encoder(companion), self.embed.options, progress)
        return Built(f"{summary.total_vectors} {companion} vectors", summary)


class VectorIndexStage:
    """A FAISS index for each model (default: every model with finished embeddings).

    ``build`` returns the list of ``build_index`` infos; with no embeddings at all it builds
    nothing and says so (a collection of catalogue text only still gets its text index).
    """

    name = "index"

    def __init__(
        self, models: Sequence[str] | None = None, kind: str | None = None, *, notify: Notify = _quiet
    ):
        self.models = list(models) if models is not None else None
        self.kind = kind
        self.notify = notify

    def _models(self, coll: Collection) -> list[str]:
        if self.models is None:
            return embedded_models(coll)
        return [pick_model(coll, m) for m in self.models]

    def is_current(self, collection: Path) -> Check:
        coll = _open(collection)
        if coll is None:
            return Check(False, "no collection yet")
        models = self._models(coll)
        stale = [m for m in models if not index_current(coll, m)]
        if stale:
            return Check(False, f"no current index for {', '.join(stale)}")
        return Check(True, f"{', '.join(models) or 'no'} index present")

    def build(self, collection: Path, progress: bool) -> Built:
        from .index import build_index

        coll = Collection(collection)
        models = self._models(coll)
        if not models:
            from .textindex import has_text_metadata

            if not has_text_metadata(coll):
                pick_model(coll, None)  # raises NotEmbedded with the standard message
            self.notify("no pictures are embedded yet: building the catalogue text index only")
        infos = []
        for m in models:
            info = build_index(coll, m, self.kind)
            self.notify(
                f"indexed {info['count']} vectors for {m} ({info['kind']}, {info['build_seconds']} s)"
            )
            infos.append({"model": m, **info})
        detail = "; ".join(f"{i['count']} {i['model']} vectors ({i['kind']})" for i in infos)
        return Built(detail or "nothing to index", infos)


class TextIndexStage:
    """The catalogue text index (BM25 keywords, and sentence vectors when ``semantic``; None:
    the ``text_semantic`` setting)."""

    name = "text"

    def __init__(self, semantic: bool | None = None, *, notify: Notify = _quiet) -> None:
        self.semantic = semantic
        self.notify = notify

    def is_current(self, collection: Path) -> Check:
        coll = _open(collection)
        if coll is None:
            return Check(False, "no collection yet")
        if not text_index_current(coll):
            return Check(False, "catalogue text index missing or out of date")
        info = coll.manifest.get("text_index") or {}
        if self.semantic is not None and bool(info.get("semantic")) != self.semantic and info:
            return Check(False, "sentence vectors " + ("wanted" if self.semantic else "not wanted"))
        return Check(True, "catalogue text index present" if info else "no catalogue text")

    def build(self, collection: Path, progress: bool) -> Built:
        from .textindex import index_hook

        coll = Collection(collection)
        index_hook(coll, self.notify, semantic=self.semantic)
        return Built("catalogue text index", Collection(collection).manifest.get("text_index"))


def _embedding_check(collection: Path, model: str) -> Check:
    coll = _open(collection)
    if coll is None:
        return Check(False, "no collection yet")
    if embedding_complete(coll, model):
        return Check(True, f"{EmbeddingStore(coll, model).entry.get('count')} vectors")
    return Check(False, f"embeddings for {model} missing or incomplete")


def _embed(collection: Path, encoder: Any, options: EmbedOptions, progress: bool) -> Any:
    from .embed import embed_collection

    if options.ray is not None:
        from .embed_ray import embed_collection_ray

        return embed_collection_ray(
            Collection(collection),
            encoder,
            options.ray,
            batch_size=options.batch_size,
            chunk_rows=options.chunk_rows,
            progress=progress,
        )
    return embed_collection(
        Collection(collection),
        encoder,
        batch_size=options.batch_size,
        workers=options.workers,
        chunk_rows=options.chunk_rows,
        progress=progress,
    )


def build_pipeline(
    source: Source,
    model: str | None,
    *,
    similarity: bool = True,
    semantic: bool | None = None,
    notify: Notify = _quiet,
) -> Pipeline:
    """The full pipeline from ``source`` to a searchable collection."""
    embed = EmbedStage(model, notify=notify)
    stages: list[Stage] = [IngestStage(source), embed]
    if similarity:
        stages.append(CompanionStage(embed))
    stages += [VectorIndexStage(notify=notify), TextIndexStage(semantic, notify=notify)]
    return Pipeline(stages)
