"""Adapters: a light, collection-specific correction of a model, learnt from what the collection
already knows (its catalogue text, or an owner's labels).

A ridge regression maps each picture's features (the model's picture-only companion, e.g.
``lite-visual``, where embedded, else the model's own vectors) toward the model's own text
embedding of the item's record; the adapted picture vector blends the model's vector with that
prediction. Text queries still go through the model's own text side, so the adapted space is
searched like the base one. Ridge strength and blend are chosen on items held out from fitting,
and quality is reported on a second held-out set: recall@10 and mean reciprocal rank of each
held-out item's own picture when its record text is the query, for the base model and the adapter.

Stored as a model of its own, ``MODEL+adapted`` (``embeddings/<model>+adapted/``: vectors, the
map in ``adapter.npz``, the report in the manifest), indexed like any model. Search picks it by
default only when it beat the base model on the held-out items; ``--model MODEL`` always means the
base model.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .collection import Collection, now_iso
from .embedding_store import EmbeddingStore, similarity_companion
from .encoders import Encoder, l2_normalise, load_encoder
from .errors import BadInput, NotEmbedded

SUFFIX = "+adapted"
MIN_TEXT_ITEMS = 100  # items with catalogue text: enough for fitting and two held-out sets
MIN_LABELLED = 40  # labelled items, in at least two labels
MAX_TRAIN = 5000  # records embedded for training (a fixed sample above this): minutes on a CPU
ALPHAS = (0.03, 0.1, 0.3, 1.0)
BLENDS = (0.35, 0.5, 0.65)  # weight of the base model's vector in the adapted one
CHUNK = 4096


def is_adapted(model: str) -> bool:
    return model.endswith(SUFFIX)


def base_of(model: str) -> str:
    return model[: -len(SUFFIX)] if is_adapted(model) else model


def _hash(item_id: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{item_id}".encode()).digest()[:8], "big")


def _read_ids(path: str | Path, what: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return [x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#")]


def read_labels(path: str | Path, known: set[str]) -> dict[str, str]:
    """``id,label`` rows (a header row ``id,label`` is allowed); unknown ids are refused."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(x.strip() for x in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read labels file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if rows and [x.strip().lower() for x in rows[0][:2]] == ["id", "label"]:
        rows = rows[1:]
    out: dict[str, str] = {}
    for n, r in enumerate(rows, start=1):
        if len(r) < 2 or not r[0].strip() or not r[1].strip():
            raise BadInput(f"labels file {path}: row {n} is not 'id,label'")
        out[r[0].strip()] = r[1].strip()
    unknown = sorted(set(out) - known)
    if unknown:
        raise BadInput(
            f"labels file {path} names {len(unknown)} id(s) the collection does not hold, e.g. {unknown[0]!r}"
        )
    return out


def _record_texts(coll: Collection, rows: np.ndarray) -> list[str]:
    from .textindex import document, field_values

    table_rows = field_values(coll, coll.text_fields, 0, len(coll))
    return [document(table_rows[int(r)]) for r in rows]


def _vectors_by_row(store: EmbeddingStore) -> tuple[np.ndarray, np.ndarray]:
    """(rows, vectors) of a complete embedding, rows sorted."""
    return store.rows(), np.asarray(store.vectors(), dtype=np.float32)


def _quality(text_vecs: np.ndarray, pictures: np.ndarray) -> dict[str, float]:
    """Each record text as a query among these pictures: recall@10 and MRR of its own picture."""
    s = text_vecs @ pictures.T
    rank = (s > np.diag(s)[:, None]).sum(axis=1)
    return {"recall@10": round(float((rank < 10).mean()), 4), "mrr": round(float((1.0 / (rank + 1)).mean()), 4)}


class AdaptedEncoder(Encoder):
    """``MODEL+adapted``: the model's text side; pictures through the model and the learnt map."""

    supports_text = True

    def __init__(self, base: Encoder, features: Encoder, coef: np.ndarray, intercept: np.ndarray, blend: float) -> None:
        self.base, self.features = base, features
        self.name = base.name + SUFFIX
        self.dim = base.dim
        self.image_side = max(base.image_side, features.image_side)
        self.coef, self.intercept, self.blend = coef.astype(np.float32), intercept.astype(np.float32), float(blend)

    def adapt(self, base_vecs: np.ndarray, feature_vecs: np.ndarray) -> np.ndarray:
        pred = l2_normalise(l2_normalise(feature_vecs) @ self.coef.T + self.intercept)
        return l2_normalise(self.blend * np.asarray(base_vecs, np.float32) + (1 - self.blend) * pred)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        feats = self.features.embed_images(images) if self.features is not self.base else None
        base = self.base.embed_images(images)
        return self.adapt(base, base if feats is None else feats)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.base.embed_texts(texts)

    def embed_query(self, query: str) -> np.ndarray:
        return self.base.embed_query(query)


