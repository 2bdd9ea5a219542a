"""The serial bridge: the one process that owns a port (reads readings, writes outbound frames).

The loop is made of small units (healthchecks' sendalerts shape), each safe to stop after:
1. read what the port has (chunked, own line buffer), parse, append valid readings to the journal;
2. commit a batch from the journal when it is big or old enough (or back-fill after an outage);
3. write queued outbound frames from the Redis outbox to the port;
4. heartbeat in Redis.
A failing port, database or Redis only pauses its own unit, with capped exponential backoff.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis
import serial
from django.db import DatabaseError, close_old_connections, connection
from prometheus_client import multiprocess

from core.redis import redis_client

from . import journal as journal_format
from . import metrics
from .journal import Journal
from .outbox import OUTBOX_KEY, record_sent
from .protocol import FrameError, FrameLayout, FrameReading, LineBuffer, parse_frame
from .services.storage import SensorRegistry, store_readings

logger = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "pipewatch:sensors:bridge:"
# Commit when this many readings wait, or when the oldest has waited FLUSH_INTERVAL_SECONDS. Measured with
# bench/sensors_bridge.py on the shared 2-core machine (docs/BENCHMARKS.md, 3 runs): store rate by batch
# size 100: 11-20k rows/s, 500: 13-32k, 2,000: 13-42k, 5,000: 27-35k (from 500 up, within the noise);
# 2,000 keeps a back-fill after an outage to few statements. At the wire's 400 frames/s a 0.2 s interval
# gives p99 frame -> committed 222-259 ms for 2.6 % of a core; 0.05 s gives 72-106 ms for 3-4 % (5 vs 20
# commits/s per bridge). Detection runs once a minute, so 0.2 s.
BATCH_SIZE = 2000
FLUSH_INTERVAL_SECONDS = 0.2
OUTBOX_BATCH = 200
OUTBOX_INTERVAL_SECONDS = 0.2
HEARTBEAT_INTERVAL_SECONDS = 2.0
SYNC_INTERVAL_SECONDS = 1.0
# A read returns READ_CHUNK_BYTES or what came within READ_TIMEOUT_SECONDS, whichever is first: big chunks
# under load, at most 20 ms of added wait on a quiet line. (socket:// reports in_waiting as 0/1, not a
# byte count, so sizing reads by in_waiting would read a TCP line byte by byte.)
READ_TIMEOUT_SECONDS = 0.02
READ_CHUNK_BYTES = 16384
BACKOFF_START_SECONDS = 0.5
# Malformed frames are all counted; at most this many are logged per minute (a noisy line floods nothing).
LOG_BAD_FRAMES_PER_MINUTE = 50
RAW_LOG_BYTES = 80
# On SIGTERM the spool is committed for at most this long; whatever is left is replayed at the next start.
SHUTDOWN_FLUSH_SECONDS = 10.0


class Backoff:
    """Capped exponential backoff: 0.5 s, 1 s, 2 s, ... up to `cap`; `ready()` says whether to try now."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.failures = 0
        self.next_try = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self.next_try

    def failed(self) -> float:
        delay = min(self.cap, BACKOFF_START_SECONDS * 2**self.failures)
        self.failures += 1
        self.next_try = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.next_try = 0.0


