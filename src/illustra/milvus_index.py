"""Milvus as the vector backend: building a model's Milvus collection and searching it.

``illustra index --backend milvus --milvus-uri PATH.db|http://HOST:19530`` puts a model's vectors
and the collection's filterable fields into a Milvus collection (Milvus Lite embedded in the
process for a ``.db`` path; the same client against a Milvus server for a URL). The model's
``index.json`` then records ``"backend": "milvus"``, the URI and the collection's name, so that
``search``, ``serve`` and ``eval`` rank in Milvus through the same service as with FAISS.

Re-indexing never serves a half-built collection: each build goes into a new Milvus collection
(``<name>__b<build>``); only when it is complete, indexed and loaded does the alias ``<name>``
move to it, ``index.json`` name it, and the previous one get dropped. A build that is interrupted
resumes from ``milvus_build.json`` (rows are inserted in order and the rows past the last
recorded batch deleted before continuing, so each vector is stored exactly once).
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .collection import Collection, now_iso, write_json_atomic
from .embedding_store import EmbeddingStore
from .errors import BackendUnavailable, BadInput, IndexMissing, ModelMismatch
from .index import index_dir, plan_index
from .milvus_filters import NAME_RE, ROW, TITLE, VECTOR, YEAR, ExpressionBuilder, field_names
from .search.filters import NOT_FILTERABLE, UNKNOWN_YEAR

if TYPE_CHECKING:
    from .search.scope import Scope

BACKEND = "milvus"
INSTALL_HINT = "pip install 'illustra[milvus]'"
DEFAULT_LITE_FILE = "milvus.db"  # in the collection's index/ folder when no --milvus-uri is given
BUILD_STATE = "milvus_build.json"
PROPERTY = "illustra"  # collection property holding what the collection was built from
# Collections up to this size get an exact FLAT index (Milvus Lite scans a segment in Python-driven
# numpy, about 80 ms per 20k 512-d vectors on this project's machine: exact stays cheap only when small).
FLAT_MAX = 10_000
HNSW_BUILD = {"M": 32, "efConstruction": 80}
HNSW_EF = 128
# IVF_SQ8 candidates are re-ranked exactly with their float32 vectors (fetched with the hits).
SQ_RERANK = 40
MAX_TOPK = 16_384  # Milvus answers at most this many hits per search
INSERT_BYTES = 16_000_000  # vector bytes per insert request
VARCHAR_MAX = 65_535  # longest Milvus VARCHAR (bytes); a longer value is stored as null
KINDS = {"flat": "FLAT", "hnsw": "HNSW", "ivfsq": "IVF_SQ8"}
_CONNECT_LOCK = threading.Lock()
_CLIENTS: dict[str, Any] = {}


# -- connecting ------------------------------------------------------------------------------------
def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:
        raise BackendUnavailable(f"the Milvus backend needs pymilvus: {INSTALL_HINT}") from None
    # pymilvus and Milvus Lite (its gRPC server runs in this process) log every failed call with
    # its stack trace; Illustra reports failures itself, in one line.
    for name in ("pymilvus", "milvus_lite", "grpc._server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return pymilvus


def is_server_uri(uri: str) -> bool:
    return uri.strip().lower().startswith(("http://", "https://", "tcp://", "unix:"))


def normalise_uri(uri: str) -> str:
    """A server URL as given; a Milvus Lite file as an absolute path ending in ``.db``."""
    uri = uri.strip()
    if is_server_uri(uri):
        return uri
    if not uri.endswith(".db"):
        raise BadInput(
            f"--milvus-uri must be a Milvus Lite file ending in .db or http://HOST:PORT, got {uri!r}"
        )
    return str(Path(uri).expanduser().resolve())


def connect(uri: str) -> Any:
    """A client for ``uri`` (one per URI and process: Milvus Lite opens its file once)."""
    pymilvus = _pymilvus()
    uri = normalise_uri(uri)
    with _CONNECT_LOCK:
        if uri in _CLIENTS:
            return _CLIENTS[uri]
        if not is_server_uri(uri):
            try:
                import milvus_lite  # noqa: F401
            except ImportError:
                raise BackendUnavailable(f"a local Milvus file needs Milvus Lite: {INSTALL_HINT}") from None
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            client = pymilvus.MilvusClient(uri=uri, timeout=10)
        except pymilvus.MilvusException as exc:
            if is_server_uri(uri):
                raise BackendUnavailable(f"cannot reach Milvus at {uri}: {_first_line(exc)}") from None
            raise BackendUnavailable(
                f"cannot open the Milvus Lite file {uri}: another process may hold it (Milvus Lite opens "
                "a file in one process only; for several processes run a Milvus server, e.g. "
                f"'milvus-lite server --data-dir {uri}', and use --milvus-uri http://HOST:PORT)"
            ) from None
        _CLIENTS[uri] = client
        return client


def disconnect(uri: str) -> None:
    """Close this process's client for ``uri``; a Milvus Lite file is let go of, so that another
    process can open it."""
    uri = normalise_uri(uri)
    with _CONNECT_LOCK:
        client = _CLIENTS.pop(uri, None)
    if client is not None:
        client.close()
    if not is_server_uri(uri):
        try:
            from milvus_lite.server_manager import server_manager_instance
        except ImportError:
            return
        server_manager_instance.release_server(uri)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A Milvus call whose failure becomes one line (no URI or path: it may reach API answers)."""
    pymilvus = _pymilvus()
    try:
        return fn(*args, **kwargs)
    except pymilvus.MilvusException as exc:
        raise BackendUnavailable(f"Milvus could not {what}: {_first_line(exc)}") from None


