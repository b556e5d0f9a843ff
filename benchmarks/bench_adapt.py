"""An adapter learnt from half of a collection's catalogue text, measured on the other half.

    .venv/bin/python benchmarks/bench_adapt.py --collection DIR [--model lite] [--queries FILE]

The collection (a copy you may write to: the adapter is stored in it) is split into halves by a
hash of each item's id. ``illustra adapt --exclude-ids`` learns from half A's text only; then
``illustra eval --gallery-ids`` ranks half B's pictures alone, whose text the adapter never saw,
with the base model and with MODEL+adapted. Writes benchmarks/results/adapt.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

from needs import OPENCLIPART_QUERIES, need_openclipart_queries

from illustra.adapters import train
from illustra.collection import Collection
from illustra.eval.retrieval import run_retrieval_eval

HERE = Path(__file__).resolve().parent


def half(item_id: str) -> str:
    return "A" if int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % 2 == 0 else "B"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--collection", required=True, type=Path)
    ap.add_argument("--model", default="lite")
    ap.add_argument("--queries", type=Path, default=OPENCLIPART_QUERIES)
    args = ap.parse_args()
    need_openclipart_queries(args.queries)
    coll = Collection(args.collection)
    ids = [str(x) for x in coll.ids.tolist()]
    gallery = args.collection / "bench-half-B.txt"
    gallery.write_text("\n".join(i for i in ids if half(i) == "B") + "\n", encoding="utf-8")
    load = [os.getloadavg()]
    t = time.perf_counter()
    report = train(coll, args.model, exclude_path=gallery, notify=print)
    train_s = time.perf_counter() - t
    load.append(os.getloadavg())
    out: dict = {
        "command": f"benchmarks/bench_adapt.py --collection {args.collection} --model {args.model}",
        "items": len(ids),
        "half_B_items": sum(1 for i in ids if half(i) == "B"),
        "adapt_seconds": round(train_s, 1),
        "adapter": report,
        "eval": {},
    }
    for model in (args.model, report["model"]):
        r = run_retrieval_eval(Collection(args.collection), args.queries, model=model, k=100, gallery_ids=gallery)
        out["eval"][model] = {"map@100": round(r["metrics"]["map"], 4), "p@10": round(r["metrics"]["p@10"], 4),
                              "random_map": round(r["random"]["map"], 4), "queries": r["n_queries"]}
        print(model, out["eval"][model], flush=True)
    base, adapted = (out["eval"][m]["map@100"] for m in (args.model, report["model"]))
    out["ratio"] = round(adapted / base, 3) if base else None
    load.append(os.getloadavg())
    out["load"] = load
    print("ratio", out["ratio"])
    (HERE / "results" / "adapt.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
