"""Collection and model cards: what a collection holds, which model searches it, and how well.

``collection_card(coll)`` and ``model_facts(model)`` gather the facts; ``card_markdown(coll)``
writes them as a Hugging Face style dataset card (YAML header + sections); ``render_about(coll)``
gives the same facts as a dict for the web app's About page, including the in-domain evaluation
figures and when they were measured, or a plain statement that no such evaluation exists.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import json
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from .card_sections import sections
from .collection import Collection, now_iso
from .embedding_store import embedded_models

NO_EVALUATION = (
    "No in-domain evaluation has been run for this model on this collection. Its makers advise against "
    "deployed image search without in-domain testing; run 'illustra eval --taxonomy' before relying on it."
)
# A field empty in more than this share of items is listed as a known gap.
GAP_SHARE = 0.5
# Licence URLs and names mapped to the identifiers Hugging Face cards use.
_LICENCE_IDS = {
    "publicdomain": "cc0-1.0",
    "public domain": "cc0-1.0",
    "cc0": "cc0-1.0",
    "zero/1.0": "cc0-1.0",
    "by/4.0": "cc-by-4.0",
    "by-sa/4.0": "cc-by-sa-4.0",
    "by/3.0": "cc-by-3.0",
    "by-sa/3.0": "cc-by-sa-3.0",
    "by/2.0": "cc-by-2.0",
    "by-sa/2.0": "cc-by-sa-2.0",
    "no known copyright": "cc0-1.0",
}
_SOURCE_COUNTERS = {"added", "duplicates_skipped", "replaced", "ingested", "selected", "complete"}


# -- facts ----------------------------------------------------------------------------------------
def _table(coll: Collection) -> Any:
    t = coll.dataset.data
    return getattr(t, "table", t)


def field_completeness(coll: Collection) -> dict[str, float]:
    """Share of items with a non-empty value, per metadata field."""
    import pyarrow.compute as pc

    table = _table(coll)
    n = table.num_rows
    out: dict[str, float] = {}
    for f in coll.metadata_fields:
        col = table.column(f)
        if n == 0:
            out[f] = 0.0
            continue
        valid = pc.is_valid(col)
        if col.type == "string" or str(col.type) in ("string", "large_string"):
            valid = pc.and_(valid, pc.greater(pc.utf8_length(pc.fill_null(col, "")), 0))
        out[f] = round(float(pc.sum(valid).as_py() or 0) / n, 4)
    return out


def licence_counts(coll: Collection, top: int = 10) -> list[tuple[str, int]]:
    if "licence" not in coll.metadata_fields:
        return []
    import pyarrow.compute as pc

    vc = pc.value_counts(_table(coll).column("licence")).to_pylist()
    pairs = [(str(v["values"]) if v["values"] else "(none recorded)", int(v["counts"])) for v in vc]
    pairs.sort(key=lambda p: -p[1])
    return pairs[:top]


def licence_id(licences: list[tuple[str, int]]) -> str:
    """One Hugging Face licence identifier when every item shares a known licence, else 'other'."""
    known = {lic for lic, _ in licences if lic != "(none recorded)"}
    ids = set()
    for lic in known:
        low = lic.lower()
        ids.add(next((v for k, v in _LICENCE_IDS.items() if k in low), "other"))
    return ids.pop() if len(ids) == 1 and len(licences) == len(known) else "other"


def _sources(coll: Collection) -> list[dict[str, Any]]:
    """Ingest records grouped by source kind: totals, dates, and what identifies the source."""
    grouped: dict[str, dict[str, Any]] = {}
    for src in coll.manifest.get("sources", []):
        kind = str(src.get("kind") or src.get("type") or "unknown")
        g = grouped.setdefault(kind, {"kind": kind, "added": 0, "first": None, "last": None, "details": {}})
        g["added"] += int(src.get("added") or 0)
        when = src.get("ingested")
        if when:
            g["first"] = min(g["first"] or when, when)
            g["last"] = max(g["last"] or when, when)
        for k, v in src.items():
            # Strings identify the source (paths, URLs, dataset names); numbers are counters.
            if k not in _SOURCE_COUNTERS and k != "kind" and isinstance(v, str) and v:
                g["details"].setdefault(k, v)
    return list(grouped.values())


def _size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    for bound, name in bounds:
        if n < bound:
            return name
    return "1M<n<10M" if n < 10_000_000 else "n>10M"


def _date_and_name_gaps(sources: list[dict[str, Any]]) -> list[str]:
    """What ingests recorded about dates that give no year and file names that did not parse
    (``ingest hub --preset bl-hub``), summed over the ingests that recorded it."""
    unknown = out_of_range = unparsed = 0
    ranges: set[str] = set()
    for src in sources:
        unknown += int(src.get("year_unknown") or 0)
        out_of_range += int(src.get("year_out_of_range") or 0)
        unparsed += int(src.get("fname_unparsed") or 0)
        if src.get("year_out_of_range") and src.get("year_range"):
            ranges.add(str(src["year_range"]))
    gaps = []
    if unknown:
        gaps.append(f"{unknown} items have an unknown date ('Unknown' in the catalogue), so no year.")
    if out_of_range:
        span = " or ".join(sorted(ranges)) or "the accepted range"
        gaps.append(
            f"{out_of_range} items have a date outside {span} (catalogue errors); they keep the date "
            "as written but have no year."
        )
    if unparsed:
        gaps.append(
            f"{unparsed} items have a file name that did not parse, so no book, volume, page or index."
        )
    return gaps


def collection_card(coll: Collection) -> dict[str, Any]:
    counts = dict(coll.manifest.get("counts", {}))
    items = int(counts.get("items", len(coll)))
    with_image = int(counts.get("with_image", items))
    completeness = field_completeness(coll)
    licences = licence_counts(coll)
    gaps: list[str] = []
    if items and with_image < items:
        gaps.append(
            f"{items - with_image} of {items} items have no image (metadata only); image search cannot find them."
        )
    for f, share in sorted(completeness.items(), key=lambda kv: kv[1]):
        if share < GAP_SHARE and f not in ("image_path",):
            gaps.append(f"'{f}' is empty for {100 * (1 - share):.0f}% of items.")
    year_share = completeness.get("year", 0.0)
    if "year" in completeness and year_share >= GAP_SHARE and year_share < 1:
        gaps.append(f"{100 * (1 - year_share):.0f}% of items have no year, so date filters leave them out.")
    unreadable: Counter[str] = Counter()
    for src in coll.manifest.get("sources", []):
        failures = src.get("image_failures") or {}
        if isinstance(failures, dict):
            unreadable[str(src.get("kind"))] += sum(int(v) for v in failures.values())
    for kind, total in unreadable.items():
        if total:
            gaps.append(f"{total} images from source '{kind}' could not be read and were left out.")
    gaps.extend(_date_and_name_gaps(coll.manifest.get("sources", [])))
    for model in embedded_models(coll):
        entry = coll.manifest["embeddings"][model]
        if int(entry.get("count", with_image)) < with_image:
            gaps.append(f"Model {model} has vectors for {entry.get('count')} of {with_image} images.")
    gaps.append(
        "The language of the catalogue text has not been assessed; the models were evaluated in English."
    )
    date_range = None
    if "year_min" in counts:
        date_range = {"from": counts["year_min"], "to": counts.get("year_max")}
    return {
        "name": coll.manifest.get("name") or coll.root.name,
        "path": str(coll.root),
        "created": coll.manifest.get("created"),
        "updated": coll.manifest.get("updated"),
        "items": items,
        "with_image": with_image,
        "date_range": date_range,
        "sources": _sources(coll),
        "licences": licences,
        "licence_id": licence_id(licences),
        "fields": completeness,
        "gaps": gaps,
        "models": embedded_models(coll),
        "size_category": _size_category(items),
    }


def _facts_table() -> dict[str, Any]:
    text = resources.files("illustra.data").joinpath("model_facts.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["models"])


def model_facts(model: str) -> dict[str, Any]:
    """What the model's makers say about it (first matching entry of ``data/model_facts.json``)."""
    table = _facts_table()
    for pattern, facts in table.items():
        if model == pattern or fnmatch.fnmatchcase(model, pattern):
            out = dict(facts)
            out["model"] = model
            out["title"] = out.get("title") or model
            out["known"] = pattern != "*"
            return out
    raise KeyError(model)  # pragma: no cover - the table ends with "*"