def _exists(client: Any, name: str) -> bool:
    return bool(_call("list its collections", client.has_collection, name))


def _recorded(client: Any, name: str) -> dict[str, Any] | None:
    """What an Illustra-built Milvus collection records about itself (None: not Illustra's)."""
    desc = _call(f"describe collection {name!r}", client.describe_collection, name)
    raw = (desc.get("properties") or {}).get(PROPERTY)
    try:
        rec = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        rec = None
    if isinstance(rec, dict):
        rec["_physical"] = desc.get("collection_name", name)
        rec["_dim"] = next(
            (int(f["params"]["dim"]) for f in desc.get("fields", []) if f.get("name") == VECTOR), None
        )
        return rec
    return None


# -- building -------------------------------------------------------------------------------------
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


def _table(collection: Collection) -> pa.Table:
    table = collection.dataset.data
    return getattr(table, "table", table)


def _lowered(table: pa.Table, name: str) -> pa.Array | None:
    """The column as the filter engine compares it (cast to text, lower-cased); None when it
    cannot be read as text."""
    try:
        col = table.column(name).combine_chunks()
        return pc.utf8_lower(col.cast(pa.string()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


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
        table = _table(collection)
        self.year = (
            table.column("year").fill_null(UNKNOWN_YEAR).to_numpy().astype(np.int64)
            if "year" in table.column_names
            else None
        )
        self.title = _lowered(table, "title") if "title" in table.column_names else None
        self.text: dict[str, pa.Array] = {}
        for name in filterable_fields(collection):
            col = _lowered(table, name)
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
    pymilvus = _pymilvus()
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
        _call(
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
            _call(
                "delete a partial batch",
                client.delete,
                physical,
                filter=f"{ROW} >= {int(rows[state['done']])}",
            )
    _insert(client, physical, state, state_path, rows, vecs, columns, progress)
    inserted = time.perf_counter()
    _call("flush the collection", client.flush, physical)
    if not _call("list indexes", client.list_indexes, physical):
        params = client.prepare_index_params()
        params.add_index(field_name=VECTOR, index_type=index_type, metric_type="IP", params=build_params)
        _call("build the vector index", client.create_index, physical, params)
    _call("load the collection", client.load_collection, physical)
    built = time.perf_counter()
    if "previous" not in state:  # recorded first, so that a run killed after the switch still drops it
        state["previous"] = _serving(client, name)
        write_json_atomic(state_path, state)
    _switch(client, name, physical)
    previous = state["previous"]
    info = {
        "backend": BACKEND,
        "model": model,
        "dim": d,
        "kind": index_type.lower(),
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
    if previous and previous != physical and _exists(client, previous):
        _call("drop the previous collection", client.drop_collection, previous)
    state_path.unlink(missing_ok=True)
    return info


def _refuse_foreign(client: Any, name: str, fp: dict[str, Any]) -> None:
    """A name that serves another model, dimension or Illustra collection is not taken over."""
    if not _exists(client, name):
        return
    rec = _recorded(client, name)
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
    if same and physical and _exists(client, physical):
        return state
    if state.get("uri") == uri and physical and NAME_RE.match(physical) and _exists(client, physical):
        serving = _serving(client, str(state.get("name", "")))
        if serving != physical:
            _call("drop an unfinished collection", client.drop_collection, physical)
    return None


def _serving(client: Any, name: str) -> str | None:
    """The physical collection behind alias ``name`` (None: no such alias)."""
    pymilvus = _pymilvus()
    try:
        desc = client.describe_alias(name)
    except pymilvus.MilvusException:
        return None
    return str(desc.get("collection_name")) if desc else None


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
            _call("insert vectors", client.insert, physical, columns.records(rows[done:end], v))
            bar.update(end - done)
            done = end
            state["done"] = done
            write_json_atomic(state_path, state)


def _switch(client: Any, name: str, physical: str) -> None:
    """Point alias ``name`` at ``physical`` (one atomic step for every process searching it)."""
    current = _serving(client, name)
    if current is None:
        _call("create the alias", client.create_alias, physical, name)
    elif current != physical:
        _call("switch the alias", client.alter_alias, physical, name)


# -- searching ------------------------------------------------------------------------------------
class MilvusIndex:
    """A model's vectors in Milvus, searched through the alias ``index.json`` names."""

    def __init__(self, collection: Collection, model: str, info: dict[str, Any], client: Any) -> None:
        m = info["milvus"]
        self.collection = collection
        self.model = model
        self.kind = str(info.get("kind", "milvus"))
        self.dim = int(info["dim"])
        self.count = int(info["count"])
        self.name = str(m["collection"])
        self.index_type = str(m.get("index_type", "FLAT"))
        self.params = dict(info.get("params") or {})
        self.client = client
        self.templates = self._accepts_templates()
        self._title_lock = threading.Lock()
        self._title: pa.Array | None = None
        self._store: tuple[np.ndarray, np.ndarray] | None = None
        self.builder = ExpressionBuilder(
            dict(m.get("fields") or {}),
            has_title=bool(m.get("title")),
            templates=self.templates,
            title_rows=self._title_rows,
        )

    @classmethod
    def open(cls, collection: Collection, model: str, info: dict[str, Any]) -> MilvusIndex:
        """Open and check: the collection behind the alias is the build ``index.json`` names,
        of this model and dimension."""
        m = info.get("milvus") or {}
        if info.get("model") != model or not m.get("collection") or not m.get("uri"):
            raise ModelMismatch(
                f"the index of {collection.root} for {model!r} does not describe a Milvus collection of it"
            )
        client = connect(str(m["uri"]))
        name = str(m["collection"])
        if not _exists(client, name):
            raise IndexMissing(
                f"the Milvus collection {name!r} does not exist; run 'illustra index --backend milvus'"
            )
        rec = _recorded(client, name)
        if rec is None or rec.get("model") != model or rec.get("_dim") != int(info["dim"]):
            found = (
                "not an Illustra collection"
                if rec is None
                else f"{rec.get('model')!r}, dim {rec.get('_dim')}"
            )
            raise ModelMismatch(
                f"the Milvus collection {name!r} holds {found}; this collection's index is for {model!r} "
                f"(dim {info['dim']}): run 'illustra index --backend milvus' again"
            )
        if rec.get("build") != m.get("build"):
            raise ModelMismatch(
                f"the Milvus collection {name!r} was rebuilt by another 'illustra index' run; "
                "run 'illustra index --backend milvus' for this collection again"
            )
        # Milvus Lite does not keep a collection loaded across restarts; a server may have released it.
        state = _call("read the load state", client.get_load_state, name).get("state")
        if str(getattr(state, "name", state)) != "Loaded":
            _call("load the collection", client.load_collection, name)
        return cls(collection, model, info, client)

    def __len__(self) -> int:
        return self.count

    # The collection's own copy of the vectors, for callers that read every vector (facets); the
    # searches above never need it.
    def _local(self) -> tuple[np.ndarray, np.ndarray]:
        if self._store is None:
            with self._title_lock:
                if self._store is None:
                    store = EmbeddingStore(self.collection, self.model)
                    self._store = (store.rows(), store.vectors())
        return self._store

    @property
    def rows(self) -> np.ndarray:
        return self._local()[0]

    @property
    def vectors(self) -> np.ndarray:
        return self._local()[1]

    def position_of_row(self, row: int) -> int | None:
        rows = self.rows
        pos = int(np.searchsorted(rows, row))
        return pos if pos < len(rows) and rows[pos] == row else None

    def _accepts_templates(self) -> bool:
        """Whether the server fills filter templates (``filter_params``); Milvus Lite does not."""
        pymilvus = _pymilvus()
        try:
            self.client.query(
                self.name, filter=f"{ROW} == {{p}}", filter_params={"p": -1}, output_fields=[ROW], limit=1
            )
        except pymilvus.MilvusException:
            return False
        return True

    def _title_rows(self, needle: str) -> Sequence[int]:
        if self._title is None:
            with self._title_lock:
                if self._title is None:
                    self._title = _lowered(_table(self.collection), "title")
        if self._title is None:
            return []
        hit = pc.match_substring(self._title, needle).fill_null(False).to_numpy(zero_copy_only=False)
        return np.flatnonzero(hit).tolist()

    def _search_params(self, fetch: int, share: float, widen: int) -> dict[str, Any]:
        """Search parameters when ``share`` of the vectors pass the filter: a selective filter
        prunes most of the graph walk or of the probed lists, so both widen by about 1 / share
        (as for FAISS), and 4x more each time a search met too few allowed items."""
        grow = 4**widen / min(1.0, share * 4)
        if self.index_type == "HNSW":
            return {"metric_type": "IP", "params": {"ef": int(min(MAX_TOPK, max(HNSW_EF, fetch) * grow))}}
        if self.index_type == "IVF_SQ8":
            nlist = int(self.params.get("nlist", 16))
            nprobe = math.ceil(max(16, nlist // 128) * grow)
            return {"metric_type": "IP", "params": {"nprobe": int(min(nlist, nprobe))}}
        return {"metric_type": "IP", "params": {}}

    def _search(
        self, q: list[float], fetch: int, expr: Any, share: float, widen: int
    ) -> tuple[np.ndarray, np.ndarray]:
        rerank = self.index_type == "IVF_SQ8"
        res = _call(
            "search",
            self.client.search,
            self.name,
            data=[q],
            anns_field=VECTOR,
            limit=fetch,
            filter=expr.text,
            filter_params=expr.params,
            output_fields=[VECTOR] if rerank else [ROW],
            search_params=self._search_params(fetch, share, widen),
        )
        hits = list(res[0]) if res else []
        rows = np.asarray([int(h[ROW] if ROW in h else h["id"]) for h in hits], dtype=np.int64)
        if rerank and hits:
            vecs = np.asarray([h["entity"][VECTOR] for h in hits], dtype=np.float32)
            scores = vecs @ np.asarray(q, dtype=np.float32)
        else:
            scores = np.asarray([float(h["distance"]) for h in hits], dtype=np.float32)
        return scores, rows

    def _count(self, expr: Any) -> int:
        res = _call(
            "count",
            self.client.query,
            self.name,
            filter=expr.text,
            filter_params=expr.params,
            output_fields=["count(*)"],
        )
        return int(res[0]["count(*)"]) if res else 0

    def rank(self, vec: np.ndarray, n: int, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        if scope.filters is None:  # a caller's own row mask: as the shorter list of rows, in or out
            mask = scope.mask()
            if mask is None:
                expr = self.builder.build(None)
            elif np.count_nonzero(mask) * 2 <= len(mask):
                expr = self.builder.build(None, allowed_rows=np.flatnonzero(mask).tolist())
            else:
                expr = self.builder.build(None, excluded_rows=np.flatnonzero(~mask).tolist())
        else:
            expr = self.builder.build(scope.filters, scope.excluded_rows())
        n = min(n, self.count, MAX_TOPK)
        if n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        q = np.asarray(vec, dtype=np.float32).reshape(-1).tolist()
        approximate = self.index_type != "FLAT"
        available, share = self.count, 1.0
        if approximate and expr:  # how selective the filter is sets how wide to search
            available = self._count(expr)
            if available == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            share = available / max(1, self.count)
        # One more than asked, so that a tie at the cut shows (then the search goes deeper).
        fetch = min(MAX_TOPK, max(n + 1, SQ_RERANK) if self.index_type == "IVF_SQ8" else n + 1)
        widen = 0
        while True:
            scores, rows = self._search(q, fetch, expr, share, widen)
            if approximate and len(rows) < min(fetch, available) and widen < 3:
                widen += 1  # met too few allowed items: search wider
                continue
            if len(rows) < fetch or fetch >= MAX_TOPK:
                break
            # Items tied with the n-th may lie beyond what was fetched (Milvus cuts ties anywhere),
            # and pages would then disagree: fetch deeper until the last fetched scores less.
            if scores.min() < np.sort(scores)[::-1][n - 1]:
                break
            fetch = min(MAX_TOPK, fetch * 4)
        order = np.lexsort((rows, -scores))[:n]
        return scores[order].astype(np.float32), rows[order].astype(np.int64)

    def vectors_of(self, rows: Sequence[int]) -> dict[int, np.ndarray]:
        ids = sorted({int(r) for r in rows})
        if not ids:
            return {}
        res = _call("fetch vectors", self.client.get, self.name, ids=ids, output_fields=[VECTOR])
        return {int(r[ROW]): np.asarray(r[VECTOR], dtype=np.float32) for r in res}


# -- the build stage ------------------------------------------------------------------------------
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
