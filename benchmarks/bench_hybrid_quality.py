"""mAP@100 of visual, text and hybrid search side by side on the Open Clip Art development queries.

    .venv/bin/python benchmarks/bench_hybrid_quality.py [--collection DIR] [--queries FILE]

Uses the demo collection (``illustra demo`` builds it in <data_dir>/demo-openclipart: lite
embeddings, and a text index over title, description and keywords with MiniLM sentence vectors).
The default configuration is the headline; the other rows show what each part contributes
(keywords only, weighted-score fusion, other hybrid weights) and are diagnostics, not tuning: the
shipped defaults are the standard ones (RRF, k=60, equal weights).

Caveat, also written into the result: these queries were judged from each drawing's own title and
keywords, i.e. from the metadata the text and hybrid modes search, so those modes' figures
overstate how they would do on independently judged queries.

Writes benchmarks/results/hybrid_quality_openclipart.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from needs import OPENCLIPART_QUERIES, need_openclipart_queries

from illustra import settings
from illustra.eval.modes import compare_modes

HERE = Path(__file__).resolve().parent
QUERIES = OPENCLIPART_QUERIES

VARIANTS = [
    ("default", ["visual", "text", "hybrid"], {}),
    ("keywords_only", ["text", "hybrid"], {"ILLUSTRA_TEXT_SEMANTIC_SEARCH": "off"}),
    ("weighted_fusion", ["hybrid"], {"ILLUSTRA_HYBRID_FUSION": "weighted"}),
    ("hybrid_visual2_text1", ["hybrid"], {"ILLUSTRA_HYBRID_WEIGHTS": "visual=2,text=1"}),
    ("hybrid_visual1_text2", ["hybrid"], {"ILLUSTRA_HYBRID_WEIGHTS": "visual=1,text=2"}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--collection", default=str(Path(str(settings.get("data_dir"))) / "demo-openclipart"))
    ap.add_argument("--queries", default=str(QUERIES))
    ap.add_argument("--out", default=str(HERE / "results" / "hybrid_quality_openclipart.json"))
    args = ap.parse_args()
    need_openclipart_queries(args.queries)
    out: dict = {"collection": args.collection, "queries": Path(args.queries).name, "k": 100, "variants": {}}
    for name, modes, env in VARIANTS:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            t = time.perf_counter()
            res = compare_modes(args.collection, args.queries, modes, k=100)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        rows = {
            r["mode"]: {m: round(r[m], 4) for m in ("map", "p@10", "r@10", "ndcg@10")}
            for r in res["comparison"]
        }
        out["variants"][name] = {"settings": env, "modes": rows, "seconds": round(time.perf_counter() - t, 1)}
        if name == "default":
            out["model"] = res["model"]
            out["n_queries"] = res["n_queries"]
            out["random"] = {m: round(v, 5) for m, v in res["random"].items()}
            out["judgements_from_metadata"] = res["judgements_from_metadata"]
            out["caveat"] = res.get("caveat")
            out["per_query_ap"] = {
                mode: {q["query"]: round(q["ap"], 4) for q in res["modes"][mode]["queries"]} for mode in modes
            }
        print(name, json.dumps(rows), flush=True)
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
