"""A JSON renderer for monitoring's large responses: DRF's output, encoded by orjson.

`/metrics/cpu?limit=1000` is ~150 kB of 1,000 points; the standard library encoder (with DRF's `default`
hook once per timestamp) was a third of that request's CPU. orjson writes the same JSON: compact, UTF-8,
UTC as `Z`, microseconds only when non-zero; only floats below 1e-4 differ in notation (`0.00001` and
`1e-7` for Python's `1e-05` and `1e-07`: the same numbers). Anything it does not know natively goes through DRF's own
encoder hook, and the cases it cannot mirror (an `indent` asked for in Accept, ASCII-only or non-compact
settings, integers beyond 64 bits) fall back to DRF's renderer. One difference: a NaN, which DRF's strict
mode refuses with a 500, is written as null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer

ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
# DRF escapes these two so a response is also valid JavaScript; so do we.
LINE_SEPARATOR = "\u2028".encode()
PARAGRAPH_SEPARATOR = "\u2029".encode()


class FastJSONRenderer(JSONRenderer):
    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        if data is None:
            return b""
        context = dict(renderer_context or {})
        if self.ensure_ascii or not self.compact or self.get_indent(accepted_media_type or "", context) is not None:
            return super().render(data, accepted_media_type, context)
        try:
            body = orjson.dumps(data, default=self.encoder_class().default, option=ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, context)
        return body.replace(LINE_SEPARATOR, b"\\u2028").replace(PARAGRAPH_SEPARATOR, b"\\u2029")
