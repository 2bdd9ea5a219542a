"""Request bodies for aiops' write endpoints: JSON parsed by orjson (3-5x faster than json on big
batches) with a byte limit answered by 413 before the body is parsed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The request body is too large."


class LimitedJSONParser(BaseParser):
    """application/json up to the view's `max_body_bytes` (a 413 above it, a 400 for invalid JSON;
    NaN and Infinity are not JSON and are rejected)."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        context = parser_context or {}
        limit = int(context["view"].max_body_bytes())
        declared = context["request"].META.get("CONTENT_LENGTH") or 0
        if int(declared) > limit:
            raise RequestTooLarge(f"the body has {declared} bytes; the limit is {limit}")
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise RequestTooLarge(f"the body is larger than the limit of {limit} bytes")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error: {exc}") from exc
