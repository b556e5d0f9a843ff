"""How well near-duplicates are found, and at which threshold: real pictures printed again.

    .venv/bin/python benchmarks/bench_duplicates.py [--originals 300] [--distractors 1200] [--seed 0]

Real pictures (the Open Clip Art PNGs of the demo, /usr/share/openclipart/png): ``--originals``
of them each get eight printed-again variants (benchmarks/printed_again.py: crop, small rotation,
tone and contrast, blur, paper texture, JPEG re-encoding, halftone screen, and all of them at
once), and ``--distractors`` more stand alone. Every picture is embedded with ``lite-visual``, the
picture space ``illustra duplicates`` uses for ``lite`` collections. A pair is a true near-copy
when both come from one original (files with identical bytes count as one picture). Open Clip
Art also holds one picture under several names (files whose pictures are identical once decoded
at 32 x 32 count as one picture), blank or near-blank files (left out), and families of
near-identical drawings (stars with 73 or 77 points, one icon in several colours): generated
shapes and gradients (``shapes/``, ``special/``) are left out, and pairs of different files from
one folder whose names differ only in digits are counted apart ("family pairs"), neither true nor
false. ``--cache FILE`` keeps the vectors, so a second run only recomputes the figures.

Reported per threshold: precision and recall of the pairs whose cosine reaches it, recall per
variant (original to variant), and the same for the clusters ``illustra duplicates`` would form
(the graph of ``illustra.duplicates`` and its connected groups: a pair counts when both items end
up in one cluster, so chains are included). Everything is reported twice: over all the pictures,
and without the icon themes and pictograms (``computer/``, ``signs_and_symbols/``: glyph families
that differ in a detail by design), the closer stand-in for book illustrations. On the latter, the
threshold with the best cluster F1 among those whose pair precision is at least 0.9 is the one
recommended (a folded result hides a picture behind "+N similar": most folds must be right). The highest-scoring pairs of different files are listed, so false positives can
be looked at.

Writes benchmarks/results/duplicates_threshold.json (machine load recorded at each phase).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from needs import OPENCLIPART_PNG, need_dir  # noqa: E402
from printed_again import VARIANTS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = [0.70, 0.75, 0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98]
SIDE = 512  # pictures are worked on at this size (the encoder sees 224 px)
MIN_PRECISION = 0.9  # of pairs
SKIP_FOLDERS = {"shapes", "special"}  # generated shapes, gradients and patterns
# Icon themes and pictograms: families of near-identical glyphs by design (align-left and
# text-left, arrows left and right); reported with and without them.
ICON_FOLDERS = ("computer/", "signs_and_symbols/")
LOADS: list[dict[str, Any]] = []


def load_mark(phase: str) -> None:
    LOADS.append({"phase": phase, "loadavg": [round(x, 2) for x in os.getloadavg()]})


def family(rel: str) -> str:
    """Folder and file name without digits: drawings of one generated series share it."""
    path = Path(rel)
    return f"{path.parent}/{re.sub(r'[0-9_.-]+', '', path.stem.lower())}"


def pick(files: list[Path], originals: int, distractors: int, seed: int) -> tuple[list[Path], list[Path]]:
    files = [f for f in files if f.relative_to(OPENCLIPART_PNG).parts[0] not in SKIP_FOLDERS]
    rng = np.random.default_rng(seed)
    chosen = [files[i] for i in rng.permutation(len(files))[: 2 * (originals + distractors)]]
    return chosen[:originals], chosen[originals:]


def identity(im: Any) -> str | None:
    """The picture as seen at 32 x 32 in 16 grey levels (one picture under two names shares it);
    None for a blank or near-blank picture."""
    small = np.asarray(im.convert("L").resize((32, 32)), np.float32)
    if small.std() < 3:
        return None
    return hashlib.sha1((small // 16).astype(np.uint8).tobytes()).hexdigest()


def pair_stats(same: np.ndarray, hit: np.ndarray, ignore: np.ndarray) -> dict[str, float]:
    tp = int(np.count_nonzero(same & hit))
    fp = int(np.count_nonzero(~same & ~ignore & hit))
    pos = int(np.count_nonzero(same))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / pos if pos else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "true_pairs_found": tp, "false_pairs": fp}


def evaluate(vecs: np.ndarray, groups: np.ndarray, kinds: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Pair and cluster precision/recall per threshold over these pictures."""
    from illustra.duplicates.clusters import connected
    from illustra.duplicates.graph import GraphPlan, build_graph, fingerprint_of

    n = len(names)
    iu = np.triu_indices(n, 1)
    pair_sim = (vecs @ vecs.T)[iu]
    same = groups[iu[0]] == groups[iu[1]]
    fam = np.asarray([family(x.split("#")[0]) for x in names])
    ignore = ~same & (fam[iu[0]] == fam[iu[1]])
    is_orig = kinds == "original"
    variant_pairs = {v: (is_orig[iu[0]] & (kinds[iu[1]] == v) & same) for v in VARIANTS}
    # The clusters illustra duplicates would form (its own graph, then connected groups).
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "v.npy", vecs)
        mm = np.load(Path(tmp) / "v.npy", mmap_mode="r")
        plan = GraphPlan.make("lite-visual", mm, fingerprint_of(mm), k=16, floor=min(THRESHOLDS), probe=4)
        t = time.perf_counter()
        ga, gb, gs = build_graph(mm, plan, Path(tmp) / "work")
        graph_s = time.perf_counter() - t
    table = []
    for th in THRESHOLDS:
        row: dict[str, Any] = {"threshold": th, "pairs": pair_stats(same, pair_sim >= th, ignore)}
        row["recall_by_variant"] = {
            v: round(float(np.count_nonzero(mask & (pair_sim >= th)) / max(1, np.count_nonzero(mask))), 4)
            for v, mask in variant_pairs.items()
        }
        keep = gs >= th
        cl = connected(n, ga[keep], gb[keep])
        label = cl.keys_for(n)
        together = (label[iu[0]] >= 0) & (label[iu[0]] == label[iu[1]])
        row["clusters"] = {**pair_stats(same, together, ignore), "count": len(cl),
                           "largest": int(cl.sizes().max()) if len(cl) else 0}
        table.append(row)
        print(f"{n:>5} {th:.2f}  pairs P {row['pairs']['precision']:.3f} R {row['pairs']['recall']:.3f}  "
              f"clusters P {row['clusters']['precision']:.3f} R {row['clusters']['recall']:.3f} "
              f"F1 {row['clusters']['f1']:.3f}  " + " ".join(f"{v}:{r:.2f}" for v, r in row["recall_by_variant"].items()),
              flush=True)
    ok = [r for r in table if r["pairs"]["precision"] >= MIN_PRECISION]
    best = max(ok, key=lambda r: (r["clusters"]["f1"], r["threshold"]))["threshold"] if ok else None
    # The closest pairs of different files: false positives (or Open Clip Art's own near-copies).
    files_only = np.flatnonzero(np.isin(kinds[iu[0]], ["original", "distractor"])
                                & np.isin(kinds[iu[1]], ["original", "distractor"]) & ~same & ~ignore)
    top = files_only[np.argsort(-pair_sim[files_only])[:15]]
    return {
        "pictures": n,
        "distinct_pictures": int(len(set(groups.tolist()))),
        "true_pairs": int(np.count_nonzero(same)),
        "family_pairs_not_counted": int(np.count_nonzero(ignore)),
        "all_pairs": int(len(pair_sim)),
        "graph_seconds": round(graph_s, 2),
        "recommended": best,
        "table": table,
        "closest_different_files": [
            {"a": names[iu[0][i]], "b": names[iu[1][i]], "cosine": round(float(pair_sim[i]), 4)} for i in top
        ],
    }


