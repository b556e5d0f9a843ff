"""In-domain evaluation with a fixed taxonomy: zero-shot classification and per-class retrieval.

Inputs: a labels CSV (header ``id,label``: each labelled item gets one label from a fixed set)
and, optionally, a taxonomy file listing the labels, each with one or more text prompts (CSV
``label,prompt`` with one row per prompt, or JSON ``{"labels": {label: [prompts]}}``). A label
without prompts gets ``DEFAULT_TEMPLATES``.

Method (the same one CLIP's authors use for zero-shot classification): a label's text vector is
the normalised mean of its prompts' embeddings; an item is classified as the label whose vector
has the highest inner product with the item's image vector. Per-class retrieval ranks the
labelled items by that inner product for the label and scores the ranking against the labels.

The top half of this file is pure metric code (tested against hand-computed cases); the bottom
half runs an evaluation on a collection and stores it in ``<collection>/eval/``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInput
from .metrics import ranked_average_precision, ranked_precision

DEFAULT_TEMPLATES = ("a picture of {}", "an illustration of {}", "a drawing of {}")
DEFAULT_K = 10


# -- metrics (pure) -------------------------------------------------------------------------------
def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """``m[i, j]`` = items whose true label is ``labels[i]`` and predicted label is ``labels[j]``."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    pos = {lab: i for i, lab in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        if t not in pos or p not in pos:
            raise ValueError(f"label {t if t not in pos else p!r} is not in the label set")
        m[pos[t], pos[p]] += 1
    return m


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def per_class_scores(cm: np.ndarray, labels: Sequence[str]) -> dict[str, dict[str, float | int]]:
    """Precision, recall, F1 and support ``n`` per label from a confusion matrix.

    A label that is never predicted has precision 0; one with no items has recall 0 (and n 0).
    """
    out: dict[str, dict[str, float | int]] = {}
    for i, lab in enumerate(labels):
        tp = float(cm[i, i])
        predicted = float(cm[:, i].sum())
        actual = float(cm[i, :].sum())
        p = _ratio(tp, predicted)
        r = _ratio(tp, actual)
        out[lab] = {"precision": p, "recall": r, "f1": _ratio(2 * p * r, p + r), "n": int(actual)}
    return out


def accuracy(cm: np.ndarray) -> float:
    return _ratio(float(np.trace(cm)), float(cm.sum()))


def macro_average(per_class: dict[str, dict[str, float | int]], key: str) -> float:
    """Unweighted mean over the labels that have items."""
    vals = [float(v[key]) for v in per_class.values() if int(v["n"]) > 0]
    return float(np.mean(vals)) if vals else 0.0


def pr_curve(relevant_sorted: Sequence[bool], points: int = 50) -> dict[str, list[float]]:
    """Precision and recall after each rank (thinned to about ``points`` points) of a ranking."""
    rel = np.asarray(relevant_sorted, dtype=bool)
    if not rel.size or not rel.any():
        return {"precision": [], "recall": []}
    cum = np.cumsum(rel)
    ranks = np.arange(1, rel.size + 1)
    precision = cum / ranks
    recall = cum / cum[-1]
    keep = np.unique(np.linspace(0, rel.size - 1, min(points, rel.size)).round().astype(int))
    return {
        "precision": [round(float(x), 4) for x in precision[keep]],
        "recall": [round(float(x), 4) for x in recall[keep]],
    }


