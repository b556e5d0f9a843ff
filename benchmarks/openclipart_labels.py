"""Build the labelled set for ``illustra eval --taxonomy`` on the Open Clip Art demo collection.

Open Clip Art's top-level folders give a coarse, fixed taxonomy; the ones that name a visual
subject (listed in ``src/illustra/data/openclipart_taxonomy.csv``) become the labels, and each
item's label is its folder (the collection's ``category`` field). Folders named for a purpose or
a file type (computer icons, shapes, signs, "special", "unsorted") are left out. Each label keeps
at most ``--per-label`` items, spread evenly over its sorted ids, so the set is the same on every
machine with the same Debian package.

    python benchmarks/openclipart_labels.py --collection ~/.local/share/illustra/demo-openclipart \
        --output benchmarks/openclipart_labels.csv
    illustra eval --collection ~/.local/share/illustra/demo-openclipart \
        --taxonomy benchmarks/openclipart_labels.csv --labels src/illustra/data/openclipart_taxonomy.csv
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from illustra.collection import Collection
from illustra.demo import default_collection_dir
from illustra.eval.taxonomy import labels_from_field, load_taxonomy, write_labels

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = ROOT / "src" / "illustra" / "data" / "openclipart_taxonomy.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--collection", default=str(default_collection_dir()))
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "openclipart_labels.csv"))
    ap.add_argument("--per-label", type=int, default=60)
    args = ap.parse_args()
    tax = load_taxonomy(TAXONOMY)
    labels = labels_from_field(Collection(args.collection), "category", tax.labels, per_label=args.per_label)
    write_labels(labels, args.output)
    counts = Counter(labels.values())
    print(f"{len(labels)} labelled items written to {args.output}")
    for lab in tax.labels:
        print(f"  {lab:<15} {counts.get(lab, 0)}")


if __name__ == "__main__":
    main()
