"""A self-contained HTML report of taxonomy evaluations, with matplotlib figures embedded as PNG.

One report covers one or more models evaluated on the same labelled items: a ranking table,
then per model the headline numbers, per-class precision/recall/F1 bars, the confusion matrix,
precision-recall curves of per-class retrieval, and the per-class table.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .taxonomy import rank_models


def _figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display on servers; must precede pyplot's first import
    import matplotlib.pyplot as plt

    return plt


def per_class_png(result: dict[str, Any]) -> bytes:
    plt = _pyplot()
    labels = result["labels"]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 3.6))
    width = 0.26
    for i, (key, colour) in enumerate((("precision", "#4c72b0"), ("recall", "#dd8452"), ("f1", "#55a868"))):
        vals = [result["per_class"][lab][key] for lab in labels]
        ax.bar(x + (i - 1) * width, vals, width, label=key if key != "f1" else "F1", color=colour)
    ax.set_xticks(x, [lab.replace("_", " ") for lab in labels], rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(f"{result['model']}: zero-shot classification per class")
    ax.legend(loc="upper right", fontsize=8, ncols=3)
    ax.grid(axis="y", alpha=0.3)
    return _figure_png(fig)


def confusion_png(result: dict[str, Any]) -> bytes:
    plt = _pyplot()
    labels = result["labels"]
    m = np.array([[result["confusion"][t][p] for p in labels] for t in labels], dtype=float)
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    side = max(4.5, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    names = [lab.replace("_", " ") for lab in labels]
    ax.set_xticks(range(len(labels)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true label")
    ax.set_title(f"{result['model']}: confusion matrix (counts; shade = row share)")
    if len(labels) <= 25:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(
                    j,
                    i,
                    str(int(m[i, j])),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    return _figure_png(fig)


def pr_png(result: dict[str, Any]) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for lab in result["labels"]:
        curve = result["pr_curves"].get(lab) or {}
        if curve.get("recall"):
            ap = result["per_class"][lab].get("ap", 0.0)
            ax.plot(curve["recall"], curve["precision"], label=f"{lab.replace('_', ' ')} (AP {ap:.2f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"{result['model']}: retrieval with each label's prompts as the query")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    return _figure_png(fig)


def models_png(results: Sequence[dict[str, Any]]) -> bytes:
    plt = _pyplot()
    ranked = rank_models(results)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(ranked) + 2), 3.4))
    x = np.arange(len(ranked))
    ax.bar(x - 0.2, [r["accuracy"] for r in ranked], 0.4, label="accuracy", color="#4c72b0")
    ax.bar(x + 0.2, [r["macro_f1"] for r in ranked], 0.4, label="macro F1", color="#55a868")
    ax.set_xticks(x, [r["model"] for r in ranked], rotation=15, ha="right")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("models on the same labelled items")
    ax.grid(axis="y", alpha=0.3)
    return _figure_png(fig)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes, alt: str) -> str:
    return f'<img src="{data_uri(png)}" alt="{html.escape(alt)}">'


def _pct(x: float) -> str:
    return f"{100 * float(x):.1f}%"


def _model_section(r: dict[str, Any]) -> str:
    e = html.escape
    k = r["k"]
    rows = "".join(
        f"<tr><td>{e(lab)}</td><td>{c['n']}</td><td>{c['precision']:.3f}</td><td>{c['recall']:.3f}</td>"
        f"<td>{c['f1']:.3f}</td><td>{c['p_at_k']:.3f}</td><td>{c['ap']:.3f}</td></tr>"
        for lab in r["labels"]
        for c in [r["per_class"][lab]]
    )
    prompts = "".join(f"<li><b>{e(lab)}</b>: {e(' | '.join(r['prompts'][lab]))}</li>" for lab in r["labels"])
    sk = r["skipped"]
    skipped = ""
    if sk["missing"] or sk["no_image"]:
        skipped = (
            f"<p class=warn>Skipped {sk['missing']} labelled ids not in the collection and "
            f"{sk['no_image']} items without an image.</p>"
        )
    return f"""
<section id="model-{e(r["model"])}">
<h2>{e(r["model"])}</h2>
<p class=headline>Accuracy <b>{_pct(r["accuracy"])}</b> on {r["n_items"]} items in {len(r["labels"])} classes
(always answering the largest class: {_pct(r["chance_accuracy"])}) · macro F1 <b>{r["macro"]["f1"]:.3f}</b> ·
mean P@{k} <b>{r["retrieval"]["mean_p_at_k"]:.3f}</b> (random: {r["retrieval"]["random_p_at_k"]:.3f}) ·
mAP {r["retrieval"]["map"]:.3f}</p>
<p class=meta>Measured {e(r["measured"])} · image vectors: {e(r.get("vectors", ""))}</p>
{skipped}
<div class=figs>{_img(per_class_png(r), "per-class precision, recall and F1")}
{_img(confusion_png(r), "confusion matrix")}
{_img(pr_png(r), "precision-recall curves")}</div>
<table><thead><tr><th>label</th><th>n</th><th>precision</th><th>recall</th><th>F1</th><th>P@{k}</th><th>AP</th></tr></thead>
<tbody>{rows}</tbody></table>
<details><summary>Prompts used for each label</summary><ul>{prompts}</ul></details>
</section>"""


def render_html(results: Sequence[dict[str, Any]], title: str = "In-domain evaluation") -> str:
    if not results:
        raise ValueError("no results to report")
    e = html.escape
    first = results[0]
    ranking = ""
    if len(results) > 1:
        rows = "".join(
            f"<tr><td>{row['rank']}</td><td>{e(row['model'])}</td><td>{row['accuracy']:.3f}</td>"
            f"<td>{row['macro_f1']:.3f}</td><td>{row['mean_p_at_k']:.3f}</td><td>{row['map']:.3f}</td></tr>"
            for row in rank_models(results)
        )
        ranking = (
            "<h2>Ranking</h2><table><thead><tr><th>#</th><th>model</th><th>accuracy</th><th>macro F1</th>"
            f"<th>mean P@{first['k']}</th><th>mAP</th></tr></thead><tbody>{rows}</tbody></table>"
            f"<div class=figs>{_img(models_png(results), 'models compared')}</div>"
        )
    sections = "".join(_model_section(r) for r in results)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}} td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}
td:first-child,th:first-child{{text-align:left}} .figs img{{max-width:100%;margin:.5em 0;display:block}}
.meta{{color:#666;font-size:.9em}} .warn{{color:#8a4b00}} section{{border-top:2px solid #ddd;margin-top:2em}}
</style></head><body>
<h1>{e(title)}</h1>
<p>Collection <code>{e(str(first["collection"]))}</code>. Zero-shot classification of labelled items into a
fixed set of classes, and per-class retrieval with each label's prompts as the query, ranking the labelled
items only. Taxonomy: <code>{e(str(first.get("taxonomy_file") or "labels from the labels file"))}</code>.</p>
{ranking}
{sections}
</body></html>
"""


def write_report(
    results: Sequence[dict[str, Any]], path: str | Path, title: str = "In-domain evaluation"
) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(render_html(results, title), encoding="utf-8")
    tmp.replace(p)
    return p
