"""Health checks: a small registry that core and every app add checks to at start-up.

core never imports a domain app; an app registers its own checks in its AppConfig.ready().
Checks run concurrently so the slowest one (the worker ping) bounds the response time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


HealthCheck = Callable[[], CheckResult]
_checks: dict[str, HealthCheck] = {}


def register(name: str) -> Callable[[HealthCheck], HealthCheck]:
    """Decorator: add a check under `name` (re-registering a name replaces it)."""

    def decorator(check: HealthCheck) -> HealthCheck:
        _checks[name] = check
        return check

    return decorator


def registered() -> list[str]:
    return sorted(_checks)


def _run_one(name: str, check: HealthCheck) -> dict[str, object]:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # noqa: BLE001 - a broken check is a failing component, not a 500
        logger.warning("health check %s raised: %r", name, exc)
        result = CheckResult(ok=False, detail=f"check raised {type(exc).__name__}: {exc}")
    return {"ok": result.ok, "detail": result.detail, "ms": round((time.perf_counter() - started) * 1000, 1)}


def run_all() -> dict[str, dict[str, object]]:
    """Run every registered check concurrently; return name -> {ok, detail, ms}."""
    with ThreadPoolExecutor(max_workers=max(1, len(_checks))) as pool:
        futures = {name: pool.submit(_run_one, name, check) for name, check in _checks.items()}
        return {name: future.result() for name, future in sorted(futures.items())}
