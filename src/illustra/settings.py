"""One registry of settings, feeding CLI defaults, environment variables and the docs.

Each setting is read from ``ILLUSTRA_<NAME>`` when set, else its default. ``illustra settings``
prints this table, and README's settings section is generated from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "ILLUSTRA_" + self.name.upper()

    def get(self) -> Any:
        raw = os.environ.get(self.env)
        if raw is None or raw == "":
            return self.default
        if isinstance(self.default, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(self.default, int):
            return int(raw)
        if isinstance(self.default, float):
            return float(raw)
        return raw


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "illustra")


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("data_dir", _default_data_dir(), "Per-user directory holding the demo collection."),
        Setting("model", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "Default embedding model (Hub id, local directory, or 'lite')."),
        Setting("max_image_pixels", 64_000_000, "Images with more pixels than this are refused as decompression bombs."),
        Setting("max_image_bytes", 50_000_000, "Image files larger than this many bytes are refused."),
        Setting("stored_image_side", 1024, "Longest side of the bounded-size image copy stored in a collection."),
        Setting("exact_index_max", 50_000, "Collections up to this size get an exact (flat) index; larger ones HNSW."),
        Setting("batch_size", 32, "Images per model call when embedding."),
        Setting("workers", max(1, (os.cpu_count() or 2)), "Decode/resize worker threads when embedding."),
        Setting("download_concurrency", 8, "Concurrent downloads."),
        Setting("download_timeout", 20.0, "Seconds to wait for a download to connect or to send the next bytes."),
        Setting("download_retries", 3, "Retries for transient download failures, with exponential backoff."),
        Setting("allow_url_fetch", False, "Let the API fetch query images by URL (bounded in size and time)."),
        Setting("upload_max_bytes", 20_000_000, "Largest image upload the API accepts."),
        Setting("guardrails", True, "Face-upload refusal, sensitive-term notes and language notices."),
        Setting("face_guard", True, "With guardrails on: refuse uploaded photographs in which a face dominates."),
        Setting("face_min_fraction", 0.08, "A detected face covering at least this fraction of an upload counts as dominating it."),
        Setting("terms_file", "", "JSON or CSV file of sensitive query terms (action note/block/off) overriding the shipped list."),
        Setting("language_notice", True, "With guardrails on: tell users of non-English queries that the model was evaluated in English."),
        Setting(
            "cpu_precision",
            "auto",
            "CLIP inference on CPU: 'fp32', 'bf16', or 'auto' (bf16 where the CPU computes it natively).",
        ),
        Setting("host", "127.0.0.1", "Address `illustra serve` binds to."),
        Setting("port", 8000, "Port `illustra serve` listens on."),
        Setting("openclipart_dir", "/usr/share/openclipart", "Where the Debian openclipart-png/-svg packages keep their png/ and svg/ folders (used by `illustra demo`)."),
        Setting("url_fetch_timeout", 10.0, "Seconds the API waits for an image URL to answer (the whole fetch gets twice this)."),
        Setting("url_fetch_private", False, "Let URL fetching reach loopback/private addresses (off: only public hosts)."),
        Setting("thumbnail_side", 256, "Longest side of the thumbnails the web app serves."),
        Setting("embed_chunk_rows", 1024, "Rows per embedding chunk; an interrupted `illustra embed` resumes from the last finished chunk."),
        Setting("torch_threads", 0, "CPU threads for model inference (0: one per available core)."),
        Setting("hybrid_fusion", "rrf", "How hybrid search joins the picture and catalogue rankings: 'rrf' (reciprocal rank fusion) or 'weighted' (min-max scores)."),
        Setting("hybrid_weights", "visual=1,text=1", "Weights of the picture and catalogue rankings in hybrid search."),
        Setting("rrf_k", 60, "Reciprocal rank fusion constant: larger values flatten the advantage of top ranks."),
        Setting("text_weights", "keyword=1,semantic=1", "Weights of the keyword (BM25) and sentence-vector rankings within catalogue text search."),
        Setting("text_field_weights", "", "BM25 weight per text field, e.g. 'title=3,keywords=3,publisher=0.5' (unnamed fields keep their defaults)."),
        Setting("text_semantic", "auto", "Build sentence vectors of catalogue text in `illustra index`: on, off, or auto (collections up to text_semantic_auto_max items)."),
        Setting("text_semantic_auto_max", 20_000, "With text_semantic=auto, collections up to this many items get sentence vectors (about 15-30 documents/s per CPU core)."),
        Setting("text_semantic_model", "minilm", "Sentence model for catalogue text: 'minilm' (offline all-MiniLM-L6-v2) or an encoder name such as a CLIP model id."),
        Setting("text_semantic_search", True, "Use the sentence vectors of catalogue text at query time (off: keywords only, no sentence model loaded)."),
    ]
}


def get(name: str) -> Any:
    return SETTINGS[name].get()
