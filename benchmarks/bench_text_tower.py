"""Text-query latency of a SigLIP 2 so400m-sized text tower: float32, bf16 autocast and INT8 side by side.

    .venv/bin/python benchmarks/bench_text_tower.py [--queries 200] [--timed 30] [--keep DIR]

The model directory is built offline: the text tower of ``google/siglip2-so400m-patch16-256`` at
its real size (27 layers, width 1152, MLP 4304, 16 heads, 256k vocabulary, 64 tokens padded to
max length) with random, seeded weights (speed does not depend on the values), a tiny vision tower
(it is not timed), and a byte-level BPE tokenizer trained on the benchmark's queries. It is loaded
with ``ClipEncoder`` like any model directory, and every figure goes through the encoder's own
text path (tokenizer, model, normalisation), uncached:

- latency per query (batch of one), the three precisions interleaved query by query so machine
  load affects all alike: p50 / p95;
- agreement of bf16 and INT8 query vectors with float32 over ``--queries`` varied queries: cosine
  mean / min, and ranking agreement on an index of random unit vectors (overlap of the top 10,
  same top 1);
- the INT8 tower's one-time build (export + quantisation, at first use) and its load on a second
  start (from the files kept on disk), and a cached repeat of a query.

Writes benchmarks/results/text_tower.json with the command and the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "text_tower.json"
TEXT = {
    "vocab_size": 256000,
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "max_position_embeddings": 64,
    "projection_size": 1152,
}

_SUBJECTS = [
    "ship", "cathedral", "map of london", "portrait of a woman", "steam locomotive", "botanical drawing",
    "skeleton", "balloon ascent", "decorated initial letter", "title page", "mountain hut", "lion",
    "Napoléon", "market square", "shipwreck", "bridge over the Thames", "Egyptian temple", "owl",
    "knight on horseback", "garden plan", "fashion plate", "coin", "theatre stage", "whale",
]
_STYLES = [
    "", "engraving of a", "woodcut of a", "hand-coloured lithograph of a", "a small vignette with a",
    "an 1850s photograph of a", "caricature of a", "diagram of a",
]
_TAILS = [
    "", "at night", "in the snow", "with people watching", "from a travel book of 1870",
    "surrounded by ornamental border and foliage, signed by the engraver", "and its reflection",
]


def queries(n: int, seed: int = 0) -> list[str]:
    """Varied queries: single words, phrases, long descriptions, non-ASCII."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        parts = [
            _STYLES[int(rng.integers(len(_STYLES)))],
            _SUBJECTS[int(rng.integers(len(_SUBJECTS)))],
            _TAILS[int(rng.integers(len(_TAILS)))],
        ]
        q = " ".join(p for p in parts if p)
        if i % 7 == 0:
            q = _SUBJECTS[i % len(_SUBJECTS)]
        out.append(f"{q} {i}" if i % 11 == 0 else q)
    return out


def _tokenizer(corpus: list[str]):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    eos, pad = "<eos>", "<pad>"
    tok = Tokenizer(models.BPE(unk_token=eos))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2048,
        special_tokens=[pad, eos],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", special_tokens=[(eos, tok.token_to_id(eos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=eos, pad_token=pad, unk_token=eos, model_max_length=64
    )


