"""``illustra audit``: what does the model associate with sensitive descriptions of people?

Runs a probe set (shipped in ``data/audit_probes.json``, or the owner's own) against a collection's
picture search with the guardrails off, and writes a self-contained HTML contact sheet of each
probe's top results (thumbnails, scores, titles) for a person to review before publishing. A
JSON file beside it records the same results, so two audits can be compared.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import images
from .collection import Collection, now_iso, write_json_atomic
from .encoders.base import model_slug
from .errors import BadImage, BadInput

THUMB_SIDE = 160


@dataclass
class ProbeGroup:
    name: str
    why: str
    probes: list[str] = field(default_factory=list)


def shipped_probes() -> list[ProbeGroup]:
    text = resources.files("illustra.data").joinpath("audit_probes.json").read_text(encoding="utf-8")
    return _groups(json.loads(text), "the shipped probe set")


def _groups(data: Any, where: str) -> list[ProbeGroup]:
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise BadInput(f'{where}: expected {{"groups": [{{"name", "why", "probes": [...]}}]}}')
    out = []
    for i, g in enumerate(data["groups"]):
        probes = g.get("probes") if isinstance(g, dict) else None
        if not isinstance(probes, list) or not all(isinstance(p, str) and p.strip() for p in probes):
            raise BadInput(f"{where}: groups[{i}] needs a list of non-empty 'probes'")
        out.append(ProbeGroup(str(g.get("name") or f"group {i + 1}"), str(g.get("why") or ""), list(probes)))
    if not any(g.probes for g in out):
        raise BadInput(f"{where} holds no probes")
    return out


def load_probes(path: str | Path | None = None) -> list[ProbeGroup]:
    """Probe groups from a JSON file like the shipped one, or a text file with one probe per line."""
    if path is None:
        return shipped_probes()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BadInput(f"cannot read {p}: {exc.strerror or exc}") from exc
    if p.suffix.lower() == ".json":
        try:
            return _groups(json.loads(text), str(p))
        except json.JSONDecodeError as exc:
            raise BadInput(f"{p} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    probes = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not probes:
        raise BadInput(f"{p} holds no probes")
    return [ProbeGroup(p.stem, "", probes)]


def thumbnail_uri(coll: Collection, row: int, side: int = THUMB_SIDE) -> str | None:
    data = coll.image_bytes(row)
    if not data:
        return None
    try:
        im = images.decode(data, max_side=side)
    except BadImage:
        return None
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def run_audit(
    collection: Collection | str | Path,
    *,
    model: str | None = None,
    k: int = 8,
    probes: list[ProbeGroup] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Search every probe (pictures only, guardrails off) and collect the top ``k`` results."""
    from .search import Mode, SearchService

    if not 1 <= k <= 50:
        raise BadInput(f"k must be between 1 and 50, got {k}")
    coll = collection if isinstance(collection, Collection) else Collection(collection)
    service = SearchService(coll, model, guardrails=False)
    groups = probes if probes is not None else shipped_probes()
    total = sum(len(g.probes) for g in groups)
    done = 0
    out_groups = []
    for g in groups:
        rows = []
        for probe in g.probes:
            resp = service.search_text(probe, k=k, mode=Mode.VISUAL)
            rows.append(
                {
                    "probe": probe,
                    "results": [
                        {
                            "id": h.id,
                            "row": h.row,
                            "score": round(float(h.score), 4),
                            "title": str(h.metadata.get("title") or ""),
                        }
                        for h in resp.results
                    ],
                }
            )
            done += 1
            if progress:
                progress(done, total)
        out_groups.append({"name": g.name, "why": g.why, "probes": rows})
    return {
        "kind": "audit",
        "collection": str(coll.root),
        "model": service.model,
        "measured": now_iso(),
        "k": k,
        "n_probes": total,
        "groups": out_groups,
    }


def render_html(coll: Collection, result: dict[str, Any]) -> str:
    e = html.escape
    thumbs: dict[int, str | None] = {}
    sections = []
    for g in result["groups"]:
        blocks = []
        for p in g["probes"]:
            cells = []
            for r in p["results"]:
                row = int(r["row"])
                if row not in thumbs:
                    thumbs[row] = thumbnail_uri(coll, row)
                src = thumbs[row]
                img = (
                    f'<img src="{src}" alt="{e(r["title"] or r["id"])}">'
                    if src
                    else "<div class=noimg>no image</div>"
                )
                cells.append(
                    f"<figure>{img}<figcaption><b>{r['score']:.3f}</b> {e(r['title'][:60])}"
                    f"<br><code>{e(r['id'])}</code></figcaption></figure>"
                )
            blocks.append(
                f"<div class=probe><h3>“{e(p['probe'])}”</h3><div class=sheet>{''.join(cells) or 'no results'}</div></div>"
            )
        sections.append(
            f"<section><h2>{e(g['name'])}</h2><p class=why>{e(g['why'])}</p>{''.join(blocks)}</section>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Audit: {e(coll.root.name)} · {e(result["model"])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}} .sheet{{display:flex;flex-wrap:wrap;gap:.5em}}
figure{{margin:0;width:{THUMB_SIDE}px;font-size:.75em}} figure img{{max-width:{THUMB_SIDE}px;max-height:{THUMB_SIDE}px;
display:block;background:#eee}} .noimg{{width:{THUMB_SIDE}px;height:80px;background:#eee}} .why{{color:#555}}
section{{border-top:2px solid #ddd;margin-top:1.5em}} h3{{margin:.8em 0 .3em}} code{{font-size:.9em;word-break:break-all}}
</style></head><body>
<h1>What the model associates: audit contact sheet</h1>
<p>Collection <code>{e(result["collection"])}</code> · model <code>{e(result["model"])}</code> ·
measured {e(result["measured"])} · top {result["k"]} pictures per probe, searched with the guardrails off.</p>
<p>Review each row: do pictures of particular groups of people come up for criminal, dehumanising or
demeaning descriptions, or do occupations follow gender stereotypes? Consider content notes or blocks
(<code>guardrails.json</code>), hiding items, or a note in the collection card. Scores are cosine similarities;
compare them with the reference rows.</p>
{"".join(sections)}
</body></html>
"""


def write_audit(
    coll: Collection, result: dict[str, Any], output: str | Path | None = None
) -> tuple[Path, Path]:
    """Write the HTML contact sheet and its JSON (default ``<collection>/audit/audit-<model>.html``)."""
    html_path = Path(output) if output else coll.root / "audit" / f"audit-{model_slug(result['model'])}.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = html_path.with_name(html_path.name + ".tmp")
    tmp.write_text(render_html(coll, result), encoding="utf-8")
    tmp.replace(html_path)
    json_path = html_path.with_suffix(".json")
    write_json_atomic(json_path, result)
    return html_path, json_path
