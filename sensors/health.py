"""The "bridge" health check: every serial bridge's heartbeat in Redis is fresh and its port is open."""

from __future__ import annotations

import json
import time

from django.conf import settings

from core import health
from core.redis import redis_client

from .bridge import HEARTBEAT_PREFIX


@health.register("bridge")
def bridge_check() -> health.CheckResult:
    """Fails on a stale heartbeat (bridge dead or hung), a closed port or a spool the database is not draining."""
    client = redis_client()
    keys = sorted(client.scan_iter(match=HEARTBEAT_PREFIX + "*", count=100))
    if not keys:
        required = settings.SENSORS_BRIDGE_REQUIRED
        return health.CheckResult(ok=not required, detail="no serial bridge is running")
    problems: list[str] = []
    summaries: list[str] = []
    for key, raw in zip(keys, client.mget(keys), strict=True):
        if raw is None:
            continue
        state = json.loads(raw)
        name = key.decode()[len(HEARTBEAT_PREFIX) :]
        age = time.time() - float(state["at"])
        if age > settings.SENSORS_BRIDGE_STALE_SECONDS:
            problems.append(f"{name}: no heartbeat for {age:.0f} s")
            continue
        if not state["connected"]:
            problems.append(f"{name}: port {state['url']} is not open")
        if not state["database_ok"]:
            problems.append(f"{name}: database unreachable, {state['spool_depth']} readings spooled")
        last = state.get("last_frame_at")
        frame_age = f"last frame {time.time() - last:.0f} s ago" if last else "no frame yet"
        summaries.append(f"{name}: {frame_age}, spool {state['spool_depth']}")
    if problems:
        return health.CheckResult(ok=False, detail="; ".join(problems))
    return health.CheckResult(ok=True, detail="; ".join(summaries))
