"""Outbound frames: queued on the Redis outbox by any process, written to the port only by the bridge."""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from sensors.bridge import Bridge
from sensors.models import Reading
from sensors.outbox import OUTBOX_KEY, SENT_KEEP, queue_alert_frame, queue_frames, queue_frames_once, sent_frames
from sensors.protocol import split_frame, wrap
from sensors.settings import frame_layout

from .conftest import device_frames

MINUTE = datetime(2026, 3, 2, 0, 5, tzinfo=UTC)


@pytest.fixture
def loop_bridge(tmp_path: Path) -> Bridge:
    bridge = Bridge("loop://", layout=frame_layout(), spool_dir=tmp_path, name="loop")
    assert bridge.ensure_port()
    return bridge


def test_outbox_frames_round_trip_through_loop_in_order(loop_bridge: Bridge, clean_redis: redis.Redis) -> None:
    queue_alert_frame("003", MINUTE, "0100", "001")
    server = [wrap("S,003,2603020905,1.5,4.0,0.0,0.0"), wrap("E,1")]
    queue_frames(server)
    assert loop_bridge.outbox_unit() == 3
    assert loop_bridge.port is not None
    echoed = loop_bridge.port.read(4096)
    lines = echoed.split(b"\r\n")[:-1]
    assert [split_frame(line) for line in lines] == [
        ["A", "003", "2603020905", "0100", "001"],
        ["S", "003", "2603020905", "1.5", "4.0", "0.0", "0.0"],
        ["E", "1"],
    ]
    assert clean_redis.llen(OUTBOX_KEY) == 0
    assert loop_bridge.stats.outbound == 3


def test_written_frames_are_logged_per_sensor(loop_bridge: Bridge, clean_redis: redis.Redis) -> None:
    """The console shows what reached each sensor's device: the bridge logs frames once written, not queued."""
    queue_alert_frame("003", MINUTE, "0100", "001")
    queue_frames([wrap("S,003,2603020905,1.5,4.0,0.0,0.0"), wrap("S,004,2603020905,2.5,3.0,0.0,0.0"), wrap("E,2")])
    assert sent_frames("003") == []
    assert loop_bridge.outbox_unit() == 4
    assert [frame for _, frame in sent_frames("003")] == [
        wrap("S,003,2603020905,1.5,4.0,0.0,0.0").decode().strip(),
        wrap("A,003,2603020905,0100,001").decode().strip(),
    ]
    assert [frame for _, frame in sent_frames("004")] == [wrap("S,004,2603020905,2.5,3.0,0.0,0.0").decode().strip()]
    assert loop_bridge.port is not None
    for batch in range(11):  # the loop port holds a few kB: write in batches, draining the echo between them
        loop_bridge.port.read(loop_bridge.port.in_waiting)
        queue_frames([wrap(f"S,003,2603020905,{batch}.{value},4.0,0.0,0.0") for value in range(5)])
        loop_bridge._next_outbox = 0
        assert loop_bridge.outbox_unit() == 5
    assert len(sent_frames("003")) == SENT_KEEP
    assert sent_frames("003")[0][1] == wrap("S,003,2603020905,10.4,4.0,0.0,0.0").decode().strip()


def test_frames_wait_in_the_outbox_while_the_port_is_closed(loop_bridge: Bridge, clean_redis: redis.Redis) -> None:
    loop_bridge._close_port()
    queue_alert_frame("004", MINUTE, "1", "0")
    assert loop_bridge.outbox_unit() == 0
    assert clean_redis.llen(OUTBOX_KEY) == 1
    assert loop_bridge.ensure_port()
    loop_bridge._next_outbox = 0
    assert loop_bridge.outbox_unit() == 1
    assert clean_redis.llen(OUTBOX_KEY) == 0


def read_until_journaled(bridge: Bridge, depth: int, attempts: int = 50) -> None:
    """Read the loop port until `depth` frames are journaled; fails instead of spinning forever."""
    read = 0
    for _ in range(attempts):
        if bridge.journal.depth >= depth:
            break
        read += bridge.read_unit()
    assert bridge.journal.depth >= depth, f"only {bridge.journal.depth} of {depth} frames journaled"
    assert read == depth, "read_unit counts the valid frames it journaled"


@pytest.mark.django_db(transaction=True)  # the bridge calls close_old_connections(), as in production
def test_reading_frames_through_loop_are_stored(loop_bridge: Bridge) -> None:
    frames = device_frames(["005", "006"], MINUTE, 3)
    assert loop_bridge.port is not None
    loop_bridge.port.write(b"".join(frame for _, frame in frames))
    read_until_journaled(loop_bridge, len(frames))
    assert loop_bridge.flush_unit(force=True) == len(frames)
    assert Reading.objects.count() == 6
    # The same frames again (a device repeating itself): stored once.
    loop_bridge.port.write(b"".join(frame for _, frame in frames))
    read_until_journaled(loop_bridge, len(frames))
    loop_bridge.flush_unit(force=True)
    assert Reading.objects.count() == 6


def test_queue_frames_once_is_idempotent_per_key(clean_redis: redis.Redis) -> None:
    assert queue_frames_once("server:slot-1", [b"$E,0*75\r\n"], ttl_seconds=60)
    assert not queue_frames_once("server:slot-1", [b"$E,0*75\r\n"], ttl_seconds=60)
    assert clean_redis.lrange(OUTBOX_KEY, 0, -1) == [b"$E,0*75\r\n"]


class FullDisk:
    """The spool's file on a full disk: every write fails with ENOSPC, as the OS reports it."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


@pytest.mark.django_db(transaction=True)
def test_a_full_disk_stores_readings_directly(loop_bridge: Bridge) -> None:
    frames = device_frames(["007"], MINUTE, 5)
    loop_bridge.journal._file = FullDisk(loop_bridge.journal._file)  # type: ignore[assignment]
    assert loop_bridge.handle_chunk(b"".join(frame for _, frame in frames)) == 5
    assert Reading.objects.count() == 5
    assert loop_bridge.journal.depth == 0
    assert loop_bridge.journal.size == 0
