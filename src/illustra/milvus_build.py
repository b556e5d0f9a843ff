"""Building a model's Milvus collection: ``illustra index --backend milvus``.

The vectors and the collection's filterable fields (lower-cased as the filter engine compares
them, the year with its unknown-year sentinel, the lower-cased title) go into a Milvus collection
with a vector index chosen by size (exact FLAT for small collections, else HNSW or IVF_SQ8 by the
memory budget, as for FAISS) and inverted indexes over the filter fields. The model's
``index.json`` then records ``"backend": "milvus"``, the URI and the collection's name, so that
``search``, ``serve`` and ``eval`` rank in Milvus through the same service as with FAISS.

Re-indexing never serves a half-built collection: each build goes into a new Milvus collection
(``<name>__b<build>``); only when it is complete, indexed and loaded does the alias ``<name>``
move to it (one step for every process searching it), ``index.json`` name it, and the previous
one get dropped. An interrupted build resumes from ``milvus_build.json``: rows are inserted in
order, and the rows past the last recorded batch are deleted before continuing, so each vector
is stored exactly once.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .collection import Collection, now_iso, write_json_atomic
from .embedding_store import EmbeddingStore
from .errors import BackendUnavailable, BadInput, IndexMissing, ModelMismatch
from .index import index_dir, plan_index
from .milvus_client import (
    PROPERTY,
    call,
    connect,
    exists,
    first_line,
    is_server_uri,
    normalise_uri,
    pymilvus_module,
    recorded,
    serving,
)
from .milvus_filters import NAME_RE, ROW, TITLE, VECTOR, YEAR, arrow_table, field_names, lowered_column
from .milvus_index import BACKEND
from .search.filters import NOT_FILTERABLE, UNKNOWN_YEAR

DEFAULT_LITE_FILE = "milvus.db"  # in the collection's index/ folder when no --milvus-uri is given

BUILD_STATE = "milvus_build.json"

# Collections up to this size get an exact FLAT index (Milvus Lite scans a segment in Python-driven
# numpy, about 80 ms per 20k 512-d vectors on this project's machine: exact stays cheap only when small).
FLAT_MAX = 10_000

HNSW_BUILD = {"M": 32, "efConstruction": 80}

INSERT_BYTES = 16_000_000  # vector bytes per insert request

VARCHAR_MAX = 65_535  # longest Milvus VARCHAR (bytes); a longer value is stored as null

KINDS = {"flat": "FLAT", "hnsw": "HNSW", "ivfsq": "IVF_SQ8"}


def _sanitise(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_") or "x"


def default_name(collection: Collection, model: str) -> str:
    return f"illustra_{_sanitise(collection.root.name)[:80]}_{_sanitise(model)[:80]}"


def collection_names(models: Sequence[str], name: str | None, collection: Collection) -> dict[str, str]:
    """The Milvus collection (alias) of each model: ``name`` for the first, ``name_<model>`` for
    the others (a picture-only companion such as ``lite-visual``); by default from the collection's
    folder and the model."""
    out = {}
    for i, m in enumerate(models):
        n = (
            default_name(collection, m)
            if name is None
            else (name if i == 0 else f"{name}_{_sanitise(m)[:80]}")
        )
        if not NAME_RE.match(n) or len(n) > 200:
            raise BadInput(
                f"{n!r} is not a usable Milvus collection name: letters, digits and underscores, "
                "starting with a letter or underscore, at most 200 characters"
            )
        out[m] = n
    return out


def filterable_fields(collection: Collection) -> list[str]:
    """The fields a search can filter on (the same rule as ``SearchService.filterable_fields``)."""
    return [
        f for f in collection.metadata_fields if f not in NOT_FILTERABLE and not f.endswith(("_path", "_url"))
    ]


def _varchar_len(col: pa.Array) -> int:
    lengths = pc.binary_length(col)
    longest = pc.max(lengths).as_py()
    return int(min(VARCHAR_MAX, max(1, longest or 1)))


def _fingerprint(collection: Collection, store: EmbeddingStore) -> dict[str, Any]:
    entry = store.entry
    return {
        "model": store.model,
        "dim": int(entry.get("dim", 0)),
        "count": int(entry.get("count", 0)),
        "embedded": entry.get("updated"),
        "items": len(collection),
        # Which Illustra collection: copies share their creation time, so the folder counts too.
        "collection": [str(collection.root.resolve()), collection.manifest.get("created")],
    }


def _index_params(kind: str, n: int, d: int) -> tuple[str, dict[str, Any]]:
    """Milvus index type and build parameters for ``n`` vectors: exact FLAT for small collections,
    else by the memory budget as for FAISS (HNSW, then IVF_SQ8: Milvus Lite has no product
    quantisation)."""
    if kind == "auto" and n <= FLAT_MAX:
        kind = "flat"
    elif kind == "auto":
        kind = "ivfsq" if plan_index(n, d).kind in ("ivfsq", "ivfpq") else "hnsw"
    if kind not in KINDS:
        raise BadInput(f"the Milvus backend builds {', '.join(KINDS)} indexes, not {kind!r}")
    if kind == "hnsw":
        return KINDS[kind], dict(HNSW_BUILD)
    if kind == "ivfsq":
        nlist = int(max(16, min(65536, 2 * math.sqrt(n))))
        return KINDS[kind], {"nlist": nlist}
    return KINDS[kind], {}


def _schema(
    pymilvus: Any, d: int, fields: dict[str, str], lengths: dict[str, int], title_len: int | None
) -> Any:
    dt = pymilvus.DataType
    schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ROW, dt.INT64, is_primary=True)
    schema.add_field(VECTOR, dt.FLOAT_VECTOR, dim=d)
    schema.add_field(YEAR, dt.INT64)
    if title_len is not None:
        schema.add_field(TITLE, dt.VARCHAR, max_length=title_len, nullable=True)
    for name, milvus_name in fields.items():
        schema.add_field(milvus_name, dt.VARCHAR, max_length=lengths[name], nullable=True)
    return schema


class _Columns:
    """The per-row values stored beside each vector, read once from the Arrow table."""

    def __init__(self, collection: Collection) -> None:
        table = arrow_table(collection)
        self.year = (
            table.column("year").fill_null(UNKNOWN_YEAR).to_numpy().astype(np.int64)
            if "year" in table.column_names
            else None
        )
        self.title = lowered_column(table, "title") if "title" in table.column_names else None
        self.text: dict[str, pa.Array] = {}
        for name in filterable_fields(collection):
            col = lowered_column(table, name)
            if col is not None:
                self.text[name] = col
        self.fields = field_names(list(self.text))
        self.lengths = {name: _varchar_len(col) for name, col in self.text.items()}
        self.title_len = _varchar_len(self.title) if self.title is not None else None

    def records(self, rows: np.ndarray, vecs: np.ndarray) -> list[dict[str, Any]]:
        idx = pa.array(rows)
        cols: dict[str, list[Any]] = {}
        for name, col in self.text.items():
            cols[self.fields[name]] = _fit(col.take(idx).to_pylist(), self.lengths[name])
        if self.title is not None and self.title_len is not None:
            cols[TITLE] = _fit(self.title.take(idx).to_pylist(), self.title_len)
        years = self.year[rows] if self.year is not None else np.full(len(rows), UNKNOWN_YEAR, np.int64)
        out = []
        for i, r in enumerate(rows.tolist()):
            rec: dict[str, Any] = {ROW: int(r), VECTOR: vecs[i], YEAR: int(years[i])}
            for k, values in cols.items():
                rec[k] = values[i]
            out.append(rec)
        return out


def _fit(values: list[Any], limit: int) -> list[Any]:
    # Longer than Milvus can hold: stored as null (it then matches no filter value).
    return [v if v is None or len(v.encode("utf-8")) <= limit else None for v in values]


def build_milvus_index(
    collection: Collection,
    model: str,
    uri: str,
    name: str,
    kind: str = "auto",
    *,
    notify: Callable[[str], None] = lambda _m: None,
    progress: bool = False,
) -> dict[str, Any]:
    """Build (or resume building) ``model``'s Milvus collection and switch ``name`` to it."""
    pymilvus = pymilvus_module()
    uri = normalise_uri(uri)
    store = EmbeddingStore(collection, model)
    vecs, rows = store.vectors(), store.rows()
    n, d = vecs.shape
    if n == 0:
        raise IndexMissing(f"{collection.root} has no embedded images for model {model!r}; nothing to index")
    client = connect(uri)
    fp = _fingerprint(collection, store)
    _refuse_foreign(client, name, fp)
    columns = _Columns(collection)
    index_type, build_params = _index_params(kind, n, d)
    out = index_dir(collection, model)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / BUILD_STATE
    state = _resumable(client, state_path, uri, name, fp, columns.fields)
    started = time.perf_counter()
    if state is None:
        build = time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(3)
        physical = f"{name}__b{build}"
        state = {
            "uri": uri,
            "name": name,
            "physical": physical,
            "build": build,
            "fingerprint": fp,
            "fields": columns.fields,
            "done": 0,
            "started": now_iso(),
        }
        record = {
            "model": model,
            "dim": d,
            "build": build,
            "count": n,
            "collection": fp["collection"],
        }
        schema = _schema(pymilvus, d, columns.fields, columns.lengths, columns.title_len)
        call(
            "create a collection",
            client.create_collection,
            physical,
            schema=schema,
            properties={PROPERTY: json.dumps(record)},
        )
        write_json_atomic(state_path, state)
    else:
        physical = state["physical"]
        notify(f"resuming the Milvus build of {model} at {state['done']} of {n} vectors")
        if state["done"] < n:  # a batch inserted after the last recorded one is inserted again
            call(
                "delete a partial batch",
                client.delete,
                physical,
                filter=f"{ROW} >= {int(rows[state['done']])}",
            )
    _insert(client, physical, state, state_path, rows, vecs, columns, progress)
    inserted = time.perf_counter()
    call("flush the collection", client.flush, physical)
    _build_indexes(client, physical, index_type, build_params, [YEAR, *columns.fields.values()])
    call("load the collection", client.load_collection, physical)
    built = time.perf_counter()
    if "previous" not in state:  # recorded first, so that a run killed after the switch still drops it
        state["previous"] = serving(client, name)
        write_json_atomic(state_path, state)
    _switch(client, name, physical)
    previous = state["previous"]
    info = {
        "backend": BACKEND,
        "model": model,
        "dim": d,
        "kind": f"milvus-{index_type.lower()}",  # as `illustra info` and /api/collection show it
        "count": n,
        "params": build_params,
        "milvus": {
            "uri": uri,
            "collection": name,
            "physical": physical,
            "build": state["build"],
            "index_type": index_type,
            "fields": state["fields"],
            "title": columns.title is not None,
        },
        "built": now_iso(),
        "build_seconds": round(built - started, 3),
        "insert_seconds": round(inserted - started, 3),
        "index_seconds": round(built - inserted, 3),
    }
    write_json_atomic(out / "index.json", info)
    collection.update_manifest(indexes={model: info})
    if previous and previous != physical and exists(client, previous):
        call("drop the previous collection", client.drop_collection, previous)
    state_path.unlink(missing_ok=True)
    return info


