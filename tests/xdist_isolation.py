"""Per-worker isolation for pytest-xdist, loaded with `-p tests.xdist_isolation` before Django's settings.

pytest-django already gives each xdist worker its own test database (`test_<name>_gw0`, ...). This module
does the same for everything else the suite shares through the environment, so that two workers never
see each other's data: its own Redis database (REDIS_URL's database number minus the worker number:
15, 14, ... by default — Celery's broker and results follow REDIS_URL, so real-worker tests are isolated
too), its own Prometheus multiprocess directory and its own var/ directory.
xdist sets PYTEST_XDIST_WORKER before the worker's pytest starts, and this module runs when pytest loads
its plugins, before pytest-django loads the settings. Without xdist it changes nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def _worker_number() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker.removeprefix("gw")) if worker.startswith("gw") else None


def _isolate(number: int) -> None:
    url = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
    base = int(url.path.strip("/") or 0)
    database = base - number
    if database < 0:
        raise RuntimeError(f"REDIS_URL database {base} leaves no Redis database for xdist worker {number}")
    os.environ["REDIS_URL"] = urlunsplit(url._replace(path=f"/{database}"))
    root = Path(tempfile.mkdtemp(prefix=f"pipewatch-gw{number}-"))
    parent_metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    metrics = Path(parent_metrics) / f"gw{number}" if parent_metrics else root / "prometheus"
    metrics.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    os.environ.setdefault("PIPEWATCH_VAR_DIR", str(root / "var"))


if (_number := _worker_number()) is not None:
    _isolate(_number)