def load_adapted(coll: Collection, model: str) -> AdaptedEncoder:
    """The encoder of a collection's ``MODEL+adapted`` (its map is stored in the collection)."""
    entry = coll.manifest.get("embeddings", {}).get(model, {}).get("adapter")
    store = EmbeddingStore(coll, model)
    if not entry or not (store.dir / "adapter.npz").is_file():
        raise NotEmbedded(f"{coll.root} has no adapter {model!r}; run 'illustra adapt --model {base_of(model)}'")
    base = load_encoder(base_of(model), fallback=False)
    features = load_encoder(entry["features"], fallback=False) if entry["features"] != base_of(model) else base
    with np.load(store.dir / "adapter.npz") as z:
        return AdaptedEncoder(base, features, z["coef"], z["intercept"], float(z["blend"]))


def preferred(coll: Collection, model: str) -> str:
    """``model``'s adapter when it beat the model on held-out items, else ``model`` itself."""
    entry = coll.manifest.get("embeddings", {}).get(model + SUFFIX, {})
    return model + SUFFIX if entry.get("complete") and (entry.get("adapter") or {}).get("used") else model


def train(
    coll: Collection,
    model: str,
    *,
    source: str = "text",
    labels_path: str | Path | None = None,
    exclude_path: str | Path | None = None,
    notify: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Learn, measure and store ``model``'s adapter; returns the report. Every input is checked
    before anything is written."""
    if is_adapted(model):
        raise BadInput(f"{model!r} is already an adapter; name its base model, {base_of(model)!r}")
    base_store = EmbeddingStore(coll, model)
    if not base_store.complete:
        raise NotEmbedded(f"{coll.root} has no finished embeddings for model {model!r}; run 'illustra embed --model {model}'")
    ids = np.asarray([str(x) for x in coll.ids.tolist()])
    known = set(ids.tolist())
    excluded = set(_read_ids(exclude_path, "exclude-ids file")) if exclude_path is not None else set()
    companion = similarity_companion(coll, model)
    feat_model = companion or model
    rows_b, vec_b = _vectors_by_row(base_store)
    rows_f, vec_f = _vectors_by_row(EmbeddingStore(coll, feat_model))
    common = np.intersect1d(rows_b, rows_f)
    pos_b, pos_f = np.searchsorted(rows_b, common), np.searchsorted(rows_f, common)
    if source == "labels":
        if labels_path is None:
            raise BadInput("--from labels needs a labels FILE (CSV id,label)")
        labels = read_labels(labels_path, known)
        texts_by_id = {i: lab for i, lab in labels.items() if i not in excluded}
        usable = [k for k, r in enumerate(common) if ids[r] in texts_by_id]
        n_labels = len({texts_by_id[ids[common[k]]] for k in usable})
        if len(usable) < MIN_LABELLED or n_labels < 2:
            raise BadInput(
                f"an adapter needs at least {MIN_LABELLED} labelled items with a picture in at least 2 labels; "
                f"the labels give {len(usable)} in {n_labels}"
            )
        texts = [texts_by_id[ids[common[k]]] for k in usable]
    elif source == "text":
        docs = _record_texts(coll, common)
        usable = [k for k, r in enumerate(common) if docs[k] and ids[r] not in excluded]
        if len(usable) < MIN_TEXT_ITEMS:
            raise BadInput(
                f"an adapter needs catalogue text for at least {MIN_TEXT_ITEMS} items with a picture "
                f"(title, description, keywords…); {len(usable)} have it"
                + (f" once {len(excluded)} excluded ids are left out" if excluded else "")
            )
        texts = [docs[k] for k in usable]
    else:
        raise BadInput(f"--from must be 'text' or 'labels', not {source!r}")
    enc = load_encoder(model, fallback=False)
    if not enc.supports_text:
        raise BadInput(f"model {model!r} has no text side to adapt toward")

    # A fixed sample bounds the text embedding at large collections.
    order = sorted(range(len(usable)), key=lambda i: _hash(ids[common[usable[i]]], "sample"))[:MAX_TRAIN]
    usable = [usable[i] for i in order]
    texts = [texts[i] for i in order]
    notify(f"embedding the text of {len(texts)} items with {model}…")
    y = np.concatenate([enc.embed_texts(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    x_base = vec_b[pos_b[usable]]
    x_feat = l2_normalise(vec_f[pos_f[usable]])
    # Three parts by a hash of the id: fit, choose (ridge strength, blend), report.
    part = np.asarray([_hash(ids[common[k]], "split") % 100 for k in usable])
    fit, choose, report = part < 70, (part >= 70) & (part < 85), part >= 85
    from sklearn.linear_model import Ridge

    def adapted(reg: Any, blend: float, sel: np.ndarray) -> np.ndarray:
        pred = l2_normalise(reg.predict(x_feat[sel]))
        return l2_normalise(blend * x_base[sel] + (1 - blend) * pred)

    best: tuple[float, float, float, Any] | None = None
    for alpha in ALPHAS:
        reg = Ridge(alpha=alpha).fit(x_feat[fit], y[fit])
        for blend in BLENDS:
            q = _quality(y[choose], adapted(reg, blend, choose))["mrr"]
            if best is None or q > best[0]:
                best = (q, alpha, blend, reg)
    assert best is not None
    _, alpha, blend, reg = best
    base_q = _quality(y[report], x_base[report])
    adapted_q = _quality(y[report], adapted(reg, blend, report))
    used = adapted_q["mrr"] > base_q["mrr"]
    final = Ridge(alpha=alpha).fit(x_feat, y)  # the stored map learns from every training item

    name = model + SUFFIX
    summary = {
        "base": model,
        "features": feat_model,
        "method": f"ridge regression (alpha {alpha}) from {feat_model} picture vectors to {model}'s text "
        f"embeddings of the items' {'labels' if source == 'labels' else 'catalogue text'}; adapted vector = "
        f"{blend} x base + {round(1 - blend, 2)} x prediction",
        "trained_on": source if source == "text" else f"labels ({Path(str(labels_path)).name})",
        "training_items": int(len(usable)),
        "excluded_ids": len(excluded),
        "held_out": {
            "items": int(report.sum()),
            "how": "15% of the training items (by a hash of the id) never fitted nor used for choosing; "
            "each one's text as a query among their pictures",
            "base": base_q,
            "adapted": adapted_q,
        },
        "used": bool(used),
        "trained": now_iso(),
    }
    store = EmbeddingStore(coll, name)
    if store.dir.exists():
        shutil.rmtree(store.dir)
    store.dir.mkdir(parents=True)
    np.savez(store.dir / "adapter.npz", coef=final.coef_.astype(np.float32),
             intercept=np.asarray(final.intercept_, np.float32), blend=np.float32(blend))
    adapter = AdaptedEncoder(enc, enc, final.coef_, np.asarray(final.intercept_), blend)
    for start in range(0, len(common), CHUNK):
        sl = slice(start, start + CHUNK)
        rows = common[sl]
        vecs = adapter.adapt(vec_b[pos_b[sl]], vec_f[pos_f[sl]])
        store.write_chunk(int(rows[0]), int(rows[-1]) + 1, rows, vecs)
    coll.manifest.get("embeddings", {}).pop(name, None)
    store.consolidate(enc.dim, extra={"adapter": summary, "encoder": "adapter"})
    from .index import build_index

    build_index(Collection(coll.root), name)
    return {"model": name, **summary}


def card_text(coll: Collection, model: str) -> str | None:
    """The model card's paragraph on an adapter of ``model`` (or of the adapter itself)."""
    name = model if is_adapted(model) else model + SUFFIX
    a = coll.manifest.get("embeddings", {}).get(name, {}).get("adapter")
    if not a:
        return None
    h = a["held_out"]
    verdict = (
        f"search uses {name} by default (--model {a['base']} still means the base model)"
        if a["used"]
        else f"it did not beat {a['base']}, so search keeps the base model unless --model {name} is given"
    )
    return (
        f"{name} was trained {a['trained']} on {a['training_items']} items' {a['trained_on']} "
        f"({a['excluded_ids']} ids excluded): {a['method']}. On {h['items']} held-out items ({h['how']}): "
        f"recall@10 {h['adapted']['recall@10']:.3f} vs {h['base']['recall@10']:.3f} for {a['base']}, "
        f"MRR {h['adapted']['mrr']:.3f} vs {h['base']['mrr']:.3f}; {verdict}."
    )

