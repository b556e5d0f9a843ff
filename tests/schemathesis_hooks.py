"""What schemathesis cannot read from the OpenAPI document, for runs against the API
(``SCHEMATHESIS_HOOKS=tests.schemathesis_hooks``):

* rules of the search parameters that relate two of them (stated in the parameter descriptions,
  enforced by the server with a 422): the hooks keep the fuzzer from calling such a request
  "schema-valid";
* what a valid query image is: the upload's declared media types get strategies that make real,
  small pictures (random bytes under ``image/png`` are rightly refused as "not an image").
"""

from __future__ import annotations

import io
from typing import Any

import schemathesis
from hypothesis import strategies as st
from PIL import Image

IMAGE_FIELDS = ("image", "file", "url")
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}


def _picture(fmt: str) -> st.SearchStrategy[bytes]:
    def make(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", size, colour).save(buf, format=fmt)
        return buf.getvalue()

    side = st.integers(min_value=8, max_value=64)
    channel = st.integers(min_value=0, max_value=255)
    return st.builds(make, st.tuples(side, side), st.tuples(channel, channel, channel))


for _media, _fmt in FORMATS.items():
    schemathesis.openapi.media_type(_media, _picture(_fmt))


def _consistent(params: dict[str, Any]) -> bool:
    """``year`` is not combined with ``year_from``/``year_to``; ``year_from`` <= ``year_to``."""
    if "year" in params and ("year_from" in params or "year_to" in params):
        return False
    lo, hi = params.get("year_from"), params.get("year_to")
    return not (isinstance(lo, int) and isinstance(hi, int) and lo > hi)


@schemathesis.hook
def filter_query(ctx: Any, query: dict[str, Any] | None) -> bool:
    return _consistent(query or {})


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    if not isinstance(body, dict):
        return True
    # One query image per request (the schema's oneOf), and the form's filters are consistent.
    return sum(name in body for name in IMAGE_FIELDS) <= 1 and _consistent(body)


@schemathesis.hook
def filter_case(ctx: Any, case: Any) -> bool:
    # Every phase passes through here (the container hooks above guide generation). A parameter
    # given both in the query string and in the form: the form's value is used, so the rules apply
    # to the merged parameters.
    body = case.body if isinstance(case.body, dict) else {}
    if sum(name in body for name in IMAGE_FIELDS) > 1:
        return False
    return _consistent({**(case.query or {}), **{k: v for k, v in body.items() if k not in IMAGE_FIELDS}})