def build_model(path: Path, corpus: list[str]) -> Path:
    import torch
    import transformers
    from transformers import Siglip2Config, Siglip2Model

    transformers.utils.logging.set_verbosity_error()
    from transformers import Siglip2ImageProcessorPil, Siglip2Processor

    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(corpus)
    pad = tokenizer.convert_tokens_to_ids("<pad>")
    eos = tokenizer.convert_tokens_to_ids("<eos>")
    config = Siglip2Config(
        text_config={**TEXT, "pad_token_id": pad, "eos_token_id": eos, "bos_token_id": eos},
        vision_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "patch_size": 16, "num_patches": 16,
        },
    )
    torch.manual_seed(0)
    Siglip2Model(config).save_pretrained(path)
    image_processor = Siglip2ImageProcessorPil(patch_size=16, max_num_patches=16)
    Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(xs) * 1000, q)), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=200, help="queries for the agreement figures")
    ap.add_argument("--timed", type=int, default=30, help="timed queries per precision")
    ap.add_argument("--index", type=int, default=20000, help="random unit vectors in the ranking index")
    ap.add_argument("--keep", default="", help="model directory to build once and reuse")
    args = ap.parse_args()
    command = ".venv/bin/python benchmarks/bench_text_tower.py" + "".join(
        f" {a}" for a in sys.argv[1:]
    )
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    load_start = os.getloadavg()
    qs = queries(args.queries)
    tmp = None
    if args.keep:
        model_dir = Path(args.keep)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="text-tower-"))
        model_dir = tmp / "siglip2-so400m-text"
    try:
        if not (model_dir / "config.json").is_file():
            t0 = time.perf_counter()
            build_model(model_dir, qs)
            print(f"model directory built in {time.perf_counter() - t0:.0f} s", flush=True)
        shutil.rmtree(model_dir / ".illustra-text-int8", ignore_errors=True)
        os.environ["ILLUSTRA_QUERY_PRECISION"] = "int8"
        from illustra.encoders.clip import ClipEncoder

        enc = ClipEncoder(str(model_dir))
        threads = enc._threads
        t0 = time.perf_counter()
        enc._embed_texts(["warm up"], "int8")
        build_s = time.perf_counter() - t0
        assert enc._int8 is not None, "the INT8 tower was not built"
        agreement_at_build = enc._int8.agreement
        print(f"INT8 tower built at first use in {build_s:.0f} s (agreement {agreement_at_build})", flush=True)
        second = ClipEncoder(str(model_dir))
        t0 = time.perf_counter()
        second._embed_texts(["warm up"], "int8")
        second_s = time.perf_counter() - t0
        del second

        # Agreement: float32 reference in batches (fixed-length padding: batch-independent).
        t0 = time.perf_counter()
        ref = enc._embed_texts(qs, "fp32")
        bf16 = enc._embed_texts(qs, "bf16")
        int8 = enc._embed_texts(qs, "int8")
        print(f"agreement vectors in {time.perf_counter() - t0:.0f} s", flush=True)
        rng = np.random.default_rng(1)
        index = rng.standard_normal((args.index, enc.dim)).astype(np.float32)
        index /= np.linalg.norm(index, axis=1, keepdims=True)

        def agree(x: np.ndarray) -> dict[str, float]:
            cos = np.sum(x * ref, axis=1)
            top_ref = np.argsort(-(ref @ index.T), axis=1)[:, :10]
            top_x = np.argsort(-(x @ index.T), axis=1)[:, :10]
            overlap = [len(set(a) & set(b)) / 10 for a, b in zip(top_ref, top_x, strict=True)]
            return {
                "cosine_mean": round(float(cos.mean()), 5),
                "cosine_min": round(float(cos.min()), 5),
                "top10_overlap_mean": round(float(np.mean(overlap)), 4),
                "top1_same": round(float(np.mean(top_ref[:, 0] == top_x[:, 0])), 4),
            }

        agreement = {"bf16": agree(bf16), "int8": agree(int8)}
        print(json.dumps(agreement), flush=True)

        # Latency: one query at a time, precisions interleaved, rotating which goes first.
        paths = ["fp32", "bf16", "int8"]
        times: dict[str, list[float]] = {p: [] for p in paths}
        loads = []
        for p in paths:
            enc._embed_texts([qs[-1]], p)  # warm
        for i in range(args.timed):
            q = qs[i % len(qs)]
            for p in paths[i % 3 :] + paths[: i % 3]:
                t0 = time.perf_counter()
                enc._embed_texts([q], p)
                times[p].append(time.perf_counter() - t0)
            loads.append(os.getloadavg()[0])
            if i % 5 == 4:
                print(i + 1, {p: pct(v, 50) for p, v in times.items()}, f"load {loads[-1]:.1f}", flush=True)
        enc.embed_texts([qs[0]])
        t0 = time.perf_counter()
        for _ in range(100):
            enc.embed_texts([qs[0]])
        cached_ms = (time.perf_counter() - t0) * 10
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    import onnxruntime
    import torch
    import transformers

    latency = {p: {"p50_ms": pct(v, 50), "p95_ms": pct(v, 95), "n": len(v)} for p, v in times.items()}
    result = {
        "benchmark": "text_tower",
        "command": command,
        "model": "google/siglip2-so400m-patch16-256 text tower at real size (random weights): "
        + ", ".join(f"{k}={v}" for k, v in TEXT.items())
        + "; texts padded to 64 tokens",
        "what": "per query, batch of one, through ClipEncoder's text path (tokenise, model, normalise), "
        "uncached; precisions interleaved query by query",
        "latency": latency,
        "speedup_int8_vs_fp32": round(latency["fp32"]["p50_ms"] / latency["int8"]["p50_ms"], 2),
        "speedup_int8_vs_bf16": round(latency["bf16"]["p50_ms"] / latency["int8"]["p50_ms"], 2),
        "agreement_with_fp32": {
            "queries": len(qs),
            "ranking_index": f"{args.index} random unit vectors, dim {enc.dim}",
            **agreement,
        },
        "int8_tower": {
            "how": "torch.onnx export of get_text_features, onnxruntime.quantization.quantize_dynamic "
            "(INT8 weights, per-run activation scales), ONNX Runtime CPU, one text per run",
            "first_use_build_s": round(build_s, 1),
            "second_start_load_s": round(second_s, 2),
            "agreement_at_build_min_cosine": agreement_at_build,
        },
        "cached_repeat_query_ms": round(cached_ms, 3),
        "threads": threads,
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_during_timing": {"min": round(min(loads), 2), "max": round(max(loads), 2)},
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("latency", "speedup_int8_vs_fp32", "agreement_with_fp32")}))


if __name__ == "__main__":
    main()
