"""A tiny local copy of ``biglam/british-library-book-images`` laid out the way the Hub lays it out.

One folder per config holding ``train-0000x-of-0000y.parquet`` shards, and a README.md whose YAML
header declares the configs with their ``data_files`` (what ``push_to_hub(config_name=...)``
writes), so ``datasets.load_dataset(folder, "plates", split="train")`` resolves it exactly as it
resolves the Hub repository. Columns as on the Hub: ``image`` (an Image feature holding JPEG
bytes), ``date`` (a string, "Unknown" where the catalogue has none), ``fname`` and ``image_type``;
a ``siglip2_embeddings`` config holds vectors and no images.

Some fnames name pictures that are in ``blsample.REAL_ROWS`` (for joins with a BL Flickr
manifest), written with other zero-padding than the manifest's.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

# (fname, date) per config. Padding varies on purpose: "000002" is the manifest's "02".
PLATES: list[tuple[str, str]] = [
    # blsample REAL_ROWS[0]: 000214101 / 02 / 000508 / 1 (Barth, Gotha, 1857)
    (
        "000214101_000002_508_1_Reisen und Entdeckungen in Nord- und Central-Afrika in den Jahren 1_1857.jpg",
        "1857",
    ),
    # REAL_ROWS[1]: 003418991 / 0 / 000075 / 1 (Smith, Glasgow, 1862)
    ("003418991_0_000075_1_Researches in newer pliocene and post-tertiary geology_1862.jpg", "1862"),
    # REAL_ROWS[4]: 001720349 / 0 / 000011 / 1 (1618; Greek in the title)
    ("001720349_00_000011_01_Τεχνογαμια_ or the Marriages of the Arts_1618.jpg", "1618"),
    (
        "000811462_05_000205_1_The Pictorial History of England being a history of the people as well as a hi_1855.jpg",
        "1855",
    ),
    (
        "000811462_05_000206_1_The Pictorial History of England being a history of the people as well as a hi_1855.jpg",
        "1855",
    ),
    (
        "000811462_000009_000210_2_The Pictorial History of England being a history of the people as well as a hi_1855.jpg",
        "1855",
    ),
    ("002369124_0_000123_1_The Land of the Pharaohs_1875.jpg", "[1875?]"),
    ("001041515_0_000044_1_Old and New Paris_1894.jpg", "1894"),
    ("003256748_0_000002_2_Tamerlane the Great, a tragedy_1681.jpg", "1681"),
    ("001988615_0_000300_3_Knight_s Cyclopaedia of London_Unknown.jpg", "Unknown"),
    ("000194802_0_000017_1_Pictorial History of the State of New York_1950.jpg", "1950"),
    ("000034793_0_000099_1_Wanderings in every Clime_1872.jpg", "1872"),
    ("scan of a plate.jpg", "1860"),  # does not parse
    ("001992753_0_000018_1_Overland through Asia_1870.jpg", "1870"),  # broken image bytes
    ("003441509_0_000150_1_Travels in Upper and Lower Egypt_1800.jpg", "1800"),
    ("001760871_0_000201_4_France pittoresque_1835.jpg", "1835"),
]
EMBELLISHMENTS: list[tuple[str, str]] = [
    (
        "000214101_02_000509_1_Reisen und Entdeckungen in Nord- und Central-Afrika in den Jahren 1_1857.jpg",
        "1857",
    ),
    (
        "000214101_02_000509_2_Reisen und Entdeckungen in Nord- und Central-Afrika in den Jahren 1_1857.jpg",
        "1857",
    ),
    ("003418991_0_000076_1_Researches in newer pliocene and post-tertiary geology_1862.jpg", "1862"),
    (
        "000811462_05_000207_1_The Pictorial History of England being a history of the people as well as a hi_1855.jpg",
        "1855",
    ),
    ("002369124_0_000124_1_The Land of the Pharaohs_Unknown.jpg", "Unknown"),
    ("002369124_0_000125_1_The Land of the Pharaohs_Unknown.jpg", "Unknown"),
    ("001041515_0_000045_1_Old and New Paris_1894.jpg", "1894"),
    ("000033833_0_000012_1_The Vicar of Wakefield_1850.jpg", "1850"),
    ("003920572_0_000008_1_Picturesque Scenery of the Isle of Wight_1829.jpg", "1829"),
    ("003920572_0_000009_1_Picturesque Scenery of the Isle of Wight_1829.jpg", "1929"),  # a catalogue error
    ("002691742_0_000003_1__Unknown.jpg", "Unknown"),  # empty title slug
    ("000167719_x_000007_1_Der vorgeschichtliche Mensch_1874.jpg", "1874"),  # volume is not a number
    ("003545394_0_000040_1_Jorrocks_ Jaunts and Jollities_1869.jpg", "1869"),
    ("000299848_0_000090_1_Dictionnaire des sciences anthropologiques_1883.jpg", "1883"),
]
BROKEN = "001992753_0_000018_1_Overland through Asia_1870.jpg"
LARGE = "000811462_05_000205_1_The Pictorial History of England being a history of the people as well as a hi_1855.jpg"
UNPARSED = ["scan of a plate.jpg", "000167719_x_000007_1_Der vorgeschichtliche Mensch_1874.jpg"]


def jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _image(fname: str, i: int) -> bytes:
    if fname == BROKEN:
        return b"\xff\xd8\xff\xe0 this is not the rest of a JPEG"
    if fname == LARGE:
        return jpeg((900, 500), (120, 90, 60))
    return jpeg((40 + 7 * i, 30 + 5 * i), (10 * i % 256, 80, 200 - 5 * i))


def readme(configs: list[str]) -> str:
    lines = ["---", "license: cc0-1.0", "configs:"]
    for c in configs:
        lines += [f"- config_name: {c}", "  data_files:", "  - split: train", f"    path: {c}/train-*"]
    return "\n".join([*lines, "---", "", "# British Library book images (test copy)", ""])


def write_config(
    root: Path,
    config: str,
    rows: list[tuple[str, str]],
    *,
    shards: int = 1,
    columns: dict[str, str] | None = None,
) -> None:
    """One config's parquet shards; ``columns`` renames columns (to build misnamed layouts)."""
    import datasets

    names = {
        "image": "image",
        "date": "date",
        "fname": "fname",
        "image_type": "image_type",
        **(columns or {}),
    }
    data: dict[str, list[Any]] = {
        names["image"]: [{"bytes": _image(f, i), "path": None} for i, (f, _) in enumerate(rows)],
        names["date"]: [d for _, d in rows],
        names["fname"]: [f for f, _ in rows],
        names["image_type"]: [config] * len(rows),
    }
    feats = datasets.Features(
        {
            names["image"]: datasets.Image(),
            names["date"]: datasets.Value("string"),
            names["fname"]: datasets.Value("string"),
            names["image_type"]: datasets.Value("string"),
        }
    )
    ds = datasets.Dataset.from_dict(data, features=feats)
    folder = root / config
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        ds.shard(shards, k, contiguous=True).to_parquet(
            str(folder / f"train-{k:05d}-of-{shards:05d}.parquet")
        )


def write_embeddings(root: Path) -> None:
    import datasets

    ds = datasets.Dataset.from_dict(
        {"fname": [f for f, _ in PLATES[:3]], "siglip2_embeddings": [[0.1, 0.2, 0.3]] * 3}
    )
    folder = root / "siglip2_embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(folder / "train-00000-of-00001.parquet"))


def write_bl_hub(root: Path, *, columns: dict[str, str] | None = None, readme_header: bool = True) -> Path:
    """The tiny dataset: ``plates`` (2 shards, 16 rows), ``embellishments`` (14 rows) and
    ``siglip2_embeddings`` (vectors)."""
    write_config(root, "plates", PLATES, shards=2, columns=columns)
    write_config(root, "embellishments", EMBELLISHMENTS, columns=columns)
    write_embeddings(root)
    if readme_header:
        (root / "README.md").write_text(
            readme(["plates", "embellishments", "siglip2_embeddings"]), encoding="utf-8"
        )
    return root
