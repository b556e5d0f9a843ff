"""Embedding throughput: a one-image-at-a-time loop versus Illustra's embedding pipeline.

    .venv/bin/python benchmarks/bench_embed.py [--n 200] [--naive-n 50] [--rounds 1]

Both sides run the same ViT-B/32 CLIP architecture (CLIPConfig defaults) with random weights (no
download needed; speed does not depend on the weight values) on the same JPEG scans on disk, in
one run, alternating rounds so machine load affects both alike:

(a) naive: open one file, full decode, processor, model on that one image - the shape of the
    original tutorial's unbatched ``map``;
(b) pipeline: ``embed_collection`` - JPEG draft decode and preprocessing in a thread pool,
    overlapping the model working on batches of ``batch_size`` images, resumable chunks written.

The slow side (a) is timed on the first ``--naive-n`` scans to keep the run short; rates are
per image either way. Writes images/s of both, their ratio and the agreement of the two sides' vectors to
benchmarks/results/embed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RESULTS = Path(__file__).resolve().parent / "results" / "embed.json"


def make_scans(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """Book-illustration-like JPEGs: toned paper, ink lines and hatching, a little blur and noise.

    Sizes follow the collection's stored copies of BL Flickr images (longest side capped at 1024,
    originals around 1300x1200): long side 1024, short side 640-1000, portrait and landscape.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        short = int(rng.integers(640, 1000))
        w, h = (1024, short) if i % 2 else (short, 1024)
        paper = np.array([236, 226, 204]) + rng.integers(-12, 12, 3)
        im = Image.new("RGB", (w, h), tuple(int(c) for c in paper))
        d = ImageDraw.Draw(im)
        ink = tuple(int(c) for c in rng.integers(20, 90, 3))
        for _ in range(int(rng.integers(60, 160))):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            x1, y1 = x0 + int(rng.integers(-300, 300)), y0 + int(rng.integers(-300, 300))
            d.line((x0, y0, x1, y1), fill=ink, width=int(rng.integers(1, 4)))
        for _ in range(int(rng.integers(3, 10))):
            x0, y0 = int(rng.integers(0, w - 50)), int(rng.integers(0, h - 50))
            box = (x0, y0, x0 + int(rng.integers(40, 300)), y0 + int(rng.integers(40, 300)))
            d.ellipse(box, outline=ink, width=2)
        im = im.filter(ImageFilter.GaussianBlur(0.8))
        arr = np.asarray(im, np.int16) + rng.integers(-10, 10, (h, w, 1), dtype=np.int16)
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        p = folder / f"scan-{i:04d}.jpg"
        im.save(p, format="JPEG", quality=90)
        paths.append(p)
    return paths


