"""API throttles: fixed-window counters in Redis, one round trip per request, rates read from settings.

DRF's own throttles keep a list of every request's timestamp in the cache and read and rewrite the whole
list on each request: at the user rate (3,000/min) that is a 3,000-entry list pickled twice per request,
the largest single cost of a cheap endpoint like /api/v1/metrics/current under load. A counter per client
and window (INCR + EXPIRE in one pipeline) answers the same question in O(1). The cost: a client can make
up to twice the rate across a window boundary — acceptable for protecting the service, which is what
these are for. Redis unreachable: requests are let through (logged), so a broker outage never becomes an
API outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from redis.client import Pipeline
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:  # rest_framework.views imports this module (DEFAULT_THROTTLE_CLASSES)
    from rest_framework.views import APIView

from core.redis import redis_client

logger = logging.getLogger(__name__)


class WindowThrottle(SimpleRateThrottle):
    """Allows `rate` requests per client per fixed window (the rate's period)."""

    setting = ""

    def __init__(self) -> None:
        # SimpleRateThrottle parses its rate here, once; the rate is read per request instead (settings)
        self.wait_seconds: float | None = None

    def get_rate(self) -> str:
        return str(getattr(settings, self.setting))

    def ident(self, request: Request) -> str | None:
        """Who is counted (None: this throttle does not apply to the request); here, the client address."""
        return self.get_ident(request)

    def count(self, request: Request, pipe: Pipeline) -> Callable[[list[Any]], bool]:
        """Queue this request's count on `pipe`; returns the check of the pipeline's results (whether the
        request is allowed). A throttle that does not apply to the request queues nothing."""
        ident = self.ident(request)
        limit, period = self.parse_rate(self.get_rate()) if ident is not None else (None, None)
        if limit is None or period is None:
            return lambda _results: True
        now = time.time()
        window = int(now // period)
        key = f"pipewatch:throttle:{self.scope}:{ident}:{window}"
        position = len(pipe)
        pipe.incr(key)
        pipe.expire(key, period + 1)
        self.wait_seconds = period - (now - window * period)
        return lambda results: int(results[position]) <= limit

    def allow_request(self, request: Request, view: Any) -> bool:
        pipe = redis_client().pipeline(transaction=False)
        allowed = self.count(request, pipe)
        try:
            results = pipe.execute() if len(pipe) else []
        except redis.RedisError as exc:
            logger.warning("throttle %s not applied: Redis unavailable (%s)", self.scope, exc)
            return True
        return allowed(results)

    def wait(self) -> float | None:
        return self.wait_seconds


class AnonThrottle(WindowThrottle):
    scope = "anon"
    setting = "API_THROTTLE_ANON"

    def ident(self, request: Request) -> str | None:
        return None if request.user and request.user.is_authenticated else self.get_ident(request)


class UserThrottle(WindowThrottle):
    scope = "user"
    setting = "API_THROTTLE_USER"

    def ident(self, request: Request) -> str | None:
        if request.user and request.user.is_authenticated:
            return f"u{request.user.pk}"
        return None  # anonymous requests are AnonThrottle's


def check_throttles_and_read(view: APIView, request: Request, read: Callable[[Pipeline], None]) -> Any:
    """`view.check_throttles(request)` and the caller's read (queued by `read` as the pipeline's last
    command) in one Redis round trip; returns the read's result, None while Redis is unreachable (then
    the throttles let the request through, as they do alone).

    For an endpoint that answers from Redis, the throttle's round trip cost as much CPU as the answer's
    (~60 us each in redis-py; docs/BENCHMARKS.md, Monitoring). Views whose throttles are not all
    WindowThrottles are checked the usual way, and the read gets a round trip of its own.
    """
    throttles = [throttle for throttle in view.get_throttles() if isinstance(throttle, WindowThrottle)]
    if len(throttles) != len(view.get_throttles()):
        view.check_throttles(request)
        throttles = []
    pipe = redis_client().pipeline(transaction=False)
    checks = [(throttle, throttle.count(request, pipe)) for throttle in throttles]
    read(pipe)
    try:
        results = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("throttles not applied and nothing read: Redis unavailable (%s)", exc)
        return None
    waits = [throttle.wait() for throttle, allowed in checks if not allowed(results)]
    if waits:
        view.throttled(request, max((wait for wait in waits if wait is not None), default=None))  # type: ignore[arg-type]  # DRF takes None
    return results[-1]
