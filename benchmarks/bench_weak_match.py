"""How well the weak-match level separates results that match from results that do not.

    .venv/bin/python benchmarks/bench_weak_match.py --collection DIR [--model lite] [--queries FILE]

Measures (or reads) the collection's weak-match level for the model, then runs every judged query
in visual mode (k=10) and counts how often a result marked weak / not weak is judged relevant,
how many judged queries (each has relevant items) are answered "nothing matches", and the same
for a fixed list of queries with no picture in the Open Clip Art collection. Writes
benchmarks/results/weak_match.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from needs import OPENCLIPART_QUERIES, need_openclipart_queries

from illustra.search import SearchService

HERE = Path(__file__).resolve().parent
# Queries for things the Open Clip Art collection is not about (chosen, not checked item by item).
NO_PICTURE = ["a man on a horse", "a tax return form", "an x-ray of a lung", "a stock market chart",
              "a nuclear reactor", "a bank statement", "a knight in armour jousting", "a cathedral interior"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--collection", required=True, type=Path)
    ap.add_argument("--model", default="lite")
    ap.add_argument("--queries", type=Path, default=OPENCLIPART_QUERIES)
    args = ap.parse_args()
    need_openclipart_queries(args.queries)
    judged = [json.loads(line) for line in args.queries.read_text(encoding="utf-8").splitlines() if line.strip()]
    svc = SearchService(args.collection, args.model)
    level = svc.weak_match()
    counts = {"strong": [0, 0], "weak": [0, 0]}  # [relevant, all]
    judged_nothing = []
    for q in judged:
        resp = svc.search_text(q["query"], k=10, mode="visual")
        rel = set(q["relevant_ids"])
        for h in resp.results:
            c = counts["weak" if h.weak else "strong"]
            c[0] += h.id in rel
            c[1] += 1
        if resp.nothing_matches:
            judged_nothing.append(q["query"])
    unmatched = {q: svc.search_text(q, k=10, mode="visual").nothing_matches for q in NO_PICTURE}
    out = {
        "command": f"benchmarks/bench_weak_match.py --collection {args.collection} --model {args.model}",
        "load": os.getloadavg(),
        "level": level,
        "judged_queries": len(judged),
        "precision_at_10_strong": round(counts["strong"][0] / max(counts["strong"][1], 1), 4),
        "precision_at_10_weak": round(counts["weak"][0] / max(counts["weak"][1], 1), 4),
        "results_strong": counts["strong"][1],
        "results_weak": counts["weak"][1],
        "judged_queries_answered_nothing_matches": judged_nothing,
        "no_picture_queries_answered_nothing_matches": unmatched,
    }
    print(json.dumps(out, indent=1))
    dest = HERE / "results" / "weak_match.json"
    dest.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