def classification_report(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, per-class scores, macro averages and the confusion matrix as a JSON-able dict."""
    cm = confusion_matrix(y_true, y_pred, labels)
    per_class = per_class_scores(cm, labels)
    return {
        "accuracy": accuracy(cm),
        "macro": {k: macro_average(per_class, k) for k in ("precision", "recall", "f1")},
        "per_class": per_class,
        "confusion": {t: {p: int(cm[i, j]) for j, p in enumerate(labels)} for i, t in enumerate(labels)},
        "labels": list(labels),
    }


def retrieval_report(
    scores: np.ndarray, y_true: Sequence[str], labels: Sequence[str], k: int = DEFAULT_K
) -> dict[str, dict[str, Any]]:
    """Per label: rank the items by ``scores[:, label]`` and score P@k, AP and the PR curve."""
    truth = np.asarray(list(y_true), dtype=object)
    out: dict[str, dict[str, Any]] = {}
    for j, lab in enumerate(labels):
        order = np.argsort(-scores[:, j], kind="stable")
        rel = (truth[order] == lab).tolist()
        out[lab] = {
            "p_at_k": ranked_precision(rel, k) if any(rel) else 0.0,
            "ap": ranked_average_precision(rel),
            "pr_curve": pr_curve(rel),
        }
    return out


# -- inputs ---------------------------------------------------------------------------------------
@dataclass
class Taxonomy:
    labels: list[str]
    prompts: dict[str, list[str]] = field(default_factory=dict)
    source: str | None = None

    def prompts_for(self, label: str) -> list[str]:
        given = self.prompts.get(label) or []
        if given:
            return given
        words = label.replace("_", " ").replace("-", " ")
        return [t.format(words) for t in DEFAULT_TEMPLATES]


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path} is not UTF-8 text") from exc
    reader = csv.DictReader(text.splitlines())
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]


def load_labels(path: str | Path) -> dict[str, str]:
    """``{item id: label}`` from a CSV with header ``id,label`` (repeated ids must agree)."""
    p = Path(path)
    rows = _read_csv(p)
    if not rows or "id" not in rows[0] or "label" not in rows[0]:
        raise BadInput(f"{p} needs a header line 'id,label' and at least one row")
    out: dict[str, str] = {}
    for n, row in enumerate(rows, start=2):
        item, label = row.get("id", ""), row.get("label", "")
        if not item or not label:
            raise BadInput(f"{p} line {n}: both id and label are required")
        if out.get(item, label) != label:
            raise BadInput(f"{p} line {n}: item {item!r} has two labels ({out[item]!r} and {label!r})")
        out[item] = label
    return out


def load_taxonomy(path: str | Path) -> Taxonomy:
    """A taxonomy file: CSV ``label[,prompt]`` (one row per prompt) or JSON ``{"labels": ...}``."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise BadInput(f"cannot read {p}: {exc.strerror or exc}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"{p} is not valid JSON: {exc}") from exc
        labels = data.get("labels") if isinstance(data, dict) else None
        if isinstance(labels, list):
            labels = {str(lab): [] for lab in labels}
        if not isinstance(labels, dict) or not labels:
            raise BadInput(f'{p}: expected {{"labels": {{label: [prompts]}}}} or {{"labels": [labels]}}')
        return Taxonomy(
            labels=list(labels),
            prompts={str(k): [str(x) for x in (v or [])] for k, v in labels.items()},
            source=str(p),
        )
    rows = _read_csv(p)
    if not rows or "label" not in rows[0]:
        raise BadInput(f"{p} needs a header line 'label,prompt' (prompt optional) and at least one row")
    prompts: dict[str, list[str]] = {}
    for n, row in enumerate(rows, start=2):
        label = row.get("label", "")
        if not label:
            raise BadInput(f"{p} line {n}: the label is empty")
        prompts.setdefault(label, [])
        if row.get("prompt"):
            prompts[label].append(row["prompt"])
    return Taxonomy(labels=list(prompts), prompts=prompts, source=str(p))


def check_labels(labels: dict[str, str], taxonomy: Taxonomy) -> None:
    unknown = sorted(set(labels.values()) - set(taxonomy.labels))
    if unknown:
        raise BadInput(
            f"labels not in the taxonomy ({taxonomy.source or 'given'}): {', '.join(unknown[:10])}"
            + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        )
    if len(taxonomy.labels) < 2:
        raise BadInput("a taxonomy needs at least two labels")


def labels_from_field(
    collection: Any, field_name: str, allowed: Sequence[str], per_label: int | None = None
) -> dict[str, str]:
    """Label items by a metadata field (e.g. Open Clip Art's top-level ``category`` folder).

    Only items with an image and a value in ``allowed`` are kept; with ``per_label`` each label
    keeps at most that many items, spread evenly over its id-sorted items (so the pick is stable).
    """
    if field_name not in collection.metadata_fields:
        raise BadInput(f"{collection.root} has no field {field_name!r}")
    table = collection.dataset.data
    values = table.column(field_name).to_pylist()
    ids = collection.ids.tolist()
    by_label: dict[str, list[str]] = {lab: [] for lab in allowed}
    for row, (item, value) in enumerate(zip(ids, values, strict=True)):
        if value in by_label and collection.has_stored_image(row):
            by_label[value].append(str(item))
    out: dict[str, str] = {}
    for lab, items in by_label.items():
        items.sort()
        if per_label is not None and len(items) > per_label:
            items = [items[(i * len(items)) // per_label] for i in range(per_label)]
        out.update({i: lab for i in items})
    return out


def write_labels(labels: dict[str, str], path: str | Path) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "label"])
        for item, lab in sorted(labels.items(), key=lambda kv: (kv[1], kv[0])):
            w.writerow([item, lab])


