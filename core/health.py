"""Health checks: a small registry that core and every app add checks to at start-up.

core never imports a domain app; an app registers its own checks in its AppConfig.ready().
Checks run concurrently so the slowest one (the worker ping) bounds the response time.

Passing results are cached in Redis for HEALTH_CACHE_SECONDS (per check: `register(name, cache_seconds=…)`),
shared by every web worker, so /health answers from the cache in a few milliseconds while it is healthy:
1. fresh passing result (age <= ttl): served as is;
2. stale passing result (ttl < age <= 3 ttl): served, and one background thread (single-flight across
   processes, by a Redis lock) re-runs the check; a component that broke is reported on the next request;
3. no result, or Redis unreachable: the check runs now.
A failing result replaces the cached pass and is reused for FAILURE_CACHE_SECONDS only: the failure stays
current, and a crowd of clients polling a failing component (each failing check can cost a 1 s worker
ping) runs it once per window instead of once per request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

CACHE_PREFIX = "pipewatch:health:"
FAILURE_CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


HealthCheck = Callable[[], CheckResult]
_checks: dict[str, HealthCheck] = {}
_cache_seconds: dict[str, float | None] = {}


def register(name: str, *, cache_seconds: float | None = None) -> Callable[[HealthCheck], HealthCheck]:
    """Decorator: add a check under `name` (re-registering a name replaces it).

    `cache_seconds`: how long a passing result is reused (None: HEALTH_CACHE_SECONDS; 0: never cached).
    """

    def decorator(check: HealthCheck) -> HealthCheck:
        _checks[name] = check
        _cache_seconds[name] = cache_seconds
        return check

    return decorator


def registered() -> list[str]:
    return sorted(_checks)


def _ttl(name: str) -> float:
    configured = _cache_seconds.get(name)
    return float(settings.HEALTH_CACHE_SECONDS if configured is None else configured)


def _run_one(name: str, check: HealthCheck) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # noqa: BLE001 - a broken check is a failing component, not a 500
        logger.warning("health check %s raised: %r", name, exc)
        result = CheckResult(ok=False, detail=f"check raised {type(exc).__name__}: {exc}")
    return {"ok": result.ok, "detail": result.detail, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _fresh_for(name: str, ok: bool) -> float:
    """How long a result of `name` is served as is: its ttl when passing, briefly when failing."""
    ttl = _ttl(name)
    return ttl if ok else min(ttl, FAILURE_CACHE_SECONDS)


def _store(name: str, result: dict[str, Any]) -> None:
    """Cache a result: a pass for 3 ttl (fresh, then stale-while-revalidate), a failure only while fresh."""
    from .redis import redis_client

    fresh = _fresh_for(name, bool(result["ok"]))
    if fresh <= 0:
        return
    keep = 3 * fresh if result["ok"] else fresh
    try:
        entry = {**result, "checked_at": time.time()}
        redis_client().set(CACHE_PREFIX + name, json.dumps(entry), px=max(1, round(keep * 1000)))
    except redis.RedisError as exc:
        logger.debug("health cache unavailable: %s", exc)


def _run_and_store(name: str) -> dict[str, Any]:
    result = _run_one(name, _checks[name])
    _store(name, result)
    return result


def _refresh_in_background(name: str) -> None:
    """Re-run one stale check in a daemon thread, once across all processes (Redis lock)."""
    from .redis import redis_client

    try:
        if not redis_client().set(f"{CACHE_PREFIX}refreshing:{name}", 1, nx=True, ex=30):
            return
    except redis.RedisError:
        return

    def refresh() -> None:
        try:
            _run_and_store(name)
        finally:
            connections.close_all()  # this thread's own database connection
            with contextlib.suppress(redis.RedisError):
                redis_client().delete(f"{CACHE_PREFIX}refreshing:{name}")

    threading.Thread(target=refresh, name=f"health-refresh-{name}", daemon=True).start()


def _cached(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    from .redis import redis_client

    wanted = [name for name in names if _ttl(name) > 0]
    if not wanted:
        return {}
    try:
        raw = redis_client().mget([CACHE_PREFIX + name for name in wanted])
    except redis.RedisError:
        return {}
    return {name: json.loads(value) for name, value in zip(wanted, raw, strict=True) if value}


def _run_now(names: list[str]) -> dict[str, dict[str, Any]]:
    def run(name: str) -> dict[str, Any]:
        try:
            return _run_and_store(name)
        finally:
            connections.close_all()  # the pool thread's own database connection

    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        futures = {name: pool.submit(run, name) for name in names}
        return {name: future.result() for name, future in futures.items()}


def run_all() -> dict[str, dict[str, object]]:
    """Every registered check (cached where fresh): name -> {ok, detail, ms, cached}."""
    now = time.time()
    results: dict[str, dict[str, object]] = {}
    for name, entry in _cached(_checks).items():
        age = now - float(entry.pop("checked_at"))
        fresh = _fresh_for(name, bool(entry["ok"]))
        if age <= fresh or (entry["ok"] and age <= 3 * fresh):
            results[name] = {**entry, "cached": True}
            if age > fresh:
                _refresh_in_background(name)
    due = [name for name in _checks if name not in results]
    if due:
        results.update({name: {**result, "cached": False} for name, result in _run_now(due).items()})
    return dict(sorted(results.items()))
