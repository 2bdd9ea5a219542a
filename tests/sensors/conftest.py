"""Fixtures for the sensors tests: real ptys, a TCP proxy in front of PostgreSQL, bridge processes."""

from __future__ import annotations

import json
import os
import select
import tty
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from sensors.bridge import HEARTBEAT_PREFIX
from sensors.models import Reading
from sensors.protocol import FrameReading, format_reading_frame
from sensors.settings import frame_layout
from tests.conftest import ChildProcess

BRIDGE_NAME = "test-bridge"
EPOCH = datetime(2026, 3, 2, tzinfo=UTC)


class Pty:
    """A pseudo-terminal the test writes device frames to; `link` always points at the current slave."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = self.slave = -1
        self.open()

    def open(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        temporary = self.link.with_name(self.link.name + ".tmp")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(os.ttyname(self.slave))
        temporary.replace(self.link)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.master], [], 5)
            if not ready:
                raise TimeoutError("nobody reads the pty")
            written = os.write(self.master, view[:4096])
            view = view[written:]

    def read_available(self, timeout: float = 0.2) -> bytes:
        data = b""
        while select.select([self.master], [], [], timeout)[0]:
            chunk = os.read(self.master, 65536)
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        """The device goes away: both ends close and the link dangles."""
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1
        self.link.unlink(missing_ok=True)


@pytest.fixture
def pty_device(tmp_path: Path) -> Iterator[Pty]:
    device = Pty(tmp_path / "device.pty")
    yield device
    device.close()


def device_frames(
    codes: list[str], start: datetime, minutes: int, base: float = 10.0
) -> list[tuple[FrameReading, bytes]]:
    """Valid reading frames (distinct values per sensor and minute), in the site's layout."""
    layout = frame_layout()
    frames = []
    for minute in range(minutes):
        for index, code in enumerate(codes):
            reading = FrameReading(
                code, start + timedelta(minutes=minute), round(base + minute * 0.5 + index, 3), 4.25, 0
            )
            frames.append((reading, format_reading_frame(reading, layout)))
    return frames


def stored() -> set[tuple[str, datetime, float, float]]:
    return {
        (code, ts, flow, pressure)
        for code, ts, flow, pressure in Reading.objects.values_list("sensor__code", "ts", "flow", "pressure")
    }


def expected(frames: list[tuple[FrameReading, bytes]]) -> set[tuple[str, datetime, float, float]]:
    return {(reading.sensor, reading.ts, reading.flow, reading.pressure) for reading, _ in frames}


def heartbeat(client: redis.Redis, name: str = BRIDGE_NAME) -> dict[str, object]:
    raw = client.get(HEARTBEAT_PREFIX + name)
    return json.loads(raw) if raw else {}


@pytest.fixture
def start_bridge(start_process: Callable[..., ChildProcess], tmp_path: Path) -> Callable[..., ChildProcess]:
    """Factory: a real `manage.py serial_bridge` on `url`, spooling under tmp_path/spool."""

    def start(url: str, env: dict[str, str] | None = None, *extra: str) -> ChildProcess:
        return start_process(
            "bridge",
            "manage.py",
            "serial_bridge",
            "--url",
            url,
            "--name",
            BRIDGE_NAME,
            "--spool-dir",
            str(tmp_path / "spool"),
            *extra,
            env={"SENSORS_RECONNECT_MAX_SECONDS": "1", "LOG_LEVEL": "INFO", **(env or {})},
        )

    return start


def metric(name: str, **labels: str) -> float:
    """The current value of a sample on /metrics (all processes sharing PROMETHEUS_MULTIPROC_DIR), 0 if absent.

    The directory lives for the whole test session, so tests compare before/after values.
    """
    from prometheus_client.parser import text_string_to_metric_families

    from core.metrics import render_latest

    for family in text_string_to_metric_families(render_latest().decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                return float(sample.value)
    return 0.0
