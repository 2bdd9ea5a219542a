"""What stands between a worker and KIPRIS, shared by every process through Redis.

- TokenBucket: the global request rate (one atomic Lua script; Redis's clock, so hosts need not agree).
- MonthlyBudget: calls this calendar month, refused before the configured budget is exceeded.
- CircuitBreaker: after N consecutive failures every caller backs off for a cool-down.
Celery's own `rate_limit` is per worker process, so it cannot hold a global rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

import redis
from django.conf import settings
from django.utils import timezone

from core.notify import Alert, notify
from core.redis import redis_client

from .. import metrics
from .errors import BudgetExhaustedError, CircuitOpenError

logger = logging.getLogger(__name__)

PREFIX = "pipewatch:kipris"

# Reserve one token. The bucket may go negative: a caller that gets a wait owns the next free slot and
# sleeps until then, so waiters are served in order and Redis sees one call per request.
# Any 1-second window then holds at most burst + rate grants.
BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
if wait > max_wait then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  return {tostring(tokens), tostring(-wait)}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + max_wait) * 1000) + 60000)
return {tostring(tokens), tostring(wait)}
"""

# Take one call from this month's budget unless that would exceed it; returns the new count or -1.
BUDGET_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local budget = tonumber(ARGV[1])
if budget > 0 and used + 1 > budget then
  return -1
