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
from sensors.outbox import OUTBOX_KEY, queue_alert_frame, queue_frames, queue_frames_once
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


def test_frames_wait_in_the_outbox_while_the_port_is_closed(loop_bridge: Bridge, clean_redis: redis.Redis) -> None:
    loop_bridge._close_port()
    queue_alert_frame("004", MINUTE, "1", "0")
    assert loop_bridge.outbox_unit() == 0
    assert clean_redis.llen(OUTBOX_KEY) == 1
    assert loop_bridge.ensure_port()
    loop_bridge._next_outbox = 0
    assert loop_bridge.outbox_unit() == 1
    assert clean_redis.llen(OUTBOX_KEY) == 0


@pytest.mark.django_db(transaction=True)  # the bridge calls close_old_connections(), as in production
def test_reading_frames_through_loop_are_stored(loop_bridge: Bridge) -> None:
    frames = device_frames(["005", "006"], MINUTE, 3)
    assert loop_bridge.port is not None
    loop_bridge.port.write(b"".join(frame for _, frame in frames))
    while loop_bridge.journal.depth < len(frames):
        assert loop_bridge.read_unit() >= 0
    assert loop_bridge.flush_unit(force=True) == len(frames)
    assert Reading.objects.count() == 6
    # The same frames again (a device repeating itself): stored once.
    loop_bridge.port.write(b"".join(frame for _, frame in frames))
    while loop_bridge.journal.depth < len(frames):
        loop_bridge.read_unit()
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
