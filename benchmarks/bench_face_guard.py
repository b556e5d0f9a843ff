"""Face guard: true refusals on real photographs of people, false refusals on drawings.

    .venv/bin/python benchmarks/bench_face_guard.py --data /tmp/face-guard-data [--workers 2]

Fetches, with the ordinary clients, packages that ship sample photographs (the scikit-image wheel,
the insightface sdist, Debian's opencv-doc; matplotlib and scikit-learn are installed already),
unpacks them under --data, and runs the guard (``face_dominates`` with the default settings) on

* photographs of people at portrait scale (head-and-shoulders, half-length, a small group): each
  must be refused;
* photographs without people (landscapes, objects, animals, test charts): none may be refused;
* photographs with people at a smaller scale (full-length, half-hidden): counted, either answer is
  acceptable;
* every PNG of Debian's Open Clip Art collection (/usr/share/openclipart/png, drawings, many of
  people): the false-refusal rate.

Writes benchmarks/results/face_guard.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from illustra.guardrails.faces import DEFAULT_MIN_FRACTION, face_dominates

ROOT = Path(__file__).resolve().parent.parent
OPENCLIPART = Path("/usr/share/openclipart/png")
SKIMAGE = "scikit-image==0.26.0"
INSIGHTFACE = "insightface==2.1"
OPENCV_DOC = "opencv-doc"  # Debian 4.6.0+dfsg
DOC_HTML = "usr/share/doc/opencv-doc/opencv4/html/"
DOC_DATA = "usr/share/doc/opencv-doc/examples/data/"

# (source, path under --data or installed package, what it shows)
PORTRAITS = [
    ("matplotlib (installed)", "matplotlib:grace_hopper.jpg", "head and shoulders, US Navy photograph"),
    (SKIMAGE, "skimage/data/astronaut.png", "half-length, NASA photograph, 512 px"),
    (INSIGHTFACE, "insightface/data/images/Tom_Hanks_54745.png", "close-up, greyscale"),
    (INSIGHTFACE, "insightface/data/images/t1.jpg", "group of six at a table"),
    (OPENCV_DOC, DOC_HTML + "227943776_1.jpg", "head and shoulders"),
    (OPENCV_DOC, DOC_HTML + "230501201_1.jpg", "head and shoulders"),
    (OPENCV_DOC, DOC_HTML + "face_swapped.jpg", "head and shoulders (face-swap demo)"),
    (OPENCV_DOC, DOC_HTML + "Sobel_Derivatives_Tutorial_Theory_0.jpg", "head and shoulders, greyscale"),
    (OPENCV_DOC, DOC_HTML + "faceDetection.png", "head and shoulders, a box drawn on it"),
    (OPENCV_DOC, DOC_HTML + "Cascade_Classifier_Tutorial_Result_Haar.jpg", "webcam, circles drawn on it"),
    (OPENCV_DOC, DOC_HTML + "Cascade_Classifier_Tutorial_Result_LBP.jpg", "webcam, circles drawn on it"),
    (OPENCV_DOC, DOC_HTML + "ab.jpg", "head and shoulders, landmarks drawn on it"),
    (OPENCV_DOC, DOC_HTML + "ab-1.jpg", "close-up, landmarks drawn on it"),
]
SMALLER_PEOPLE = ["messi5.jpg", "basketball1.png", "basketball2.png"]  # plus left*/right*, camera
NOT_PHOTOS = {"skimage/data/chessboard_GRAY.png", "skimage/data/chessboard_RGB.png"}


def fetch(data: Path) -> None:
    """Download and unpack the packages (skipped when already there)."""
    data.mkdir(parents=True, exist_ok=True)
    dl = data / "downloads"
    if not (data / "skimage").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dl), SKIMAGE], check=True
        )
        whl = next(dl.glob("scikit_image-*.whl"))
        with zipfile.ZipFile(whl) as z:
            z.extractall(data, [n for n in z.namelist() if n.startswith("skimage/data/")])
    if not (data / "insightface").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(dl),
                INSIGHTFACE,
            ],
            check=True,
        )
        with tarfile.open(next(dl.glob("insightface-*.tar.gz"))) as t:
            for m in t.getmembers():
                if "/insightface/data/images/" in m.name and m.isfile():
                    m.name = m.name.split("/", 1)[1]
                    t.extract(m, data, filter="data")
    if not (data / DOC_DATA).is_dir():
        subprocess.run(["apt-get", "download", OPENCV_DOC], cwd=dl, check=True, capture_output=True)
        subprocess.run(["dpkg-deb", "-x", str(next(dl.glob("opencv-doc_*.deb"))), str(data)], check=True)


def resolve(data: Path, path: str) -> Path:
    if path.startswith("matplotlib:"):
        from matplotlib import cbook

        return Path(cbook.get_sample_data(path.split(":", 1)[1], asfileobj=False))
    return data / path


def check(path: str) -> tuple[str, dict | None, float]:
    t = time.perf_counter()
    try:
        with Image.open(path) as im:
            im.draft("RGB", (800, 800))
            im.load()
            found = face_dominates(im)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return path, {"error": str(exc)[:80]}, 0.0
    elapsed = time.perf_counter() - t
    if found is None:
        return path, None, elapsed
    return path, {"fraction": found.fraction, "flat_share": found.flat_share, "kind": found.kind}, elapsed


def run_all(paths: list[str], workers: int) -> list[tuple[str, dict | None, float]]:
    with ProcessPoolExecutor(workers) as ex:
        return list(ex.map(check, paths, chunksize=16))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/face-guard-data"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first N Open Clip Art images")
    args = ap.parse_args()
    Image.MAX_IMAGE_PIXELS = 200_000_000
    fetch(args.data)
    started = time.time()
    load_start = os.getloadavg()

    portraits = [(src, p, what, str(resolve(args.data, p))) for src, p, what in PORTRAITS]
    pos = run_all([f for *_, f in portraits], args.workers)
    skimage_photos = sorted(
        f"skimage/data/{p.name}"
        for p in (args.data / "skimage/data").iterdir()
        if p.suffix in (".png", ".jpg")
        and f"skimage/data/{p.name}" not in NOT_PHOTOS
        and p.name not in ("astronaut.png", "camera.png")
    )
    doc = sorted(p.name for p in (args.data / DOC_DATA).iterdir() if p.suffix in (".png", ".jpg"))
    smaller = [DOC_DATA + n for n in doc if n in SMALLER_PEOPLE or n.startswith(("left", "right"))]
    smaller.append("skimage/data/camera.png")
    no_people = skimage_photos + [DOC_DATA + n for n in doc if DOC_DATA + n not in smaller]
    import sklearn.datasets

    sk_images = Path(sklearn.datasets.__file__).parent / "images"
    no_people_paths = [str(args.data / p) for p in no_people] + [
        str(p) for p in sorted(sk_images.glob("*.jpg"))
    ]
    neg = run_all(no_people_paths, args.workers)
    mid = run_all([str(args.data / p) for p in smaller], args.workers)

    clipart = sorted(str(p) for p in OPENCLIPART.rglob("*.png"))
    if args.limit:
        clipart = clipart[: args.limit]
    t0 = time.perf_counter()
    oca = run_all(clipart, args.workers)
    oca_s = time.perf_counter() - t0
    oca_ok = [r for r in oca if not (r[1] and "error" in r[1])]
    oca_refused = [r for r in oca_ok if r[1] is not None]

    def rel(p: str) -> str:
        return p.replace(str(args.data) + "/", "")

    refused_pos = sum(r[1] is not None for r in pos)
    out = {
        "benchmark": "face_guard",
        "command": ".venv/bin/python benchmarks/bench_face_guard.py " + " ".join(sys.argv[1:]),
        "settings": {"face_min_fraction": DEFAULT_MIN_FRACTION},
        "portraits": {
            "refused": refused_pos,
            "total": len(pos),
            "rate": round(refused_pos / len(pos), 3),
            "items": [
                {"source": src, "file": p, "shows": what, "refused": r[1] is not None, "finding": r[1]}
                for (src, p, what, _), r in zip(portraits, pos, strict=True)
            ],
        },
        "photos_without_people": {
            "refused": sum(r[1] is not None for r in neg),
            "total": len(neg),
            "sources": [
                SKIMAGE + " wheel (skimage/data)",
                OPENCV_DOC + " (examples/data)",
                "scikit-learn (installed)",
            ],
            "refused_files": [rel(r[0]) for r in neg if r[1] is not None],
        },
        "photos_with_smaller_people_either_way": {
            "refused": sum(r[1] is not None for r in mid),
            "total": len(mid),
            "refused_files": [rel(r[0]) for r in mid if r[1] is not None],
        },
        "openclipart": {
            "images": len(oca_ok),
            "unreadable": len(oca) - len(oca_ok),
            "false_refusals": len(oca_refused),
            "false_refusal_rate": round(len(oca_refused) / max(1, len(oca_ok)), 5),
            "refused_files": [r[0].replace(str(OPENCLIPART) + "/", "") for r in oca_refused],
            "seconds": round(oca_s, 1),
            "ms_per_image_incl_decode": round(1000 * oca_s * args.workers / max(1, len(oca)), 1),
        },
        "check_ms_on_photos_p50": round(1000 * sorted(r[2] for r in pos + neg)[len(pos + neg) // 2], 1),
        "machine": {"cpus": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "wall_s": round(time.time() - started, 1),
    }
    dest = ROOT / "benchmarks/results/face_guard.json"
    dest.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(
        json.dumps({k: out[k] for k in ("portraits", "photos_without_people", "openclipart")}, default=str)[
            :1500
        ]
    )


if __name__ == "__main__":
    main()