def bridge_name(url: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", url).strip("_") or "bridge"


@dataclass
class BridgeStats:
    frames_ok: int = 0
    frames_bad: int = 0
    stored: int = 0
    outbound: int = 0
    port_reconnects: int = 0
    store_failures: int = 0
    last_frame_at: float | None = None
    by_result: dict[str, int] = field(default_factory=dict)


class Bridge:
    """One port's loop. `stop()` (from a signal handler) ends it after the current unit."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 9600,
        layout: FrameLayout,
        spool_dir: Path,
        name: str | None = None,
        outbox_key: str = OUTBOX_KEY,
        batch_size: int = BATCH_SIZE,
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
        reconnect_cap: float = 30.0,
        open_port: Callable[[], serial.Serial] | None = None,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.layout = layout
        self.name = name or bridge_name(url)
        self.outbox_key = outbox_key
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._open_port = open_port or self._open_url
        self.journal = Journal(spool_dir / f"{self.name}.spool")
        self.registry = SensorRegistry()
        self.buffer = LineBuffer()
        self.port: serial.Serial | None = None
        self.port_backoff = Backoff(reconnect_cap)
        self.store_backoff = Backoff(reconnect_cap)
        self.redis_backoff = Backoff(reconnect_cap)
        self.stats = BridgeStats()
        self._stopping = False
        self._oldest_pending: float | None = time.monotonic() if self.journal.depth else None
        self._next_outbox = 0.0
        self._next_heartbeat = 0.0
        self._next_sync = 0.0
        self._bad_logged = 0
        self._bad_window = 0.0
        metrics.SPOOL_DEPTH.set(self.journal.depth)
        if self.journal.depth:
            logger.info("spool %s holds %d readings from before: back-filling", self.journal.path, self.journal.depth)

    # --- the loop -------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def run(self) -> None:
        """Units until stopped; then one last flush attempt, close the port, drop the heartbeat."""
        try:
            while not self._stopping:
                self.run_once()
        finally:
            self.shutdown()

    def run_once(self) -> None:
        """One pass over the units: read, commit, outbox, heartbeat."""
        self.read_unit()
        self.flush_unit()
        self.outbox_unit()
        self.heartbeat_unit()

    def shutdown(self) -> None:
        deadline = time.monotonic() + SHUTDOWN_FLUSH_SECONDS
        while self.journal.depth and time.monotonic() < deadline and self.flush_unit(force=True):
            pass
        self.journal.sync()
        self.journal.close()
        self._close_port()
        metrics.SPOOL_DEPTH.set(0)
        try:
            redis_client().delete(HEARTBEAT_PREFIX + self.name)
        except redis.RedisError as exc:
            logger.warning("could not remove the heartbeat: %s", exc)
        # Live gauges of an exited process must not count any more (prometheus-client multiprocess mode).
        multiprocess.mark_process_dead(os.getpid())
        logger.info(
            "bridge %s stopped: %d frames ok, %d bad, %d stored, %d left in the spool",
            self.name,
            self.stats.frames_ok,
            self.stats.frames_bad,
            self.stats.stored,
            self.journal.depth,
        )

    # --- 1. port ------------------------------------------------------------------------------------------
    def _open_url(self) -> serial.Serial:
        # serial_for_url returns the URL handler's class; they all share Serial's read/write interface.
        return serial.serial_for_url(
            self.url, baudrate=self.baudrate, timeout=READ_TIMEOUT_SECONDS, write_timeout=2, exclusive=True
        )

    def _close_port(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except (serial.SerialException, OSError) as exc:
                logger.debug("closing the port failed: %s", exc)
            self.port = None
            metrics.CONNECTED.set(0)
        self.buffer.reset()

    def _port_failed(self, exc: Exception) -> None:
        was_open = self.port is not None
        self._close_port()
        delay = self.port_backoff.failed()
        self.stats.port_reconnects += 1
        metrics.RECONNECTS.labels(target="port").inc()
        log = logger.warning if was_open or self.port_backoff.failures <= 1 else logger.info
        log("port %s unavailable (%s); retrying in %.1f s", self.url, exc, delay)

    def ensure_port(self) -> bool:
        if self.port is not None:
            return True
        if not self.port_backoff.ready():
            self._pause(min(0.1, self.port_backoff.next_try - time.monotonic()))
            return False
        try:
            self.port = self._open_port()
        except (serial.SerialException, OSError, ValueError) as exc:
            self._port_failed(exc)
            return False
        metrics.CONNECTED.set(1)
        logger.info("port %s open", self.url)
        return True

    def read_unit(self) -> int:
        """Read a chunk (see READ_CHUNK_BYTES); returns the valid frames in it."""
        if not self.ensure_port():
            return 0
        assert self.port is not None
        try:
            chunk = self.port.read(max(READ_CHUNK_BYTES, self.port.in_waiting))
        except (serial.SerialException, OSError) as exc:
            self._port_failed(exc)
            return 0
        if not chunk:
            return 0
        self.port_backoff.succeeded()
        return self.handle_chunk(chunk)

    def handle_chunk(self, chunk: bytes) -> int:
        """Parse the complete lines in `chunk`; journal the valid readings (one write for the chunk)."""
        now = time.time()
        readings: list[FrameReading] = []
        for line in self.buffer.feed(chunk):
            try:
                readings.append(parse_frame(line, self.layout))
            except FrameError as exc:
                self._bad_frame(exc.result, str(exc), line)
        encoded = [journal_format.encode(reading, now) for reading in readings]
        if self.buffer.dropped_bytes:
            metrics.DROPPED_BYTES.inc(self.buffer.dropped_bytes)
            self._bad_frame("oversize", f"{self.buffer.dropped_bytes} bytes without a line end dropped", b"")
            self.buffer.dropped_bytes = 0
        if encoded:
            try:
                self.journal.append(encoded)
            except OSError as exc:
                self._spool_failed(exc, readings)
                encoded = []
            self.stats.frames_ok += len(readings)
            self.stats.last_frame_at = now
            metrics.FRAMES.labels(result="ok").inc(len(readings))
            metrics.LAST_FRAME.set(now)
            metrics.SPOOL_DEPTH.set(self.journal.depth)
            if encoded and self._oldest_pending is None:
                self._oldest_pending = time.monotonic()
        return len(readings)

    def _spool_failed(self, exc: OSError, readings: list[FrameReading]) -> None:
        """The spool cannot be written (disk full?): store straight away; only if the database is down too are
        the readings lost, loudly."""
        logger.error("spool %s not writable (%s): storing %d readings directly", self.journal.path, exc, len(readings))
        close_old_connections()
        try:
            result = store_readings(readings, self.registry)
        except DatabaseError as db_exc:
            metrics.FRAMES.labels(result="lost").inc(len(readings))
            logger.critical(
                "%d valid readings LOST: spool not writable (%s) and database unavailable (%s)",
                len(readings),
                exc,
                db_exc,
            )
            return
        self.stats.stored += result.stored
        metrics.READINGS_STORED.inc(result.stored)

    def _bad_frame(self, result: str, message: str, raw: bytes) -> None:
        self.stats.frames_bad += 1
        self.stats.by_result[result] = self.stats.by_result.get(result, 0) + 1
        metrics.FRAMES.labels(result=result).inc()
        now = time.monotonic()
        if now - self._bad_window > 60:
            if self._bad_logged > LOG_BAD_FRAMES_PER_MINUTE:
                logger.warning("%d more bad frames in the last minute were counted, not logged", self._bad_logged)
            self._bad_window, self._bad_logged = now, 0
        self._bad_logged += 1
        if self._bad_logged <= LOG_BAD_FRAMES_PER_MINUTE:
            logger.warning("bad frame (%s): %s; raw %r", result, message, raw[:RAW_LOG_BYTES])

    # --- 2. store -------------------------------------------------------------------------------------
    def flush_unit(self, *, force: bool = False) -> int:
        """Commit one batch from the journal if due; returns the journal rows committed (0: nothing or DB down)."""
        if not self.journal.depth or not self.store_backoff.ready():
            return 0
        due = (
            force
            or self.journal.depth >= self.batch_size
            or self.store_backoff.failures  # back-fill right away once the store is back
            or (self._oldest_pending is not None and time.monotonic() - self._oldest_pending >= self.flush_interval)
        )
        if not due:
            return 0
        rows, end = self.journal.pending(self.batch_size)
        close_old_connections()
        try:
            result = store_readings([reading for reading, _ in rows], self.registry)
        except DatabaseError as exc:
            # An outage (OperationalError, InterfaceError) or not: the rows stay spooled and are retried.
            self._store_failed(exc)
            return 0
        committed_at = time.time()
        was_down = self.store_backoff.failures
        self.store_backoff.succeeded()
        self.journal.commit(end, len(rows))
        self._oldest_pending = time.monotonic() if self.journal.depth else None
        self.stats.stored += result.stored
        metrics.READINGS_STORED.inc(result.stored)
        metrics.DUPLICATES.inc(result.duplicates)
        for label, count in result.rejected.items():
            metrics.FRAMES.labels(result=label).inc(count)
            self.stats.by_result[label] = self.stats.by_result.get(label, 0) + count
        for _, received in rows:
            metrics.COMMIT_LATENCY.observe(max(0.0, committed_at - received))
        metrics.SPOOL_DEPTH.set(self.journal.depth)
        if was_down:
            logger.info("database back: committed %d readings, %d still spooled", len(rows), self.journal.depth)
        return len(rows)

    def _store_failed(self, exc: Exception) -> None:
        try:
            connection.close()
        except DatabaseError:
            logger.debug("closing a broken connection failed", exc_info=True)
        self.registry = SensorRegistry()
        delay = self.store_backoff.failed()
        self.stats.store_failures += 1
        metrics.RECONNECTS.labels(target="database").inc()
        logger.warning(
            "database unavailable (%s); %d readings spooled to %s, retry in %.1f s",
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            self.journal.depth,
            self.journal.path,
            delay,
        )

    # --- 3. outbox ----------------------------------------------------------------------------------
    def outbox_unit(self) -> int:
        """Write queued frames to the port, in order; a frame leaves the outbox only once written."""
        now = time.monotonic()
        if now < self._next_outbox or self.port is None or not self.redis_backoff.ready():
            return 0
        self._next_outbox = now + OUTBOX_INTERVAL_SECONDS
        try:
            frames = cast("list[bytes]", redis_client().lrange(self.outbox_key, 0, OUTBOX_BATCH - 1))
        except redis.RedisError as exc:
            self._redis_failed(exc)
            return 0
        if not frames:
            return 0
        try:
            self.port.write(b"".join(frames))
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            self._port_failed(exc)
            return 0
        try:
            redis_client().ltrim(self.outbox_key, len(frames), -1)
            record_sent(frames, self.layout.separator, time.time())
        except redis.RedisError as exc:
            # Written but not trimmed: the device may see these frames twice (at least once, never lost).
            self._redis_failed(exc)
        for frame in frames:
            # `$X,...` frames by tag; the device-layout forecast rows carry no `$` and count as "forecast".
            tag = frame[1:2].decode("ascii", "replace") if frame.startswith(b"$") else "forecast"
            metrics.OUTBOUND.labels(tag=tag).inc()
        self.stats.outbound += len(frames)
        return len(frames)

    def _redis_failed(self, exc: Exception) -> None:
        delay = self.redis_backoff.failed()
        metrics.RECONNECTS.labels(target="redis").inc()
        logger.warning("redis unavailable (%s): outbox and heartbeat paused for %.1f s", exc, delay)

    # --- 4. heartbeat ---------------------------------------------------------------------------------
    def heartbeat_unit(self) -> None:
        now = time.monotonic()
        if now >= self._next_sync:
            self._next_sync = now + SYNC_INTERVAL_SECONDS
            self.journal.sync()
        if now < self._next_heartbeat or not self.redis_backoff.ready():
            return
        self._next_heartbeat = now + HEARTBEAT_INTERVAL_SECONDS
        state = {
            "at": time.time(),
            "pid": os.getpid(),
            "url": self.url,
            "connected": self.port is not None,
            "database_ok": self.store_backoff.failures == 0,
            "spool_depth": self.journal.depth,
            "last_frame_at": self.stats.last_frame_at,
            "frames_ok": self.stats.frames_ok,
            "frames_bad": self.stats.frames_bad,
        }
        try:
            # Kept for a day after the last beat so a killed bridge shows as stale, not as absent.
            redis_client().set(HEARTBEAT_PREFIX + self.name, json.dumps(state), ex=86400)
        except redis.RedisError as exc:
            self._redis_failed(exc)
            return
        self.redis_backoff.succeeded()

    def _pause(self, seconds: float) -> None:
        """Sleep in short steps so a stop request is seen promptly."""
        deadline = time.monotonic() + max(0.0, seconds)
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