end
used = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return used
"""


class TokenBucket:
    """Global rate limit: `acquire()` blocks until this process may send one request."""

    key = f"{PREFIX}:bucket"

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        client: redis.Redis | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 5.0,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("the token bucket needs rate > 0 and burst >= 1")
        self.rate, self.burst, self.max_wait = rate, burst, max_wait
        self.client = client or redis_client()
        self.script = self.client.register_script(BUCKET_LUA)
        self.sleep = sleep

    def try_reserve(self) -> float:
        """Reserve a slot: seconds to wait before using it, or a negative number (no slot reserved)."""
        tokens, wait = self.script(keys=[self.key], args=[self.rate, self.burst, self.max_wait])
        metrics.TOKEN_BUCKET_TOKENS.set(max(0.0, float(tokens)))
        return float(wait)

    def available(self) -> float:
        """Tokens free right now, reserving none (a gauge for the console); below 0 while callers queue."""
        tokens, stamp = self.client.hmget(self.key, "tokens", "ts")
        if tokens is None or stamp is None:
            return float(self.burst)
        seconds, micros = self.client.time()
        elapsed = max(0.0, seconds + micros / 1_000_000 - float(stamp))
        return min(float(self.burst), float(tokens) + elapsed * self.rate)

    def acquire(self) -> float:
        """Block until a request may go; return the seconds waited."""
        waited = 0.0
        while True:
            wait = self.try_reserve()
            if wait >= 0:
                if wait:
                    self.sleep(wait)
                return waited + wait
            # More waiters than max_wait covers: back off without holding a slot, then ask again.
            self.sleep(min(-wait - self.max_wait, self.max_wait))
            waited += min(-wait - self.max_wait, self.max_wait)


def budget_month(now: datetime | None = None) -> str:
    """KIPRIS resets quotas on the 1st, local (Korean) time; the month key follows TIME_ZONE."""
    return timezone.localtime(now or timezone.now()).strftime("%Y-%m")


class MonthlyBudget:
    """Counts every call this month and refuses the one that would exceed KIPRIS_MONTHLY_BUDGET."""

    def __init__(self, budget: int, *, alert_ratio: float = 0.9, client: redis.Redis | None = None) -> None:
        self.budget, self.alert_ratio = budget, alert_ratio
        self.client = client or redis_client()
        self.script = self.client.register_script(BUDGET_LUA)

    def key(self, month: str | None = None) -> str:
        return f"{PREFIX}:budget:{month or budget_month()}"

    def used(self, month: str | None = None) -> int:
        return int(self.client.get(self.key(month)) or 0)

    def take(self) -> int:
        """Count one call; raise BudgetExhaustedError instead when the budget is used up."""
        month = budget_month()
        used = int(self.script(keys=[self.key(month)], args=[self.budget, 40 * 24 * 3600]))
        if used < 0:
            raise BudgetExhaustedError(
                f"monthly KIPRIS call budget of {self.budget} used up for {month}; harvesting resumes next month"
                " (or raise KIPRIS_MONTHLY_BUDGET)"
            )
        if self.budget and used == max(1, int(self.budget * self.alert_ratio)):
            notify(
                Alert(
                    key=f"kipris:budget:{month}",
                    status="firing",
                    title="KIPRIS monthly call budget nearly used",
                    text=f"{used} of {self.budget} KIPRIS calls used in {month}; harvesting stops at the budget.",
                    severity="warning",
                    source="ingest",
                    labels={"month": month},
                )
            )
        return used


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; callers then wait `open_seconds` before trying again.

    After the cool-down the next call goes through (half-open): a success closes the circuit, a failure
    opens it again at once because the failure count is still at the threshold.
    """

    failures_key = f"{PREFIX}:circuit:failures"
    open_until_key = f"{PREFIX}:circuit:open_until"
    alert_key = "kipris:circuit"

    def __init__(self, threshold: int, open_seconds: int, *, client: redis.Redis | None = None) -> None:
        self.threshold, self.open_seconds = threshold, open_seconds
        self.client = client or redis_client()

    def check(self) -> None:
        open_until = float(self.client.get(self.open_until_key) or 0)
        remaining = open_until - time.time()
        if remaining > 0:
            metrics.CIRCUIT_OPEN.set(1)
            raise CircuitOpenError(f"KIPRIS circuit open for {remaining:.0f} s more", retry_after=remaining)

    def is_open(self) -> bool:
        return float(self.client.get(self.open_until_key) or 0) > time.time()

    def record_success(self) -> None:
        metrics.CIRCUIT_OPEN.set(0)
        if self.client.delete(self.failures_key) and self.client.delete(self.open_until_key):
            logger.info("KIPRIS circuit closed")
            notify(
                Alert(
                    key=self.alert_key,
                    status="resolved",
                    title="KIPRIS circuit closed",
                    text="KIPRIS answers again; harvesting resumed.",
                    source="ingest",
                )
            )

    def record_failure(self, reason: str) -> None:
        failures = int(self.client.incr(self.failures_key))
        self.client.expire(self.failures_key, 24 * 3600)
        if failures < self.threshold:
            return
        opened = self.client.set(self.open_until_key, time.time() + self.open_seconds, ex=self.open_seconds * 10)
        metrics.CIRCUIT_OPEN.set(1)
        if opened and failures == self.threshold:
            logger.error("KIPRIS circuit opened after %d consecutive failures (last: %s)", failures, reason)
            notify(
                Alert(
                    key=self.alert_key,
                    status="firing",
                    title="KIPRIS circuit open",
                    text=f"{failures} consecutive KIPRIS failures (last: {reason}); harvesting paused for"
                    f" {self.open_seconds} s at a time until it answers.",
                    severity="critical",
                    source="ingest",
                )
            )


class RequestGuard:
    """The three guards in the order a request meets them: circuit, budget, rate."""

    def __init__(self, bucket: TokenBucket, budget: MonthlyBudget, circuit: CircuitBreaker) -> None:
        self.bucket, self.budget, self.circuit = bucket, budget, circuit

    @classmethod
    def from_settings(cls) -> RequestGuard:
        return cls(
            TokenBucket(settings.KIPRIS_RATE_PER_SEC, settings.KIPRIS_BURST),
            MonthlyBudget(settings.KIPRIS_MONTHLY_BUDGET, alert_ratio=settings.KIPRIS_BUDGET_ALERT_RATIO),
            CircuitBreaker(settings.KIPRIS_CIRCUIT_FAILURES, settings.KIPRIS_CIRCUIT_OPEN_SECONDS),
        )

    def before_request(self) -> None:
        self.circuit.check()
        self.budget.take()
        self.bucket.acquire()
