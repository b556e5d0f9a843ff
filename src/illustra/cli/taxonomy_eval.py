"""``illustra eval --taxonomy``: zero-shot classification and per-class retrieval on labelled items.

Called by ``eval_cmd.py`` when ``--taxonomy`` is given (not a command module of its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import echo_json, notice


def _models(collection: Any, models: str | None, model: str | None) -> list[str]:
    from ..embedding_store import embedded_models
    from ..errors import BadInput

    names: list[str] = []
    if models:
        names = [m.strip() for m in models.split(",") if m.strip()]
    if model and model not in names:
        names.insert(0, model)
    if not names:
        names = embedded_models(collection)[:1]
    if not names:
        raise BadInput(f"{collection.root} is not embedded yet; name the model(s) to evaluate with --models")
    return list(dict.fromkeys(names))


def run(
    *,
    collection_dir: str,
    taxonomy_path: str,
    labels_path: str | None,
    models: str | None,
    model: str | None,
    k: int,
    output: str | None,
    as_json: bool,
    save: bool,
) -> None:
    from tqdm import tqdm

    from ..collection import Collection, write_json_atomic
    from ..encoders.base import model_slug
    from ..eval import report, taxonomy

    coll = Collection(collection_dir)
    labels = taxonomy.load_labels(taxonomy_path)
    tax = taxonomy.load_taxonomy(labels_path) if labels_path else None
    results: list[dict[str, Any]] = []
    for name in _models(coll, models, model):
        bar = tqdm(total=0, desc=f"{name}: image vectors", unit="img", disable=None, leave=False)

        def progress(done: int, total: int, bar: Any = bar) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            result = taxonomy.evaluate_taxonomy(coll, labels, tax, model=name, k=k, progress=progress)
        finally:
            bar.close()
        results.append(result)
        sk = result["skipped"]
        if sk["missing"]:
            shown = ", ".join(sk["missing_ids"][:5])
            notice(
                f"notice: {sk['missing']} labelled ids are not in the collection and were skipped (e.g. {shown})"
            )
        if sk["no_image"]:
            notice(f"notice: {sk['no_image']} labelled items have no image and were skipped")
        if save:
            notice(f"saved {taxonomy.save_result(coll, result)}")
    out_dir = Path(output) if output else (coll.root / "eval" if save else None)
    if out_dir is not None:
        if output:
            for r in results:
                write_json_atomic(out_dir / f"taxonomy-{model_slug(r['model'])}.json", r)
        html_path = report.write_report(
            results, out_dir / "report.html", title=f"In-domain evaluation: {coll.root.name}"
        )
        notice(f"report: {html_path}")
    if as_json:
        if len(results) == 1:
            echo_json(results[0])
        else:
            echo_json({"models": {r["model"]: r for r in results}, "ranking": taxonomy.rank_models(results)})
    else:
        click.echo(taxonomy.format_table(results), nl=False)
