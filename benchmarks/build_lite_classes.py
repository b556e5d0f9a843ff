"""Rebuild ``src/illustra/data/imagenet_classes.tsv``, the class table the ``lite`` encoder reads.

The table holds facts only, gathered from three public sources (none is needed at run time):

* the ImageNet-1k class order and WordNet lemmas/glosses shipped in the timm wheel
  (``timm/data/_info/imagenet_synsets.txt``, ``imagenet_synset_to_lemma.txt``,
  ``imagenet_synset_to_definition.txt``; Apache-2.0),
* the readable class names of the open_clip wheel (``open_clip/zero_shot_metadata.py``,
  ``IMAGENET_CLASSNAMES``; MIT, after OpenAI's CLIP),
* WordNet 3.0's noun hierarchy (Debian ``wordnet-base``, ``/usr/share/wordnet/data.noun``;
  WordNet licence) for each class's direct hypernym and its basic-level category.

Usage::

    pip download --no-deps timm open_clip_torch -d /tmp/wheels
    apt-get install wordnet-base
    python benchmarks/build_lite_classes.py --wheels /tmp/wheels
"""

from __future__ import annotations

import argparse
import ast
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "illustra" / "data" / "imagenet_classes.tsv"

# Basic-level categories (Rosch): the everyday word a person would use for a thing. A class's
# category is its nearest WordNet ancestor in this list, matched on the ancestor's first lemma
# (so the dog-breed synset "toy dog, toy" is not mistaken for "toy"). The nearest ancestor wins,
# so "tabby" gets "cat" rather than "animal"; the broad words in GENERIC are used only when no
# specific one is an ancestor at all (WordNet has several parents: grouse is a "game" animal too).
CATEGORIES: dict[str, str] = {
    # animals
    "dog": "dog",
    "wolf": "wolf",
    "fox": "fox",
    "domestic cat": "cat",
    "big cat": "big cat",
    "bear": "bear",
    "monkey": "monkey",
    "ape": "ape",
    "rodent": "rodent",
    "leporid": "rabbit",
    "swine": "pig",
    "bovid": "cattle",
    "antelope": "antelope",
    "aquatic mammal": "sea mammal",
    "marsupial": "marsupial",
    "horse": "horse",
    "elephant": "elephant",
    "wildcat": "wild cat",
    "mammal": "mammal",
    "bird of prey": "bird of prey",
    "parrot": "parrot",
    "bird": "bird",
    "shark": "shark",
    "fish": "fish",
    "snake": "snake",
    "lizard": "lizard",
    "turtle": "turtle",
    "crocodilian reptile": "crocodile",
    "reptile": "reptile",
    "frog": "frog",
    "salamander": "salamander",
    "amphibian": "amphibian",
    "arachnid": "arachnid",
    "spider": "spider",
    "butterfly": "butterfly",
    "beetle": "beetle",
    "insect": "insect",
    "crab": "crab",
    "crustacean": "crustacean",
    "mollusk": "mollusc",
    "echinoderm": "sea creature",
    "coelenterate": "sea creature",
    "worm": "worm",
    "animal": "animal",
    # plants and food
    "fungus": "mushroom",
    "flower": "flower",
    "vegetable": "vegetable",
    "edible fruit": "fruit",
    "fruit": "fruit",
    "dish": "dish",
    "beverage": "drink",
    "baked goods": "baked goods",
    "food": "food",
    # vehicles
    "car": "car",
    "truck": "truck",
    "bus": "bus",
    "bicycle": "bicycle",
    "motor vehicle": "motor vehicle",
    "train": "train",
    "boat": "boat",
    "ship": "ship",
    "aircraft": "aircraft",
    "vehicle": "vehicle",
    # made things
    "musical instrument": "musical instrument",
    "gun": "gun",
    "weapon": "weapon",
    "clock": "clock",
    "timepiece": "clock",
    "computer": "computer",
    "telephone": "telephone",
    "electronic equipment": "electronic device",
    "home appliance": "household appliance",
    "kitchen utensil": "kitchen utensil",
    "tableware": "tableware",
    "lamp": "lamp",
    "hand tool": "tool",
    "tool": "tool",
    "pen": "pen",
    "writing implement": "writing implement",
    "ball": "ball",
    "sports equipment": "sports equipment",
    "game equipment": "game",
    "chair": "chair",
    "seat": "seat",
    "bed": "bed",
    "furniture": "furniture",
    "bottle": "bottle",
    "box": "box",
    "bag": "bag",
    "container": "container",
    "hat": "hat",
    "headdress": "hat",
    "footwear": "shoe",
    "necktie": "necktie",
    "armor": "armour",
    "garment": "clothing",
    "clothing": "clothing",
    "fence": "fence",
    "shop": "shop",
    "dwelling": "house",
    "building": "building",
    "bridge": "bridge",
    "structure": "structure",
    "optical instrument": "optical instrument",
    "measuring instrument": "measuring instrument",
    "machine": "machine",
    "toiletry": "toiletry",
    "geological formation": "landscape",
    "device": "device",
}

