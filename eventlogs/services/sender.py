"""Posting generated batches to the collector: gzip NDJSON, token auth, retries with backoff, never a silent drop.

Transient failures (connection errors, 429, 5xx) are retried with exponential backoff and jitter; a
permanent answer (any other 4xx) or running out of attempts raises DeliveryError, which the generator
command turns into a failing exit naming the batch, so an undelivered batch is never silent.
"""

from __future__ import annotations

import gzip
import logging
import random
import time
from collections.abc import Iterable
from typing import Any

import orjson
import requests

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0


class DeliveryError(Exception):
    pass


def encode_ndjson(records: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def post_batch(
    session: requests.Session, url: str, token: str, records: list[dict[str, Any]], *, attempts: int = 8
) -> dict[str, Any]:
    """POST one batch; returns the collector's answer ({"accepted", "failed", "batch"})."""
    body = gzip.compress(encode_ndjson(records), compresslevel=1)
    headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    if token:
        headers["Authorization"] = f"Token {token}"
    problem = ""
    for attempt in range(1, attempts + 1):
        try:
            response = session.post(url, data=body, headers=headers, timeout=30)
        except requests.RequestException as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 202:
                return dict(response.json())
            problem = f"HTTP {response.status_code}: {response.text[:300]}"
            if response.status_code < 500 and response.status_code != 429:
                raise DeliveryError(f"collector refused a batch of {len(records)} records ({problem})")
        delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        logger.warning("batch of %d records: attempt %d/%d failed (%s); retrying in %.1f s",
                       len(records), attempt, attempts, problem, delay)  # fmt: skip
        if attempt < attempts:
            time.sleep(delay)
    raise DeliveryError(f"a batch of {len(records)} records was not delivered after {attempts} attempts ({problem})")