def evaluations(coll: Collection) -> dict[str, dict[str, Any]]:
    """The newest taxonomy and retrieval evaluation per model, from ``<collection>/eval/``."""
    from .eval import retrieval, taxonomy

    out: dict[str, dict[str, Any]] = {}
    for r in taxonomy.load_results(coll.root):
        out.setdefault(str(r["model"]), {}).setdefault("taxonomy", r)
    for r in sorted(retrieval.load_results(coll), key=lambda r: str(r.get("date", "")), reverse=True):
        if r.get("model") and not r.get("text_model") and not r.get("gallery_ids"):  # the model on its own
            out.setdefault(str(r["model"]), {}).setdefault("retrieval", r)
    return out


def _models_of(coll: Collection, evals: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys([*embedded_models(coll), *evals]))


# -- markdown ------------------------------------------------------------------------------------
def _yaml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _pct(x: float) -> str:
    return f"{100 * float(x):.1f}%"


def _taxonomy_markdown(r: dict[str, Any]) -> list[str]:
    k = r["k"]
    lines = [
        f"In-domain evaluation measured **{r['measured']}** on {r['n_items']} labelled items in "
        f"{len(r['labels'])} classes ({', '.join(r['labels'])}).",
        "",
        f"- Zero-shot classification accuracy: **{_pct(r['accuracy'])}** "
        f"(always answering the largest class: {_pct(r['chance_accuracy'])})",
        f"- Macro-averaged precision / recall / F1: {r['macro']['precision']:.3f} / {r['macro']['recall']:.3f} / "
        f"{r['macro']['f1']:.3f}",
        f"- Per-class retrieval with the label's prompts as query: mean P@{k} {r['retrieval']['mean_p_at_k']:.3f} "
        f"(random {r['retrieval']['random_p_at_k']:.3f}), mAP {r['retrieval']['map']:.3f}",
        "",
        f"| class | n | precision | recall | F1 | P@{k} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for lab in r["labels"]:
        c = r["per_class"][lab]
        lines.append(
            f"| {lab} | {c['n']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['p_at_k']:.3f} |"
        )
    worst = sorted(r["labels"], key=lambda lab: r["per_class"][lab]["f1"])[:2]
    lines += ["", f"Weakest classes: {', '.join(worst)}."]
    return lines


def _retrieval_markdown(r: dict[str, Any]) -> list[str]:
    m = r.get("metrics", {})
    rnd = r.get("random", {})
    return [
        f"Search evaluated **{r.get('date')}** with {r.get('n_queries')} judged queries "
        f"(mode {r.get('mode')}): mAP@{r.get('k')} {m.get('map', 0):.3f} (random {rnd.get('map', 0):.3f}), "
        f"P@10 {m.get('p@10', 0):.3f}, nDCG@10 {m.get('ndcg@10', 0):.3f}."
    ]


def card_markdown(coll: Collection, models: list[str] | None = None) -> str:
    """The collection card with a model card section per model, as Markdown with a YAML header."""
    from .guardrails import Guardrails

    c = collection_card(coll)
    evals = evaluations(coll)
    models = models or _models_of(coll, evals)
    tags = ["illustra", "digitised-collections", "image-search"]
    yaml = [
        "---",
        f"pretty_name: {_yaml_str(str(c['name']))}",
        f"license: {c['licence_id']}",
        "language:",
        "- en",
        "size_categories:",
        f"- {c['size_category']}",
        "task_categories:",
        "- zero-shot-image-classification",
        "- image-feature-extraction",
        "tags:",
        *[f"- {t}" for t in tags],
        "---",
    ]
    out = [*yaml, "", f"# Dataset Card for {c['name']}", ""]
    out += [
        "## Dataset Description",
        "",
        f"A digitised image collection searchable with Illustra: {c['items']} items, {c['with_image']} with an image.",
        "",
        f"- **Location:** `{c['path']}`",
        f"- **Created:** {c['created']}; **last updated:** {c['updated']}",
    ]
    if c["date_range"]:
        out.append(f"- **Date range (item years):** {c['date_range']['from']}–{c['date_range']['to']}")
    else:
        out.append("- **Date range:** no item carries a year")
    out += ["", "### Dataset Sources", ""]
    for s in c["sources"]:
        details = ", ".join(f"{k}: {v}" for k, v in s["details"].items())
        span = f"ingested {s['first']}" + (f" to {s['last']}" if s["last"] != s["first"] else "")
        out.append(f"- **{s['kind']}**: {s['added']} items, {span}" + (f" ({details})" if details else ""))
    if not c["sources"]:
        out.append("- No source is recorded in the manifest.")
    out += ["", "### Licensing Information", ""]
    for lic, n in c["licences"]:
        out.append(f"- {lic}: {n} items")
    if not c["licences"]:
        out.append("- No licence field.")
    out += [
        "",
        "## Dataset Structure",
        "",
        "| field | filled in |",
        "|---|---:|",
        *[f"| {f} | {_pct(share)} |" for f, share in c["fields"].items()],
        "",
        "## Uses",
        "",
        "### Direct Use",
        "",
        "Finding pictures in the collection by description or by example, for browsing and research.",
        "",
        "### Out-of-Scope Use",
        "",
        "- Surveillance and facial recognition: uploaded photographs dominated by a face are refused.",
        "- Treating a model's matches as catalogue facts about the people or places shown.",
        "- Queries in languages other than English are untested.",
        "",
        "## Bias, Risks, and Limitations",
        "",
        "### Known gaps",
        "",
        *[f"- {g}" for g in c["gaps"]],
        "",
    ]
    for model in models:
        f = model_facts(model)
        ev = evals.get(model, {})
        out += [f"## Model card: {model}", ""]
        if f["title"] != model:
            out += [f"**{f['title']}**" + (f" — {f['makers']}" if f.get("makers") else ""), ""]
        out += ["### Training data (as its makers describe it)", "", f["training_data"], ""]
        out += ["### In-domain evaluation", ""]
        if "taxonomy" in ev:
            out += _taxonomy_markdown(ev["taxonomy"])
        else:
            out.append(NO_EVALUATION)
        if "retrieval" in ev:
            out += ["", *_retrieval_markdown(ev["retrieval"])]
        for heading, text in sections(coll, model):
            out += ["", f"### {heading}", "", text]
        out += ["", "### Limitations", "", *[f"- {x}" for x in f["limitations"]], ""]
        out += ["### Out-of-scope uses", "", *[f"- {x}" for x in f["out_of_scope"]], ""]
    g = Guardrails(coll.root).describe()
    out += [
        "## Guardrails",
        "",
        f"- Guardrails on: {'yes' if g['enabled'] else 'no'}; face-upload refusal: "
        f"{'on' if g['face_guard'] else 'off'}; non-English notice: {'on' if g['language_notice'] else 'off'}",
        f"- Sensitive query terms: {g['terms'].get('note', 0)} give a content note, "
        f"{g['terms'].get('block', 0)} are blocked",
        f"- Items hidden by the owner after reports: {g['hidden_items']}",
        "",
        "## Card Metadata",
        "",
        f"Generated by `illustra card` on {now_iso()}.",
        "",
    ]
    return "\n".join(out)


def write_card(coll: Collection, output: str | Path | None = None) -> Path:
    """Write the card (default ``<collection>/README.md``, where Hugging Face looks for it)."""
    path = Path(output) if output else coll.root / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(card_markdown(coll), encoding="utf-8")
    tmp.replace(path)
    return path


# -- About page ----------------------------------------------------------------------------------
def _figure(coll: Collection, result: dict[str, Any]) -> str | None:
    """The per-class bar chart as a data URI, cached beside the result file."""
    from .eval import report

    src = Path(result.get("_file") or "")
    png_path = src.with_name(src.stem + "-per-class.png") if src.name else None
    try:
        if png_path is not None and png_path.exists() and png_path.stat().st_mtime >= src.stat().st_mtime:
            png = png_path.read_bytes()
        else:
            png = report.per_class_png(result)
            if png_path is not None:
                # A read-only collection still gets the figure, just not cached.
                with contextlib.suppress(OSError):
                    png_path.write_bytes(png)
    except (OSError, ValueError, KeyError):
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_about(collection: Collection | str | Path, *, figures: bool = True) -> dict[str, Any]:
    """Everything the About page shows, as plain data (the template does the layout)."""
    from .guardrails import Guardrails

    coll = collection if isinstance(collection, Collection) else Collection(collection)
    card = collection_card(coll)
    evals = evaluations(coll)
    models = []
    for model in _models_of(coll, evals):
        f = model_facts(model)
        ev = evals.get(model, {})
        tax = ev.get("taxonomy")
        entry: dict[str, Any] = {
            "name": model,
            "title": f["title"],
            "makers": f.get("makers", ""),
            "training_data": f["training_data"],
            "limitations": f["limitations"],
            "out_of_scope": f["out_of_scope"],
            "evaluation": None,
            "evaluation_statement": NO_EVALUATION,
            "retrieval": None,
            "sections": sections(coll, model),
        }
        if tax is not None:
            entry["evaluation"] = {
                "measured": tax["measured"],
                "accuracy": tax["accuracy"],
                "accuracy_pct": _pct(tax["accuracy"]),
                "chance_accuracy": tax["chance_accuracy"],
                "macro_f1": tax["macro"]["f1"],
                "mean_p_at_k": tax["retrieval"]["mean_p_at_k"],
                "map": tax["retrieval"]["map"],
                "k": tax["k"],
                "n_items": tax["n_items"],
                "labels": tax["labels"],
                "per_class": [{"label": lab, **tax["per_class"][lab]} for lab in tax["labels"]],
                "figure": _figure(coll, tax) if figures else None,
            }
            entry["evaluation_statement"] = (
                f"Measured {tax['measured']}: zero-shot accuracy {_pct(tax['accuracy'])} on "
                f"{tax['n_items']} labelled items in {len(tax['labels'])} classes."
            )
        ret = ev.get("retrieval")
        if ret is not None:
            m = ret.get("metrics", {})
            entry["retrieval"] = {
                "measured": ret.get("date"),
                "n_queries": ret.get("n_queries"),
                "map": m.get("map"),
                "p_at_10": m.get("p@10"),
                "ndcg_at_10": m.get("ndcg@10"),
                "random_map": ret.get("random", {}).get("map"),
                "mode": ret.get("mode"),
            }
        models.append(entry)
    return {
        "collection": card,
        "models": models,
        "has_evaluation": any(m["evaluation"] is not None for m in models),
        "no_evaluation_statement": NO_EVALUATION,
        "guardrails": Guardrails(coll.root).describe(),
        "markdown": card_markdown(coll),
    }
