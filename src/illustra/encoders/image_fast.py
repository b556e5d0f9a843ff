"""INT8 image tower for embedding pictures on CPUs without native bfloat16.

The picture side of a CLIP-family model is almost all Linear layers (a ViT-B/32 spends 99 % of its
8.7 GFLOPs per picture in them). On CPUs that compute bfloat16 natively, autocast runs those at
several times float32 speed; elsewhere ONNX Runtime's dynamic INT8 quantisation (INT8 weights,
activations quantised per call) uses the integer units (VNNI, AVX2) instead.

Activations are quantised with one scale per call, so each picture is run on its own: its vector
never depends on which pictures shared its batch, and a resumed or distributed run gives the same
vectors as one uninterrupted run.

Built once per model at first use (``cpu_precision=int8``) and kept beside the INT8 text tower
(``text_fast.cache_dir``), keyed by the model's files and library versions. Each build measures,
on probe pictures, its agreement with float32 and both speeds (kept in ``meta.json``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from . import text_fast

MIN_COSINE = text_fast.MIN_COSINE
INPUT = "pixel_values"


class Int8ImageTower:
    """An ONNX Runtime session over the quantised image tower: pixel arrays in, features out."""

    def __init__(self, folder: Path, threads: int) -> None:
        import onnxruntime as ort

        meta = json.loads((folder / "meta.json").read_text())
        self.folder = folder
        self.agreement: float = float(meta["agreement"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(folder / "image_int8.onnx"), opts, providers=["CPUExecutionProvider"]
        )

    def __call__(self, pixel_values: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(pixel_values, dtype=np.float32)
        rows = [self.session.run(None, {INPUT: x[i : i + 1]})[0] for i in range(len(x))]
        return np.concatenate(rows, axis=0).astype(np.float32, copy=False)


def probe_pictures(n: int = 8) -> list[Image.Image]:
    """Varied deterministic pictures for the agreement check: engraving-like lines and hatching,
    flat colour, gradients, noise, light and dark."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        w, h = (320, 240) if i % 2 else (240, 320)
        paper = tuple(int(c) for c in rng.integers(150, 250, 3))
        im = Image.new("RGB", (w, h), paper)
        d = ImageDraw.Draw(im)
        ink = tuple(int(c) for c in rng.integers(0, 120, 3))
        for _ in range(20 + 10 * i):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            d.line(
                (x0, y0, x0 + int(rng.integers(-90, 90)), y0 + int(rng.integers(-90, 90))), fill=ink, width=2
            )
        d.ellipse((w // 4, h // 4, w // 2 + 10 * i, h // 2 + 5 * i), outline=ink, width=3)
        arr = np.asarray(im, np.int16)
        if i % 3 == 0:
            arr = arr + rng.integers(-40, 40, arr.shape, dtype=np.int16)
        if i % 4 == 1:
            arr = arr + np.linspace(-60, 60, w, dtype=np.int16)[None, :, None]
        out.append(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
    return out


def _wrapper(model: Any) -> Any:
    import torch

    class ImageFeatures(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: Any) -> Any:
            out = self.model.get_image_features(pixel_values=pixel_values)
            return out if torch.is_tensor(out) else out.pooler_output

    return ImageFeatures().eval()


def _rate(fn: Callable[[np.ndarray], Any], sample: np.ndarray) -> float:
    fn(sample)  # first call: allocations, kernel choice
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        fn(sample)
        best = min(best, time.perf_counter() - t)
    return round(len(sample) / best, 2)


def build(
    model: Any, folder: Path, sample: np.ndarray, reference: Callable[[np.ndarray], np.ndarray], threads: int
) -> None:
    """Export the image tower of ``model`` to ONNX, quantise it to INT8, measure its agreement
    with float32 and both speeds on ``sample`` (prepared probe pictures); ``reference``: pixel
    arrays -> float32 vectors of the model as loaded."""
    import shutil

    import torch

    work = text_fast.workspace(folder)
    try:
        args = (torch.from_numpy(np.ascontiguousarray(sample[:2], dtype=np.float32)),)
        axes = {INPUT: {0: "batch"}, "features": {0: "batch"}}
        text_fast.export_int8(_wrapper(model), args, work, "image", [INPUT], axes)
        (work / "meta.json").write_text(json.dumps({"format": text_fast.FORMAT, "agreement": 0.0}))
        tower = Int8ImageTower(work, threads)
        fast, ref = text_fast._unit(tower(sample)), text_fast._unit(reference(sample))
        rates = {"int8": _rate(tower, sample), "fp32": _rate(reference, sample)}
        meta = {
            "format": text_fast.FORMAT,
            "agreement": round(float(np.min(np.sum(fast * ref, axis=1))), 6),
            "images_per_s": rates,
            "threads": threads,
        }
        (work / "meta.json").write_text(json.dumps(meta))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    text_fast.install(work, folder)