def _cached(path: str | None, names: list[str]) -> tuple[np.ndarray, float] | None:
    if not path or not Path(path).is_file():
        return None
    with np.load(path) as z:
        if z["names"].tolist() != names:
            return None
        return z["vecs"], float(z["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--originals", type=int, default=300)
    ap.add_argument("--distractors", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=None, help="keep the vectors in this .npz (reused when the pictures match)")
    args = ap.parse_args()
    need_dir(OPENCLIPART_PNG, "the Open Clip Art PNGs (Debian package openclipart-png)")
    from illustra.encoders import load_encoder
    from illustra.images import open_image

    command = ".venv/bin/python benchmarks/bench_duplicates.py" + "".join(f" {a}" for a in sys.argv[1:])
    load_mark("start")
    files = sorted(OPENCLIPART_PNG.rglob("*.png"))
    originals, distractors = pick(files, args.originals, args.distractors, args.seed)
    rng = np.random.default_rng(args.seed + 1)

    # Pictures, their group (one per distinct original picture) and what they are.
    pictures: list[Any] = []
    group: list[int] = []
    kind: list[str] = []
    names: list[str] = []
    by_hash: dict[str, int] = {}
    blank = 0
    t = time.perf_counter()
    taken = {"original": 0, "distractor": 0}
    for path in originals + distractors:
        role = "original" if taken["original"] < args.originals else "distractor"
        if role == "distractor" and taken["distractor"] >= args.distractors:
            break
        im = open_image(path, max_side=SIDE)
        ident = identity(im)
        if ident is None:
            blank += 1
            continue
        taken[role] += 1
        g = by_hash.setdefault(ident, len(by_hash))
        rel = str(path.relative_to(OPENCLIPART_PNG))
        pictures.append(im)
        group.append(g)
        kind.append(role)
        names.append(rel)
        if role == "original":
            for vname, make in VARIANTS.items():
                pictures.append(make(im, rng))
                group.append(g)
                kind.append(vname)
                names.append(f"{rel}#{vname}")
    prepare_s = time.perf_counter() - t
    load_mark("after variants")

    cached = _cached(args.cache, names)
    t = time.perf_counter()
    if cached is not None:
        vecs, embed_s = cached
    else:
        enc = load_encoder("lite-visual")
        vecs = np.concatenate([enc.embed_images(pictures[s : s + 32]) for s in range(0, len(pictures), 32)])
        embed_s = time.perf_counter() - t
        if args.cache:
            np.savez(args.cache, vecs=vecs, names=np.array(names), seconds=embed_s)
    load_mark("after embedding")
    groups = np.asarray(group)
    kinds = np.asarray(kind)
    icons = np.asarray([x.startswith(ICON_FOLDERS) for x in names])
    evaluations = {
        "all": evaluate(vecs, groups, kinds, names),
        "pictures": evaluate(vecs[~icons], groups[~icons], kinds[~icons], [x for x, i in zip(names, icons, strict=True) if not i]),
    }
    best = evaluations["pictures"]["recommended"]
    out = {
        "benchmark": "duplicates_threshold",
        "command": command,
        "machine": {"cpus": os.cpu_count()},
        "space": "lite-visual",
        "pictures": len(names),
        "icon_and_pictogram_pictures": int(icons.sum()),
        "originals": taken["original"],
        "distractors": taken["distractor"],
        "distinct_pictures": int(len(set(group))),
        "blank_files_left_out": blank,
        "variants": list(VARIANTS),
        "seconds": {"variants": round(prepare_s, 1), "embedding": round(embed_s, 1)},
        "embed_images_per_second": round(len(names) / embed_s, 1),
        "min_pair_precision": MIN_PRECISION,
        "recommended_threshold": best,
        "evaluations": evaluations,
        "load": LOADS,
    }
    load_mark("end")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "duplicates_threshold.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"recommended threshold (without icons): {out['recommended_threshold']}; wrote {RESULTS / 'duplicates_threshold.json'}")


if __name__ == "__main__":
    main()
