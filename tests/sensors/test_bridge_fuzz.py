"""Arbitrary bytes thrown at a running bridge: it keeps running and stores every valid frame among them."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensors.protocol import FrameReading, checksum
from tests.conftest import ChildProcess, wait_for

from .conftest import Pty, device_frames, expected, metric, stored

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass
class Running:
    """One bridge for all of a test's examples (hypothesis runs the body many times per fixture)."""

    device: Pty
    bridge: ChildProcess
    sent: list[tuple[FrameReading, bytes]] = field(default_factory=list)
    minutes: itertools.count[int] = field(default_factory=itertools.count)


@pytest.fixture
def running(pty_device: Pty, start_bridge: Callable[..., ChildProcess]) -> Running:
    bridge = start_bridge(str(pty_device.link))
    wait_for(lambda: re.search(r"port \S+ open", bridge.output()), timeout=30, what="the bridge to open the pty")
    return Running(pty_device, bridge)


garbage = st.one_of(
    st.binary(max_size=400),
    st.sampled_from([b"$R,1", b"$R,001,*", b"\r\r\n", b"$" * 300, b"\x00" * 50, b"*FF\r\n", b"$R,201,2603"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(garbage, st.booleans()), min_size=1, max_size=12))
def test_garbage_between_valid_frames_never_stops_the_bridge(
    running: Running, chunks: list[tuple[bytes, bool]]
) -> None:
    data = b""
    for noise, with_frame in chunks:
        data += noise
        if with_frame:
            frame = device_frames(["201"], START + timedelta(minutes=next(running.minutes)), 1)
            running.sent += frame
            # A line end first: a valid frame glued to the tail of garbage is (rightly) one bad line.
            data += b"\r\n" + frame[0][1]
    running.device.write(data + b"\r\n")
    wait_for(lambda: stored() >= expected(running.sent), timeout=30, what="every valid frame stored")
    assert running.bridge.proc.poll() is None, running.bridge.output()


def test_bad_frames_are_counted_by_type_and_logged_truncated(running: Running) -> None:
    checksum_before = metric("pipewatch_sensors_frames_total", result="bad_checksum")
    field_count_before = metric("pipewatch_sensors_frames_total", result="bad_field_count")
    long_garbage = b"$R,999," + b"9" * 200
    short = b"$" + b"R,001,2603020900,1,2" + b"*%02X" % checksum(b"R,001,2603020900,1,2")
    running.device.write(b"$R,001,2603020900,1,2,00*00\r\n" + short + b"\r\n" + long_garbage + b"\r\n")
    wait_for(lambda: "bad_checksum" in running.bridge.output(), timeout=30, what="the bad frame logged")
    wait_for(lambda: "bad_framing" in running.bridge.output(), timeout=30, what="the unterminated frame logged")
    log = running.bridge.output()
    logged = re.search(r"raw (b'\$R,999,9+')", log)
    assert logged is not None
    assert len(logged.group(1)) <= 80 + 3
    wait_for(
        lambda: metric("pipewatch_sensors_frames_total", result="bad_field_count") == field_count_before + 1,
        timeout=10,
        what="the short frame counted",
    )
    assert metric("pipewatch_sensors_frames_total", result="bad_checksum") == checksum_before + 1
    assert running.bridge.proc.poll() is None