# -- running on a collection ----------------------------------------------------------------------
Progress = Callable[[int, int], None]


def _image_vectors(
    collection: Any, model: str, encoder: Any, rows: list[int], progress: Progress | None, batch: int = 16
) -> tuple[np.ndarray, str]:
    """Image vectors for ``rows``: from the stored embedding where present, else embedded now."""
    from ..embedding_store import EmbeddingStore
    from ..images import decode

    out = np.zeros((len(rows), encoder.dim), dtype=np.float32)
    missing = list(range(len(rows)))
    source = "embedded now"
    store = EmbeddingStore(collection, model)
    if store.complete and store.dim == encoder.dim:
        stored_rows = store.rows()
        vecs = store.vectors()
        pos = np.searchsorted(stored_rows, rows)
        found = (pos < len(stored_rows)) & (stored_rows[np.minimum(pos, len(stored_rows) - 1)] == rows)
        idx = np.flatnonzero(found)
        if idx.size:
            out[idx] = np.asarray(vecs[pos[idx]], dtype=np.float32)
        missing = np.flatnonzero(~found).tolist()
        source = "stored embeddings" if not missing else "stored embeddings, the rest embedded now"
    side = max(int(getattr(encoder, "image_side", 224)) * 2, 256)
    done = len(rows) - len(missing)
    if progress:
        progress(done, len(rows))
    for start in range(0, len(missing), batch):
        part = missing[start : start + batch]
        ims = [decode(collection.image_bytes(rows[i]) or b"", max_side=side) for i in part]
        out[part] = encoder.embed_images(ims)
        done += len(part)
        if progress:
            progress(done, len(rows))
    return out, source


