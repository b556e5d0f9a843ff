"""A folder of image files, searched recursively, with optional metadata sidecars.

Images are recognised by content as well as by extension (a PNG named ``.jpg`` or a JPEG with no
extension is still found). Sidecars follow the 🤗 ``imagefolder`` convention: ``metadata.csv`` or
``metadata.jsonl`` with a ``file_name`` column relative to the sidecar's own directory. The id of
an item is its path relative to the folder, without extension, so it stays stable across re-runs.
Files that cannot be decoded safely are skipped and written to the ingest report.
"""

from __future__ import annotations

import csv
import json
import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import images, settings
from ..errors import BadImage, SourceError
from .base import FieldPlan, IngestContext, ordered_map, progress_bar

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp"}
SIDECAR_NAMES = ("metadata.csv", "metadata.jsonl")
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM")


def looks_like_image(path: Path) -> bool:
    """Sniff the first bytes for an image signature (for files without an image extension)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    if head.startswith(_MAGIC):
        return True
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _norm_key(name: str) -> str:
    return posixpath.normpath(name.replace("\\", "/")).lstrip("/")


def read_sidecar(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and records of a metadata.csv / metadata.jsonl file."""
    try:
        if path.suffix.lower() == ".jsonl":
            records: list[dict[str, Any]] = []
            columns: dict[str, None] = {}
            with path.open(encoding="utf-8-sig") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise SourceError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
                    if not isinstance(rec, dict):
                        raise SourceError(f"{path}:{lineno}: each line must be a JSON object")
                    columns.update(dict.fromkeys(rec))
                    records.append(rec)
            return list(columns), records
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = [r for r in reader]
            return list(reader.fieldnames or []), rows
    except OSError as exc:
        raise SourceError(f"cannot read metadata file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"cannot parse metadata file {path}: {exc}") from None


class FolderSource:
    kind = "folder"

    def __init__(
        self,
        path: str | Path,
        *,
        metadata: str | Path | None = None,
        workers: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_dir():
            raise SourceError(f"{path} is not a folder")
        self.metadata_file = Path(metadata).expanduser().resolve() if metadata else None
        if self.metadata_file is not None and not self.metadata_file.is_file():
            raise SourceError(f"metadata file {metadata} does not exist")
        self.workers = int(workers or settings.get("workers"))
        self.limit = limit
        self.files, sidecars = self._scan()
        if not self.files:
            raise SourceError(f"no image files found under {path}")
        self._meta: dict[str, dict[str, Any]] = {}
        columns: dict[str, None] = {}
        for base, sidecar in sidecars:
            cols, records = read_sidecar(sidecar)
            if "file_name" not in cols:
                raise SourceError(f"metadata file {sidecar} has no 'file_name' column")
            columns.update(dict.fromkeys(c for c in cols if c != "file_name"))
            for rec in records:
                name = rec.get("file_name")
                if not name:
                    continue
                key = _norm_key(posixpath.join(base, str(name)))
                self._meta[key] = rec
        self.plan = FieldPlan.from_columns(columns)
        self.extra_fields = self.plan.extra_fields
        self.text_fields: list[str] | None = None
        self.sidecars = [str(s) for _, s in sidecars]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "metadata": self.sidecars}

    def _scan(self) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
        """All candidate image files (relative posix path, absolute path) in a stable order, and
        the sidecars found (base directory relative to the folder, sidecar path)."""
        files: list[tuple[str, Path]] = []
        sidecars: list[tuple[str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(self.path):
            here = Path(dirpath)
            # Skip hidden folders, and collections kept inside the folder (their own downloads).
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and not (here / d / "manifest.json").is_file()
            )
            rel_dir = here.relative_to(self.path).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                full = here / name
                if name in SIDECAR_NAMES:
                    if self.metadata_file is None:
                        sidecars.append((rel_dir, full))
                    continue
                if full.suffix.lower() in IMAGE_EXTENSIONS or looks_like_image(full):
                    files.append((posixpath.join(rel_dir, name) if rel_dir else name, full))
        if self.metadata_file is not None:
            sidecars = [("", self.metadata_file)]
        return files, sidecars

    def rows(self, ctx: IngestContext) -> Iterator[dict[str, Any]]:
        side = int(settings.get("stored_image_side"))
        matched: set[str] = set()
        used_ids: set[str] = set()

        def planned() -> Iterator[tuple[str, str, Path]]:
            count = 0
            for rel, full in self.files:
                if self.limit is not None and count >= self.limit:
                    return
                count += 1
                item_id = posixpath.splitext(rel)[0]
                if item_id in used_ids:
                    # a.jpg and a.png in one folder: the second keeps its extension in its id.
                    item_id = rel
                used_ids.add(item_id)
                if rel in self._meta:
                    matched.add(rel)
                if not ctx.claim(item_id):
                    continue
                yield item_id, rel, full

        def load(task: tuple[str, str, Path]) -> tuple[str, str, Path, bytes | None, str | None]:
            item_id, rel, full = task
            try:
                im = images.open_image(full, max_side=side)
                return item_id, rel, full, images.encode_stored(im), None
            except BadImage as exc:
                return item_id, rel, full, None, exc.message

        total = len(self.files) if self.limit is None else min(self.limit, len(self.files))
        bar = progress_bar(ctx.progress, total, "ingest", "img")
        try:
            for item_id, rel, full, data, error in ordered_map(load, planned(), workers=self.workers):
                bar.update(1)
                if data is None:
                    ctx.report.add(item_id, str(full), error or "unreadable")
                    continue
                row = self.plan.apply(self._meta.get(rel, {}))
                row.update(id=item_id, image={"bytes": data, "path": None}, image_path=str(full))
                yield row
        finally:
            bar.close()
        unmatched = len(set(self._meta) - matched)
        if unmatched and self.limit is None:
            ctx.notes.append(f"{unmatched} metadata rows name no image file in the folder")