GENERIC = {"animal", "mammal", "device", "structure", "container", "machine", "vehicle", "clothing", "food"}


def parse_wordnet(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """wnid -> (lemmas, hypernym wnids) from a WordNet 3.0 ``data.noun`` file."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue
        head = line.split(" | ")[0].split()
        offset, n_words = head[0], int(head[3], 16)
        words = [head[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        i = 4 + 2 * n_words
        n_ptrs = int(head[i])
        i += 1
        hypernyms = []
        for _ in range(n_ptrs):
            symbol, target, pos = head[i], head[i + 1], head[i + 2]
            i += 4
            if symbol in ("@", "@i") and pos == "n":
                hypernyms.append("n" + target)
        out["n" + offset] = (words, hypernyms)
    return out


def ancestors(wnid: str, wn: dict[str, tuple[list[str], list[str]]]) -> list[str]:
    """Breadth-first ancestors, nearest first (WordNet allows several hypernyms)."""
    seen: list[str] = []
    frontier = list(wn[wnid][1])
    while frontier:
        nxt: list[str] = []
        for a in frontier:
            if a not in seen:
                seen.append(a)
                nxt.extend(wn[a][1])
        frontier = nxt
    return seen


def clean(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--wheels", type=Path, required=True, help="folder with the timm and open_clip_torch wheels"
    )
    ap.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet/data.noun"))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    timm = zipfile.ZipFile(next(args.wheels.glob("timm-*.whl")))
    oc = zipfile.ZipFile(next(args.wheels.glob("open_clip_torch-*.whl")))

    def info(name: str) -> list[str]:
        return timm.read(f"timm/data/_info/{name}").decode().splitlines()

    wnids = [w.strip() for w in info("imagenet_synsets.txt")]
    lemmas = dict(line.split("\t", 1) for line in info("imagenet_synset_to_lemma.txt"))
    glosses = dict(line.split("\t", 1) for line in info("imagenet_synset_to_definition.txt"))
    meta = oc.read("open_clip/zero_shot_metadata.py").decode()
    start = meta.index("IMAGENET_CLASSNAMES")
    names = ast.literal_eval(meta[meta.index("(", start) : meta.index("\n)", start) + 2])
    assert len(wnids) == len(names) == 1000
    wn = parse_wordnet(args.wordnet)

    rows = ["index\twnid\tname\tlemmas\tcategory\thypernym\tgloss"]
    for i, (wnid, name) in enumerate(zip(wnids, names, strict=True)):
        anc = ancestors(wnid, wn)
        found = [CATEGORIES[wn[a][0][0]] for a in anc if wn[a][0][0] in CATEGORIES]
        category = next((c for c in found if c not in GENERIC), found[0] if found else "")
        hypernym = wn[anc[0]][0][0] if anc else ""
        lem = "; ".join(clean(x) for x in lemmas[wnid].split(", "))
        rows.append(
            "\t".join([str(i), wnid, clean(name), lem, category, clean(hypernym), clean(glosses[wnid])])
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {len(rows) - 1} classes to {args.out}")


if __name__ == "__main__":
    main()