def evaluate_taxonomy(
    collection: Any,
    labels: dict[str, str],
    taxonomy: Taxonomy | None = None,
    *,
    model: str,
    encoder: Any = None,
    k: int = DEFAULT_K,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate one model on the labelled items of a collection; returns the JSON-able result."""
    from ..collection import now_iso
    from ..encoders import load_encoder
    from ..errors import BadImage, ItemNotFound

    if k < 1:
        raise BadInput(f"k must be at least 1, got {k}")
    taxonomy = taxonomy or Taxonomy(labels=sorted(set(labels.values())))
    check_labels(labels, taxonomy)
    missing: list[str] = []
    no_image: list[str] = []
    rows: list[int] = []
    truth: list[str] = []
    for item, lab in labels.items():
        try:
            row = collection.row_of(item)
        except ItemNotFound:
            missing.append(item)
            continue
        if not collection.has_stored_image(row):
            no_image.append(item)
            continue
        rows.append(row)
        truth.append(lab)
    if not rows:
        raise BadInput(
            f"none of the {len(labels)} labelled items is in {collection.root} with an image"
            + (f" (first missing id: {missing[0]!r})" if missing else "")
        )
    enc = encoder if encoder is not None else load_encoder(model, fallback=False)
    order = np.argsort(rows, kind="stable")  # row order reads the memory-mapped data sequentially
    rows = [rows[i] for i in order]
    truth = [truth[i] for i in order]
    try:
        vectors, vector_source = _image_vectors(collection, model, enc, rows, progress)
    except BadImage as exc:
        raise BadInput(f"a labelled item's stored image cannot be decoded: {exc}") from exc
    text = []
    for lab in taxonomy.labels:
        emb = np.asarray(enc.embed_texts(taxonomy.prompts_for(lab)), dtype=np.float32)
        mean = emb.mean(axis=0)
        text.append(mean / (np.linalg.norm(mean) or 1.0))
    class_vectors = np.stack(text)
    scores = vectors @ class_vectors.T
    predicted = [taxonomy.labels[j] for j in scores.argmax(axis=1)]
    report = classification_report(truth, predicted, taxonomy.labels)
    retrieval = retrieval_report(scores, truth, taxonomy.labels, k)
    for lab in taxonomy.labels:
        report["per_class"][lab]["p_at_k"] = retrieval[lab]["p_at_k"]
        report["per_class"][lab]["ap"] = retrieval[lab]["ap"]
    present = [lab for lab in taxonomy.labels if report["per_class"][lab]["n"] > 0]
    n_labels = len(taxonomy.labels)
    return {
        "kind": "taxonomy",
        "collection": str(collection.root),
        "model": model,
        "measured": now_iso(),
        "k": k,
        "n_items": len(rows),
        "labels": taxonomy.labels,
        "prompts": {lab: taxonomy.prompts_for(lab) for lab in taxonomy.labels},
        "taxonomy_file": taxonomy.source,
        "accuracy": report["accuracy"],
        "chance_accuracy": max(report["per_class"][lab]["n"] for lab in taxonomy.labels) / len(rows),
        "macro": report["macro"],
        "per_class": report["per_class"],
        "confusion": report["confusion"],
        "retrieval": {
            "k": k,
            "mean_p_at_k": float(np.mean([retrieval[lab]["p_at_k"] for lab in present])) if present else 0.0,
            "map": float(np.mean([retrieval[lab]["ap"] for lab in present])) if present else 0.0,
            "random_p_at_k": 1.0 / n_labels,
        },
        "pr_curves": {lab: retrieval[lab]["pr_curve"] for lab in taxonomy.labels},
        "skipped": {
            "missing": len(missing),
            "missing_ids": missing[:50],
            "no_image": len(no_image),
            "no_image_ids": no_image[:50],
        },
        "vectors": vector_source,
    }


def result_path(collection_root: Path, model: str) -> Path:
    from ..encoders.base import model_slug

    return Path(collection_root) / "eval" / f"taxonomy-{model_slug(model)}.json"


def save_result(collection: Any, result: dict[str, Any]) -> Path:
    """Store a result in ``<collection>/eval/`` and note it in the manifest for the web app."""
    from ..collection import write_json_atomic

    path = result_path(collection.root, str(result["model"]))
    write_json_atomic(path, result)
    collection.update_manifest(
        evaluations={
            f"taxonomy:{result['model']}": {
                "kind": "taxonomy",
                "model": result["model"],
                "file": str(path.relative_to(collection.root)),
                "measured": result["measured"],
                "accuracy": round(float(result["accuracy"]), 4),
                "macro_f1": round(float(result["macro"]["f1"]), 4),
                "n_items": result["n_items"],
            }
        }
    )
    return path


def load_results(collection_root: str | Path) -> list[dict[str, Any]]:
    """Every stored taxonomy result of a collection, newest first (unreadable files skipped)."""
    out = []
    for path in sorted((Path(collection_root) / "eval").glob("taxonomy-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and data.get("kind") == "taxonomy":
            data["_file"] = str(path)
            out.append(data)
    out.sort(key=lambda r: str(r.get("measured", "")), reverse=True)
    return out


def rank_models(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Models ordered best first by accuracy, then macro F1, then retrieval mAP."""
    rows = [
        {
            "model": r["model"],
            "accuracy": r["accuracy"],
            "macro_f1": r["macro"]["f1"],
            "mean_p_at_k": r["retrieval"]["mean_p_at_k"],
            "map": r["retrieval"]["map"],
        }
        for r in results
    ]
    rows.sort(key=lambda r: (-r["accuracy"], -r["macro_f1"], -r["map"]))
    for i, r in enumerate(rows, start=1):
        r["rank"] = i
    return rows


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """The text report printed by ``illustra eval --taxonomy``."""
    lines: list[str] = []
    for r in results:
        lines.append(
            f"model {r['model']}  items {r['n_items']}  labels {len(r['labels'])}  measured {r['measured']}"
        )
        lines.append(
            f"accuracy {r['accuracy']:.3f} (largest class alone {r['chance_accuracy']:.3f})  "
            f"macro F1 {r['macro']['f1']:.3f}  mean P@{r['k']} {r['retrieval']['mean_p_at_k']:.3f}  "
            f"mAP {r['retrieval']['map']:.3f}"
        )
        width = max(12, *(len(lab) for lab in r["labels"]))
        lines.append(
            f"  {'label':<{width}}  {'n':>5}  {'prec':>5}  {'recall':>6}  {'F1':>5}  {'P@' + str(r['k']):>5}"
        )
        for lab in r["labels"]:
            c = r["per_class"][lab]
            lines.append(
                f"  {lab:<{width}}  {c['n']:>5}  {c['precision']:>5.2f}  {c['recall']:>6.2f}  {c['f1']:>5.2f}  "
                f"{c['p_at_k']:>5.2f}"
            )
        sk = r["skipped"]
        if sk["missing"] or sk["no_image"]:
            lines.append(
                f"  skipped: {sk['missing']} ids not in the collection, {sk['no_image']} without an image"
            )
        lines.append("")
    if len(results) > 1:
        lines.append("ranking (accuracy, then macro F1):")
        for row in rank_models(results):
            lines.append(
                f"  {row['rank']}. {row['model']}  accuracy {row['accuracy']:.3f}  macro F1 {row['macro_f1']:.3f}"
            )
    return "\n".join(lines).rstrip() + "\n"
