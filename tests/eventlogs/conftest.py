"""eventlogs fixtures: a private archive directory per test, generated scenarios, a collector client."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from eventlogs.generators import GENERATORS, Event, Options

START = datetime(2024, 3, 24, 11, 25, tzinfo=UTC)


@pytest.fixture(autouse=True)
def archive_dir(tmp_path: Path, settings: Any) -> Path:
    directory = tmp_path / "archive"
    settings.EVENTLOG_ARCHIVE_DIR = directory
    return directory


def generate(kind: str, seed: int = 1, **options: Any) -> list[Event]:
    return [event for game in GENERATORS[kind](Options(start=START, seed=seed, **options)) for event in game.events]


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


@pytest.fixture
def post_events(token_client: APIClient) -> Callable[..., Any]:
    """POST records (or raw bytes) to the collector; gzip by default, like the generators."""

    def post(kind: str, body: list[dict[str, Any]] | bytes, *, gzipped: bool = True,
             content_type: str = "application/x-ndjson", **headers: str) -> Any:  # fmt: skip
        raw = body if isinstance(body, bytes) else ndjson(body)
        if gzipped:
            raw = gzip.compress(raw)
            headers.setdefault("HTTP_CONTENT_ENCODING", "gzip")
        return cast(Any, token_client).generic(
            "POST", f"/api/v1/events/{kind}/", raw, content_type=content_type, **headers
        )

    return post


__all__ = ["START", "generate", "ndjson", "override_settings"]
