"""One raw record: parsed, or validated against its kind's JSON Schema, or a Failure with the reason (pure).

1. parse the line (size, UTF-8, JSON, an object) — the collector runs it to count what it accepted;
2. validate against eventlogs/schemas/<kind>.json with jsonschema, which words the path and message of a
   failure. Enrichment (prepare.py) runs both, step 2 only for the records its columnar pre-check
   (precheck.py) does not pass, then converts the valid records by column (convert.py).
"""

from __future__ import annotations

import json
import re
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..models import FailedEvent

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
# raid and ad records carry no event id: theirs is a UUID5 of the canonical record in this namespace.
EVENT_NAMESPACE = uuid.UUID("8f0c6c4e-5b1e-4d4e-9a57-3c1a2f6e7d10")
Reason = FailedEvent.Reason


class Failure(Exception):  # noqa: N818 - a record's outcome, not an error of the program
    """Why a record cannot be used: a FailedEvent's reason, message and schema path."""

    def __init__(self, reason: str, message: str, schema_path: str = "") -> None:
        super().__init__(message)
        self.reason, self.message, self.schema_path = reason, message, schema_path


@cache
def validator(kind: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{kind}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def parse_line(raw: bytes, max_bytes: int) -> dict[str, Any]:
    """Step 1: the record as a dict, or Failure (too_large, invalid_utf8, invalid_json, not_an_object)."""
    if len(raw) > max_bytes:
        raise Failure(Reason.TOO_LARGE, f"record of {len(raw)} bytes is above the {max_bytes}-byte limit")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise Failure(Reason.INVALID_UTF8, f"not valid UTF-8 at byte {bad.start}") from None
        raise Failure(Reason.INVALID_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise Failure(Reason.NOT_AN_OBJECT, f"a record must be a JSON object, not {type(record).__name__}")
    return record


def validate(kind: str, record: dict[str, Any]) -> None:
    """Step 2: raise Failure(schema) with the most relevant error's path and message."""
    error = best_match(validator(kind).iter_errors(record))
    if error is None:
        return
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":  # point at the missing field itself
        missing = re.match(r"'([^']+)' is a required property", error.message)
        path = ".".join(filter(None, [path, missing.group(1) if missing else ""]))
    raise Failure(Reason.SCHEMA, error.message, path or "(record)")


def canonical_id(record: dict[str, Any]) -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode())
