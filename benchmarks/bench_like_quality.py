"""Quality of picture-to-picture queries ("more like this") in each picture space of a collection.

    .venv/bin/python benchmarks/bench_like_quality.py --collection DIR [--queries FILE] [--per-query 5]

For every query of a judged query set, up to ``--per-query`` of its relevant items present in the
collection are used in turn as the "more like this" item; the other relevant items are what should
come back. Reports mAP@100 and P@10 with the model's own space and with its picture-only companion
(e.g. lite vs lite-visual), side by side. Writes benchmarks/results/like_quality.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from needs import OPENCLIPART_QUERIES, need_openclipart_queries

from illustra.collection import Collection
from illustra.eval.metrics import average_precision, precision_at
from illustra.search import SearchService

HERE = Path(__file__).resolve().parent
QUERIES = OPENCLIPART_QUERIES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--collection", required=True, type=Path)
    ap.add_argument("--queries", type=Path, default=QUERIES)
    ap.add_argument("--per-query", type=int, default=5)
    args = ap.parse_args()
    need_openclipart_queries(args.queries)
    coll = Collection(args.collection)
    present = set(coll.ids.tolist())
    judged = [json.loads(line) for line in args.queries.read_text(encoding="utf-8").splitlines() if line.strip()]
    out: dict = {"collection": str(args.collection), "queries_file": str(args.queries), "spaces": {}}
    for label, companion in (("model", False), ("picture_companion", True)):
        svc = SearchService(coll, picture_companion=companion)
        aps, p10s, space = [], [], svc.model
        for q in judged:
            rel = [r for r in q["relevant_ids"] if r in present]
            for item in rel[: args.per_query]:
                others = set(rel) - {item}
                if not others:
                    continue
                resp = svc.search_like(item, k=100)
                ranked = [h.id for h in resp.results]
                space = (resp.results[0].explain.get("space") if resp.results else None) or svc.model
                aps.append(average_precision(ranked, others, 100))
                p10s.append(precision_at(ranked, others, 10))
        out["spaces"][label] = {
            "space": space,
            "item_queries": len(aps),
            "map@100": round(float(np.mean(aps)), 4),
            "p@10": round(float(np.mean(p10s)), 4),
        }
        print(label, out["spaces"][label], flush=True)
    dest = HERE / "results" / "like_quality.json"
    dest.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
