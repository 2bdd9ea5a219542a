"""The host agent's unit of work, kept apart from the command so tests can drive it step by step.

Each `tick()` takes one sample, publishes it to Redis (instant reads) and queues it for the database;
`flush()` writes the queue in one batch. A database or Redis outage is logged once, counted and
survived: samples wait in a bounded in-memory queue (the oldest are dropped and counted beyond it)
and are written when the database answers again. Nothing is spooled to disk: host metrics are
replaceable, and an agent filling a disk on a sick host would make things worse.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis
from django.db import DatabaseError, connection

from .. import metrics
from ..models import Host
from .sampling import HostSampler, Sample, host_info, top_processes
from .store import publish_snapshot, register_host, store_samples

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentConfig:
    interval: float = 5.0
    batch_size: int = 12  # rows per INSERT; with flush_seconds it bounds how stale the database may be
    flush_seconds: float = 30.0
    max_pending: int = 17280  # a day at 5 s: what a database outage may cost in memory (~40 MB)
    process_interval: float = 5.0  # top processes are the costliest read: at most this often
    host: str | None = None


class HostAgent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.sampler = HostSampler(config.host)
        self.host = self.sampler.host
        self.info = host_info()
        self.latest: Sample | None = None
        self.pending: deque[Sample] = deque()
        self._host_row: Host | None = None
        self._last_flush = time.monotonic()
        self._last_processes = float("-inf")
        self._down: set[str] = set()
        top_processes()  # primes per-process CPU percentages, like the sampler primes the host's

    def _failed(self, stage: str, exc: Exception) -> None:
        metrics.AGENT_ERRORS.labels(host=self.host, stage=stage).inc()
        if stage not in self._down:
            logger.warning("host agent: %s unavailable (%s); will keep trying", stage, exc)
            self._down.add(stage)

    def _recovered(self, stage: str) -> None:
        if stage in self._down:
            logger.info("host agent: %s is back", stage)
            self._down.discard(stage)

    def tick(self) -> Sample:
        """Take and publish one sample, and flush when the batch is full or old enough."""
        started = time.perf_counter()
        sample = self.sampler.sample()
        metrics.AGENT_SAMPLE_SECONDS.labels(host=self.host).observe(time.perf_counter() - started)
        metrics.AGENT_SAMPLES.labels(host=self.host).inc()
        metrics.AGENT_LAST_SAMPLE.labels(host=self.host).set(sample.ts.timestamp())
        self.latest = sample

        processes: list[dict[str, Any]] | None = None
        if time.monotonic() - self._last_processes >= self.config.process_interval:
            processes = top_processes()
            self._last_processes = time.monotonic()
        try:
            publish_snapshot(sample, self.config.interval, processes)
            self._recovered("redis")
        except redis.RedisError as exc:
            self._failed("redis", exc)

        self.pending.append(sample)
        while len(self.pending) > self.config.max_pending:
            self.pending.popleft()
            metrics.AGENT_DROPPED.labels(host=self.host).inc()
        metrics.AGENT_PENDING.labels(host=self.host).set(len(self.pending))
        if (
            len(self.pending) >= self.config.batch_size
            or time.monotonic() - self._last_flush >= self.config.flush_seconds
        ):
            self.flush()
        return sample

    def flush(self) -> int:
        """Write pending samples; on a database error keep them for the next try. Returns rows written."""
        self._last_flush = time.monotonic()
        if not self.pending:
            return 0
        try:
            if self._host_row is None:
                self._host_row = register_host(self.host, self.info, self.config.interval)
            written = 0
            while self.pending:
                batch = [self.pending[index] for index in range(min(len(self.pending), 1000))]
                written += store_samples(self._host_row, batch)
                for _ in batch:
                    self.pending.popleft()
        except DatabaseError as exc:
            self._failed("database", exc)
            connection.close()  # the next try opens a fresh connection
            return 0
        finally:
            metrics.AGENT_PENDING.labels(host=self.host).set(len(self.pending))
        self._recovered("database")
        metrics.AGENT_ROWS_WRITTEN.labels(host=self.host).inc(written)
        return written
