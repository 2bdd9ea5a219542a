"""simulator -> pty -> serial_bridge -> PostgreSQL, and outbound frames back to the device's log."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from sensors.models import Reading, Sensor
from sensors.outbox import queue_alert_frame
from sensors.protocol import FRAME_RESULTS, FrameError, parse_frame
from sensors.services import frames
from sensors.settings import frame_layout
from sensors.simulation import Fault, simulate
from tests.conftest import ChildProcess, free_port, wait_for

from .conftest import heartbeat, metric

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
CODES = [f"{n:03d}" for n in range(1, 6)]
CHECKED_MINUTES = 20


def test_simulated_device_through_a_pty_into_postgresql_and_frames_back(
    start_process: Callable[..., ChildProcess],
    start_bridge: Callable[..., ChildProcess],
    tmp_path: Path,
    clean_redis: redis.Redis,
) -> None:
    bad_before = sum(metric("pipewatch_sensors_frames_total", result=r) for r in FRAME_RESULTS if r != "ok")
    sent_before = metric("pipewatch_sensors_outbound_frames_total", tag="S")
    link = tmp_path / "sim.pty"
    truth = tmp_path / "truth.csv"
    faults = ["corrupt:002:3m:4m", "dropout:003:5m:3m", "clock_skew:004:10m:2m:7", "leak:001:0m:1d:0.5"]
    # The bridge first, retrying a port that is not there yet: the simulator sends its first frame 8 s
    # after opening the pty, whether anyone reads or not, and a bridge still booting Django on a loaded
    # machine used to miss the first minutes.
    bridge = start_bridge(str(link))
    wait_for(lambda: heartbeat(clean_redis), timeout=120, what="the bridge's first heartbeat")
    simulator = start_process(
        "simulator",
        "manage.py",
        "simulate_sensors",
        "--sensors",
        "5",
        "--seed",
        "9",
        "--start",
        START.isoformat(),
        "--speed",
        "120",
        "--delay",
        "8",
        "--link",
        str(link),
        "--truth",
        str(truth),
        *[arg for fault in faults for arg in ("--fault", fault)],
    )
    wait_for(link.exists, timeout=30, what="the simulator's pty link")
    wait_for(lambda: heartbeat(clean_redis).get("connected"), timeout=30, what="the bridge to open the pty")

    # What the device put on the wire in the first minutes, parsed as the bridge must have parsed it.
    layout = frame_layout()
    parsed_faults = [
        Fault("corrupt", "002", START + timedelta(minutes=3), START + timedelta(minutes=7)),
        Fault("dropout", "003", START + timedelta(minutes=5), START + timedelta(minutes=8)),
        Fault("clock_skew", "004", START + timedelta(minutes=10), START + timedelta(minutes=12), 7),
        Fault("leak", "001", START, START + timedelta(days=1), 0.5),
    ]
    wire = simulate(CODES, START, CHECKED_MINUTES, seed=9, faults=parsed_faults).frames(layout)
    # First frame wins for a (sensor, minute): a skewed clock stamps minute 10 as 17, so the genuine
    # minute-17 frame is a duplicate the database keeps out.
    first: dict[tuple[str, datetime], tuple[str, datetime, float, float]] = {}
    rejected = 0
    for _, frame in wire:
        try:
            reading = parse_frame(frame, layout)
        except FrameError:
            rejected += 1
            continue
        first.setdefault((reading.sensor, reading.ts), (reading.sensor, reading.ts, reading.flow, reading.pressure))
    assert rejected >= 3
    expected = set(first.values())

    def stored() -> set[tuple[str, datetime, float, float]]:
        rows = Reading.objects.filter(ts__lt=START + timedelta(minutes=CHECKED_MINUTES))
        return set(rows.values_list("sensor__code", "ts", "flow", "pressure"))

    wait_for(lambda: len(stored()) >= len(expected), timeout=180, what="the first minutes to be stored")
    assert stored() == expected
    assert set(Sensor.objects.values_list("code", flat=True)) == set(CODES)
    assert Sensor.objects.filter(auto_registered=True).count() == 5
    assert "003,dropout" in truth.read_text()

    # Outbound: an alert and a server frame travel bridge -> pty -> device, which logs them.
    queue_alert_frame("001", START + timedelta(minutes=5), "0100", "001")
    assert frames.send_server_frame(now=START + timedelta(minutes=CHECKED_MINUTES, seconds=30)) == 50
    wait_for(lambda: "device received: $E,10" in simulator.output(), timeout=30, what="the server frame echo")
    log = simulator.output()
    assert re.search(r"device received: \$A,001,2603020905,0100,001\*[0-9A-F]{2}", log)
    assert len(re.findall(r"device received: \$S,", log)) == 50

    bad = sum(metric("pipewatch_sensors_frames_total", result=result) for result in FRAME_RESULTS if result != "ok")
    assert bad >= bad_before + rejected
    assert metric("pipewatch_sensors_outbound_frames_total", tag="S") == sent_before + 50
    assert metric("pipewatch_sensors_bridge_connected") >= 1  # livesum: a SIGKILLed bridge's 1 lingers

    bridge.stop()
    assert bridge.proc.returncode == 0, bridge.output()
    assert "stopped:" in bridge.output()
    assert heartbeat(clean_redis) == {}


def test_simulator_serves_tcp_and_the_bridge_reads_it_over_socket_url(
    start_process: Callable[..., ChildProcess],
    start_bridge: Callable[..., ChildProcess],
    clean_redis: redis.Redis,
) -> None:
    port = free_port()
    start_bridge(f"socket://127.0.0.1:{port}")  # first, retrying until the simulator listens (see above)
    wait_for(lambda: heartbeat(clean_redis), timeout=120, what="the bridge's first heartbeat")
    simulator = start_process(
        "simulator",
        "manage.py",
        "simulate_sensors",
        "--sensors",
        "3",
        "--first-code",
        "500",
        "--seed",
        "4",
        "--start",
        START.isoformat(),
        "--speed",
        "600",
        "--delay",
        "8",
        "--tcp-port",
        str(port),
    )
    wait_for(lambda: heartbeat(clean_redis).get("connected"), timeout=30, what="the bridge to connect")
    layout = frame_layout()
    expected = {
        (reading.sensor, reading.ts, reading.flow, reading.pressure)
        for reading in (
            parse_frame(frame, layout) for _, frame in simulate(["500", "501", "502"], START, 10, seed=4).frames(layout)
        )
    }

    def first_ten_minutes() -> set[tuple[str, datetime, float, float]]:
        rows = Reading.objects.filter(ts__lt=START + timedelta(minutes=10))
        return set(rows.values_list("sensor__code", "ts", "flow", "pressure"))

    wait_for(lambda: first_ten_minutes() == expected, timeout=180, what="the first ten minutes over TCP")
    wait_for(lambda: "client connected" in simulator.output(), timeout=5, what="the simulator to log the client")