def _build_indexes(
    client: Any, physical: str, index_type: str, build_params: dict[str, Any], scalars: Sequence[str]
) -> None:
    """The vector index, and inverted indexes over the exact-match fields and the year (filters
    read them instead of evaluating every row: about 3x faster in Milvus Lite). One field at a
    time, each only if missing, so that a resumed build, or a request the client sent again after
    a dropped connection, does not fail on an index that exists."""
    pymilvus = pymilvus_module()
    wanted = [(VECTOR, {"index_type": index_type, "metric_type": "IP", "params": build_params})]
    wanted += [(f, {"index_type": "INVERTED"}) for f in scalars]
    for field, spec in wanted:
        if field in call("list indexes", client.list_indexes, physical):
            continue
        params = client.prepare_index_params()
        params.add_index(field_name=field, **spec)
        try:
            client.create_index(physical, params)
        except pymilvus.MilvusException as exc:
            if field not in call("list indexes", client.list_indexes, physical):
                raise BackendUnavailable(
                    f"Milvus could not build the index of {field}: {first_line(exc)}"
                ) from None


def _refuse_foreign(client: Any, name: str, fp: dict[str, Any]) -> None:
    """A name that serves another model, dimension or Illustra collection is not taken over."""
    if not exists(client, name):
        return
    rec = recorded(client, name)
    if rec is None:
        raise BadInput(
            f"the Milvus collection {name!r} was not made by Illustra; choose another --milvus-collection"
        )
    if rec.get("model") != fp["model"] or rec.get("_dim") != fp["dim"]:
        raise ModelMismatch(
            f"the Milvus collection {name!r} holds vectors of {rec.get('model')!r} (dim {rec.get('_dim')}), "
            f"not {fp['model']!r} (dim {fp['dim']}); choose another --milvus-collection"
        )
    if rec.get("collection") != fp["collection"]:
        raise BadInput(
            f"the Milvus collection {name!r} holds the vectors of another Illustra collection "
            f"({(rec.get('collection') or ['?'])[0]}); choose another --milvus-collection"
        )