def save_random_vit_b32(folder: Path) -> Path:
    """ViT-B/32 CLIP with random weights, its standard processor and a small stand-in tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    from transformers import CLIPImageProcessor, CLIPProcessor

    torch.manual_seed(0)
    CLIPModel(CLIPConfig()).save_pretrained(folder)
    # Only images are timed; the tokenizer just has to exist so the directory loads like a real one.
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "picture": 2}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>", model_max_length=77
    )
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer).save_pretrained(folder)
    return folder


def naive(paths: list[Path], processor, model) -> tuple[float, np.ndarray]:
    """One file, one full decode, one processor call, one model call at a time."""
    import torch

    out = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for p in paths:
            im = Image.open(p).convert("RGB")
            inputs = processor(images=im, return_tensors="pt")
            feats = model.get_image_features(**inputs)
            feats = feats if torch.is_tensor(feats) else feats.pooler_output
            out.append(torch.nn.functional.normalize(feats, dim=-1).numpy())
    return time.perf_counter() - t0, np.concatenate(out)


def pipeline(coll_root: Path, encoder, batch_size: int, workers: int) -> tuple[float, np.ndarray, dict]:
    import shutil

    from illustra.collection import Collection
    from illustra.embed import embed_collection
    from illustra.embedding_store import EmbeddingStore

    coll = Collection(coll_root)
    shutil.rmtree(coll_root / "embeddings", ignore_errors=True)
    coll.manifest["embeddings"] = {}
    t0 = time.perf_counter()
    summary = embed_collection(coll, encoder, batch_size=batch_size, workers=workers, progress=False)
    elapsed = time.perf_counter() - t0
    vecs = np.array(EmbeddingStore(Collection(coll_root), encoder.name).vectors())
    return elapsed, vecs, summary.as_dict()


def top_overlap(ref: np.ndarray, other: np.ndarray, k: int = 10) -> float:
    """Mean share of each picture's top-k neighbours (the picture itself left out) that two sets of
    vectors for the same pictures agree on: what a reader would see change in "more like this"."""
    def top(v: np.ndarray) -> np.ndarray:
        sims = v @ v.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :k]

    a, b = top(ref), top(other)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a.tolist(), b.tolist(), strict=True)]))


def ceiling(model, batch: int) -> dict:
    """FLOPs of one picture through the image tower, this CPU's measured matrix-multiply peak in
    float32 and bfloat16 (all threads), and the model alone at the pipeline's batch size."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            model.get_image_features(pixel_values=x[:1])
        flops = counter.get_total_flops()

        def peak(dtype) -> float:
            a = torch.randn(4096, 4096, dtype=dtype)
            b = torch.randn(4096, 4096, dtype=dtype)
            a @ b
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                a @ b
                best = min(best, time.perf_counter() - t)
            return 2 * 4096**3 / best

        def model_rate(autocast: bool) -> float:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                model.get_image_features(pixel_values=x)
                best = float("inf")
                for _ in range(3):
                    t = time.perf_counter()
                    model.get_image_features(pixel_values=x)
                    best = min(best, time.perf_counter() - t)
            return batch / best

        p32, p16 = peak(torch.float32), peak(torch.bfloat16)
        m32, m16 = model_rate(False), model_rate(True)
    return {
        "gflops_per_image": round(flops / 1e9, 2),
        "matmul_peak_gflops": {"fp32": round(p32 / 1e9, 1), "bf16": round(p16 / 1e9, 1)},
        "ceiling_images_per_s": {"fp32": round(p32 / flops, 1), "bf16": round(p16 / flops, 1)},
        "model_alone_images_per_s": {"fp32": round(m32, 1), "bf16": round(m16, 1)},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="number of scans")
    ap.add_argument("--naive-n", type=int, default=50, help="scans timed on the naive side")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds of (a) and (b)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="decode threads (default: setting workers)")
    args = ap.parse_args()

    import torch
    from transformers import AutoModel, AutoProcessor

    from illustra import settings
    from illustra.collection import Collection
    from illustra.encoders.clip import ClipEncoder

    workers = args.workers or int(settings.get("workers"))
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        tmpdir = Path(tmp)
        t = time.perf_counter()
        paths = make_scans(tmpdir / "scans", args.n)
        print(f"made {len(paths)} scans in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        model_dir = save_random_vit_b32(tmpdir / "vit-b32")

        # (a) loads the model the plain transformers way; (b) through the same path users take.
        processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
        model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
        # The pipeline at the machine's default precision (bf16 autocast where the CPU has native
        # bf16), and forced to float32 so batching/overlap gains are visible on their own.
        encoder = ClipEncoder(str(model_dir))
        os.environ["ILLUSTRA_CPU_PRECISION"] = "fp32"
        encoder_fp32 = ClipEncoder(str(model_dir))
        os.environ["ILLUSTRA_CPU_PRECISION"] = "int8"
        encoder_int8 = ClipEncoder(str(model_dir))
        del os.environ["ILLUSTRA_CPU_PRECISION"]
        rows = [
            {"id": p.stem, "image": {"bytes": p.read_bytes(), "path": None}, "image_path": str(p)}
            for p in paths
        ]
        coll_root = tmpdir / "collection"
        Collection.create(coll_root, rows, source={"kind": "benchmark"})

        # Warm both sides up (first-call allocations, lazy imports) outside the timings.
        naive(paths[:2], processor, model)
        encoder.embed_images([Image.open(paths[0]).convert("RGB")] * 2)
        encoder_fp32.embed_images([Image.open(paths[0]).convert("RGB")] * 2)
        t = time.perf_counter()
        encoder_int8.embed_images([Image.open(paths[0]).convert("RGB")] * 2)  # builds the INT8 tower once
        int8_build_s = time.perf_counter() - t

        naive_paths = paths[: max(1, min(args.naive_n, len(paths)))]
        naive_times, pipe_times, fp32_times, int8_times = [], [], [], []
        summary: dict = {}
        vec_a = vec_b = vec_c = vec_i = np.zeros(0)
        load_before = os.getloadavg()
        for r in range(args.rounds):
            ta, vec_a = naive(naive_paths, processor, model)
            tc, vec_c, _ = pipeline(coll_root, encoder_fp32, args.batch_size, workers)
            tb, vec_b, summary = pipeline(coll_root, encoder, args.batch_size, workers)
            ti, vec_i, _ = pipeline(coll_root, encoder_int8, args.batch_size, workers)
            int8_times.append(ti)
            naive_times.append(ta)
            pipe_times.append(tb)
            fp32_times.append(tc)
            print(
                f"round {r + 1}: naive {len(naive_paths) / ta:.2f} img/s, "
                f"pipeline fp32 {len(paths) / tc:.2f} img/s, pipeline {len(paths) / tb:.2f} img/s, "
                f"pipeline int8 {len(paths) / ti:.2f} img/s",
                file=sys.stderr,
            )
        peak = ceiling(model, args.batch_size)
        load_after = os.getloadavg()

        cos = np.sum(vec_a * vec_b[: len(vec_a)], axis=1)
        cos32 = np.sum(vec_a * vec_c[: len(vec_a)], axis=1)
        naive_ips = len(naive_paths) / float(np.median(naive_times))
        pipe_ips = len(paths) / float(np.median(pipe_times))
        fp32_ips = len(paths) / float(np.median(fp32_times))
        sizes = [Image.open(p).size for p in paths]
        result = {
            "benchmark": "embed",
            "command": f".venv/bin/python benchmarks/bench_embed.py --n {args.n} --naive-n {args.naive_n} "
            f"--rounds {args.rounds}",
            "model": "CLIP ViT-B/32 architecture (transformers CLIPConfig defaults), random weights, float32",
            "images": len(paths),
            "image_sizes": f"JPEG q90, long side 1024, short side {min(min(s) for s in sizes)}-"
            f"{max(min(s) for s in sizes)}",
            "mean_jpeg_bytes": int(np.mean([p.stat().st_size for p in paths])),
            "naive": {
                "what": "per image: full decode, processor, model(1 image)",
                "images": len(naive_paths),
                "images_per_s": round(naive_ips, 2),
                "seconds_per_round": [round(x, 2) for x in naive_times],
            },
            "pipeline_fp32": {
                "what": "the same pipeline with ILLUSTRA_CPU_PRECISION=fp32 (batching and overlap only)",
                "images_per_s": round(fp32_ips, 2),
                "seconds_per_round": [round(x, 2) for x in fp32_times],
                "speedup": round(fp32_ips / naive_ips, 2),
                "vector_agreement_cosine": {"mean": round(float(cos32.mean()), 5), "min": round(float(cos32.min()), 5)},
            },
            "pipeline_int8": {
                "what": "the same pipeline with ILLUSTRA_CPU_PRECISION=int8 (ONNX Runtime INT8 image tower, "
                "one picture per call): for CPUs without native bf16; never chosen by 'auto'",
                "images_per_s": round(len(paths) / float(np.median(int8_times)), 2),
                "seconds_per_round": [round(x, 2) for x in int8_times],
                "speedup": round(len(paths) / float(np.median(int8_times)) / naive_ips, 2),
                "tower_build_seconds": round(int8_build_s, 1),
                "top10_overlap_with_fp32": round(top_overlap(vec_c, vec_i), 4),
                "cosine_with_fp32": {
                    "mean": round(float(np.sum(vec_c * vec_i, axis=1).mean()), 5),
                    "min": round(float(np.sum(vec_c * vec_i, axis=1).min()), 5),
                },
            },
            "pipeline": {
                "what": "embed_collection at default precision: draft decode + preprocessing in threads, "
                "batched model, chunks",
                "precision": encoder.describe().get("precision"),
                "images": len(paths),
                "batch_size": args.batch_size,
                "workers": workers,
                "images_per_s": round(pipe_ips, 2),
                "seconds_per_round": [round(x, 2) for x in pipe_times],
                "embedded": summary.get("embedded"),
                "skipped": summary.get("skipped"),
            },
            "speedup": round(pipe_ips / naive_ips, 2),
            "retrieval_agreement_with_fp32": {
                "what": "picture-to-picture top-10 over the scans: default precision against the float32 pipeline",
                "top10_overlap": round(top_overlap(vec_c, vec_b), 4),
                "cosine_min": round(float(np.sum(vec_c * vec_b, axis=1).min()), 5),
            },
            "ceiling": {
                **peak,
                "end_to_end_share_of_bf16_ceiling": round(pipe_ips / peak["ceiling_images_per_s"]["bf16"], 3),
            },
            # Same scans through both sides: draft decoding must not change what the model sees.
            "vector_agreement_cosine": {
                "mean": round(float(cos.mean()), 5),
                "min": round(float(cos.min()), 5),
            },
            "machine": {
                "cpu_cores_available": len(os.sched_getaffinity(0)),
                "torch_threads": torch.get_num_threads(),
                "device": encoder.device.type,
                "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
                "python": platform.python_version(),
                "torch": torch.__version__,
            },
            "note": "rounds alternate (a) and (b); images/s uses the median round of each",
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
