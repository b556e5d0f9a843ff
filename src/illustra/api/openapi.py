"""What the OpenAPI document declares beyond what FastAPI infers from the routes.

* every error status a route returns, each with the one error shape (``ErrorBody``);
* the filter parameters, which depend on the collection (its filterable fields), with their bounds
  from ``search/limits.py``, on the routes marked with ``FILTERS_IN_QUERY`` / ``FILTERS_IN_QUERY_AND_FORM``;
* request bodies the routes read themselves (the report, the upload form).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from ..search.limits import MAX_K, MAX_OFFSET, MAX_QUERY_CHARS, MAX_VALUE_CHARS
from ..search.query import SEARCH_PARAMS

YEAR_MIN, YEAR_MAX = -9999, 9999
FILTERS_MARK = "x-illustra-filters"
FILTERS_IN_QUERY = {FILTERS_MARK: ["query"]}
FILTERS_IN_QUERY_AND_FORM = {FILTERS_MARK: ["query", "form"]}
# Media types an item's image may be served as (unusual formats are re-encoded to JPEG).
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer of the API: a stable machine-readable code and a one-line message."""

    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "The request could not be read.",
    403: "Refused: a guardrail (blocked query term, an upload dominated by a face) or a switched-off "
    "feature (fetching images by URL).",
    404: "No item with this id (or it has no image).",
    409: "The collection is not ready for this search (no embeddings or no index for the model).",
    413: "The request body is over the upload limit (setting upload_max_bytes).",
    422: "A parameter or the body is not valid; the message names it.",
    502: "The image URL could not be fetched.",
    503: "The search model could not be loaded.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the error shape and what it means."""
    return {code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


def filter_schemas(filterable: Sequence[str]) -> dict[str, tuple[dict[str, Any], str]]:
    """Name -> (JSON schema, description) of the paging and every filter the search parameters
    accept (a route's own declaration of one of them is kept)."""
    out: dict[str, tuple[dict[str, Any], str]] = {
        "k": ({"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10}, "Results per page."),
        "offset": (
            {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            "How many results to skip (the page start).",
        ),
        "year_from": (
            {"type": "integer", "minimum": YEAR_MIN, "maximum": YEAR_MAX},
            "Only items dated in or after this year (not after year_to).",
        ),
        "year_to": (
            {"type": "integer", "minimum": YEAR_MIN, "maximum": YEAR_MAX},
            "Only items dated in or before this year.",
        ),
        "year": (
            {"type": "integer", "minimum": YEAR_MIN, "maximum": YEAR_MAX},
            "Only items dated in this year (instead of year_from / year_to, not with them).",
        ),
        "include_undated": (
            {"type": "boolean"},
            "With a year filter, keep items that have no year too.",
        ),
        "title_contains": (
            {"type": "string", "maxLength": MAX_QUERY_CHARS},
            "Only items whose title contains these words (case-insensitive).",
        ),
        "collapse": (
            {"type": "boolean", "default": True},
            "Fold near-duplicates of a result into it (`similar`), once `illustra duplicates` has found them.",
        ),
        "group_books": (
            {"type": "boolean"},
            "Fold other results from a result's book into it (`more_from_book`); default: on in the "
            "text and hybrid modes, off otherwise.",
        ),
    }
    for name in filterable:
        if name not in SEARCH_PARAMS:
            out[name] = (
                {"type": "string", "maxLength": MAX_VALUE_CHARS},
                f"Only items whose {name} is exactly this (case-insensitive).",
            )
    return out


def _add_filters(operation: dict[str, Any], where: str, filters: dict[str, tuple[dict[str, Any], str]]) -> None:
    if where == "query":
        params = operation.setdefault("parameters", [])
        have = {p["name"] for p in params if p.get("in") == "query"}
        for name, (schema, doc) in filters.items():
            if name not in have:
                params.append(
                    {"name": name, "in": "query", "required": False, "schema": schema, "description": doc}
                )
        return
    body = operation.get("requestBody", {}).get("content", {})
    for media in body.values():
        props = media.get("schema", {}).setdefault("properties", {})
        for name, (schema, doc) in filters.items():
            props.setdefault(name, {**schema, "description": doc})


def _one_error_shape(operation: dict[str, Any]) -> None:
    """FastAPI's own 422 (``HTTPValidationError``) is answered in the one error shape here."""
    answer = operation.get("responses", {}).get("422")
    if answer is None:
        return
    media = answer.setdefault("content", {}).setdefault("application/json", {})
    if "ErrorBody" not in str(media.get("schema", {})):
        media["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
        answer["description"] = ERROR_DESCRIPTIONS[422]


def install(app: FastAPI, filterable: Sequence[str], models: Sequence[type[BaseModel]] = ()) -> None:
    """Complete the app's OpenAPI document once, when it is first asked for."""
    from .report_routes import ReportIn

    base = app.openapi
    filters = filter_schemas(filterable)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = base()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        wanted: list[type[BaseModel]] = [ReportIn, ErrorBody, *models]
        for model in wanted:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas.setdefault(model.__name__, schema)
        for item in doc.get("paths", {}).values():
            for operation in item.values():
                for where in operation.pop(FILTERS_MARK, []):
                    _add_filters(operation, where, filters)
                _one_error_shape(operation)
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
