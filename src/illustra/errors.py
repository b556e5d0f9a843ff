"""Specific exceptions raised by core code.

Front ends translate these: the CLI into one-line messages and exit codes, the API into
``{"error": {"code", "message"}}`` responses. Core code never exits the process.
"""

from __future__ import annotations


class IllustraError(Exception):
    """Base class. ``code`` is a stable machine-readable name; ``exit_code`` is for the CLI;
    ``http_status`` is for the API."""

    code = "error"
    exit_code = 1
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInput(IllustraError):
    code = "bad_input"
    exit_code = 2
    http_status = 422


class CollectionNotFound(IllustraError):
    code = "collection_not_found"
    exit_code = 3
    http_status = 404


class CollectionError(IllustraError):
    """The collection exists but is unusable (bad manifest, schema version, half-written)."""

    code = "collection_error"
    exit_code = 3
    http_status = 500


class ItemNotFound(IllustraError):
    code = "item_not_found"
    exit_code = 3
    http_status = 404


class NotEmbedded(IllustraError):
    code = "not_embedded"
    exit_code = 4
    http_status = 409


class IndexMissing(IllustraError):
    code = "index_missing"
    exit_code = 4
    http_status = 409


class ModelMismatch(IllustraError):
    code = "model_mismatch"
    exit_code = 5
    http_status = 409


class ModelUnavailable(IllustraError):
    code = "model_unavailable"
    exit_code = 6
    http_status = 503


class BadImage(IllustraError):
    """An image that cannot be decoded safely: corrupt, truncated, not an image, too large."""

    code = "bad_image"
    exit_code = 2
    http_status = 422


class SourceError(IllustraError):
    code = "source_error"
    exit_code = 7
    http_status = 400


class DownloadError(IllustraError):
    code = "download_error"
    exit_code = 7
    http_status = 502


class Refused(IllustraError):
    """A guardrail refused the request (blocked term, face-dominated upload, URL fetch disabled)."""

    code = "refused"
    exit_code = 8
    http_status = 403


class NotBuilt(IllustraError):
    """Something derived from the vectors (near-duplicate clusters, the collection map) was asked
    for before ``illustra duplicates`` / ``illustra map`` built it."""

    code = "not_built"
    exit_code = 4
    http_status = 409


class BackendUnavailable(IllustraError):
    """The search backend cannot be used: a Milvus server that does not answer, a Milvus Lite file
    another process holds, or the client library not installed."""

    code = "backend_unavailable"
    exit_code = 9
    http_status = 503


class EngineUnavailable(IllustraError):
    """The embedding engine asked for cannot be used: Ray not installed, or a Ray cluster that
    cannot be reached."""

    code = "engine_unavailable"
    exit_code = 9
    http_status = 503