def _resumable(
    client: Any, path: Path, uri: str, name: str, fp: dict[str, Any], fields: dict[str, str]
) -> dict[str, Any] | None:
    """The interrupted build to resume, if it built the same vectors into the same place; a stale
    one's half-built collection is dropped."""
    if not path.is_file():
        return None
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    same = (state.get("uri"), state.get("name"), state.get("fingerprint"), state.get("fields")) == (
        uri,
        name,
        fp,
        fields,
    )
    physical = str(state.get("physical", ""))
    if same and physical and exists(client, physical):
        return state
    stale = state.get("uri") == uri and physical and NAME_RE.match(physical) and exists(client, physical)
    if stale and serving(client, str(state.get("name", ""))) != physical:
        call("drop an unfinished collection", client.drop_collection, physical)
    return None


def _insert(
    client: Any,
    physical: str,
    state: dict[str, Any],
    state_path: Path,
    rows: np.ndarray,
    vecs: np.ndarray,
    columns: _Columns,
    progress: bool,
) -> None:
    from tqdm import tqdm

    n, d = vecs.shape
    batch = max(64, INSERT_BYTES // (4 * d))
    done = int(state["done"])
    with tqdm(total=n, initial=done, unit="vec", desc="milvus", disable=not progress, leave=False) as bar:
        while done < n:
            end = min(n, done + batch)
            v = np.ascontiguousarray(vecs[done:end], dtype=np.float32)
            call("insert vectors", client.insert, physical, columns.records(rows[done:end], v))
            bar.update(end - done)
            done = end
            state["done"] = done
            write_json_atomic(state_path, state)


def _switch(client: Any, name: str, physical: str) -> None:
    """Point alias ``name`` at ``physical`` (one atomic step for every process searching it)."""
    current = serving(client, name)
    if current is None:
        call("create the alias", client.create_alias, physical, name)
    elif current != physical:
        call("switch the alias", client.alter_alias, physical, name)


class MilvusIndexStage:
    """``illustra index --backend milvus``: each model's vectors into its Milvus collection."""

    name = "index"

    def __init__(
        self,
        models: Sequence[str] | None,
        uri: str | None,
        collection_name: str | None = None,
        kind: str | None = None,
        *,
        notify: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.models = list(models) if models is not None else None
        self.uri = uri
        self.collection_name = collection_name
        self.kind = kind or "auto"
        self.notify = notify

    def is_current(self, collection: Path) -> Any:
        from .pipeline import Check

        return Check(False, "asked for")

    def build(self, collection: Path, progress: bool) -> Any:
        from .embedding_store import embedded_models, pick_model
        from .pipeline import Built

        coll = Collection(collection)
        models = embedded_models(coll) if self.models is None else [pick_model(coll, m) for m in self.models]
        if not models:
            pick_model(coll, None)  # raises NotEmbedded with the standard message
        # Searchable models first, so that --milvus-collection names the one text queries use.
        image_only = {m for m, e in coll.manifest.get("embeddings", {}).items() if e.get("image_only")}
        models.sort(key=lambda m: m in image_only)
        uri = self.uri or str(coll.root / "index" / DEFAULT_LITE_FILE)
        names = collection_names(models, self.collection_name, coll)
        infos = []
        for m in models:
            info = build_milvus_index(
                coll, m, uri, names[m], self.kind, notify=self.notify, progress=progress
            )
            self.notify(
                f"indexed {info['count']} vectors for {m} in Milvus collection {names[m]!r} "
                f"({info['milvus']['index_type']}, {info['build_seconds']} s)"
            )
            infos.append({"model": m, **info})
        detail = "; ".join(
            f"{i['count']} {i['model']} vectors (Milvus {i['milvus']['index_type']})" for i in infos
        )
        return Built(detail, infos)


def check_shared(collection: Collection, models: Sequence[str]) -> None:
    """Several server processes need a Milvus server: a Milvus Lite file opens in one process."""
    from .vector_backend import index_info

    for m in models:
        info = index_info(collection, m) or {}
        uri = str((info.get("milvus") or {}).get("uri", ""))
        if info.get("backend") == BACKEND and uri and not is_server_uri(uri):
            raise BadInput(
                "serve --workers needs a Milvus server (--milvus-uri http://HOST:19530 when indexing): "
                "a Milvus Lite file opens in one process only"
            )
