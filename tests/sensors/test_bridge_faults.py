"""The bridge under faults: the port goes away, the database goes away, the bridge is SIGKILLed."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests

from sensors.models import Reading
from tests.conftest import ChildProcess, TcpProxy, free_port, wait_for

from .conftest import Pty, device_frames, expected, heartbeat, metric, stored

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
CODES = ["101", "102", "103"]


def opened_count(bridge: ChildProcess) -> int:
    return len(re.findall(r"port \S+ open", bridge.output()))


def test_pty_closed_and_reopened_reconnects_without_losing_a_frame(
    pty_device: Pty, start_bridge: Callable[..., ChildProcess], clean_redis: redis.Redis
) -> None:
    reconnects = metric("pipewatch_sensors_reconnects_total", target="port")
    bridge = start_bridge(str(pty_device.link))
    wait_for(lambda: opened_count(bridge) == 1, timeout=30, what="the bridge to open the pty")
    before = device_frames(CODES, START, 10)
    pty_device.write(b"".join(frame for _, frame in before))
    wait_for(lambda: stored() == expected(before), timeout=30, what="the first frames")

    pty_device.close()  # unplugged
    wait_for(lambda: not heartbeat(clean_redis).get("connected", True), timeout=30, what="a disconnected heartbeat")
    pty_device.open()  # plugged in again, under the same path
    wait_for(lambda: opened_count(bridge) == 2, timeout=30, what="the bridge to reopen the port")
    after = device_frames(CODES, START + timedelta(minutes=10), 10)
    pty_device.write(b"".join(frame for _, frame in after))
    wait_for(lambda: stored() == expected(before + after), timeout=30, what="the frames sent after the reconnect")
    assert metric("pipewatch_sensors_reconnects_total", target="port") > reconnects


class DeviceServer:
    """A device on TCP (like a serial-over-IP converter): the bridge connects with socket://."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._accepted = threading.Semaphore(0)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            self._accepted.release()

    def wait_client(self, timeout: float = 30) -> socket.socket:
        assert self._accepted.acquire(timeout=timeout), "the bridge never connected"
        return self.connections[-1]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def device_server() -> Iterator[DeviceServer]:
    server = DeviceServer()
    yield server
    server.close()


def test_tcp_peer_gone_reconnects_without_losing_a_frame(
    device_server: DeviceServer, start_bridge: Callable[..., ChildProcess]
) -> None:
    bridge = start_bridge(f"socket://127.0.0.1:{device_server.port}")
    first = device_server.wait_client()
    # pyserial's open() discards what already arrived (reset_input_buffer): send once the port is open.
    wait_for(lambda: opened_count(bridge) == 1, timeout=30, what="the bridge to open the socket")
    before = device_frames(CODES, START, 5)
    first.sendall(b"".join(frame for _, frame in before) + b"$R,101,26030")  # ends mid-frame
    wait_for(lambda: stored() == expected(before), timeout=30, what="the first frames")
    first.close()  # the converter drops the connection; the partial frame must not be parsed
    second = device_server.wait_client()
    wait_for(lambda: opened_count(bridge) == 2, timeout=30, what="the bridge to reopen the socket")
    after = device_frames(CODES, START + timedelta(minutes=5), 5)
    second.sendall(b"".join(frame for _, frame in after))
    wait_for(lambda: stored() == expected(before + after), timeout=30, what="the frames after the reconnect")


def test_database_cut_mid_stream_spools_and_backfills_each_reading_once(
    pty_device: Pty,
    db_proxy: TcpProxy,
    start_bridge: Callable[..., ChildProcess],
    clean_redis: redis.Redis,
) -> None:
    reconnects = metric("pipewatch_sensors_reconnects_total", target="database")
    stored_before = metric("pipewatch_sensors_readings_stored_total")
    bridge = start_bridge(str(pty_device.link), {"DATABASE_URL": db_proxy.database_url()})
    wait_for(lambda: opened_count(bridge) == 1, timeout=30, what="the bridge to open the pty")
    before = device_frames(CODES, START, 20)
    pty_device.write(b"".join(frame for _, frame in before))
    wait_for(lambda: stored() == expected(before), timeout=30, what="the frames before the outage")

    db_proxy.cut()
    during = device_frames(CODES, START + timedelta(minutes=20), 40)
    for index in range(0, len(during), 10):  # a steady stream while the database is away
        pty_device.write(b"".join(frame for _, frame in during[index : index + 10]))
    wait_for(
        lambda: (
            heartbeat(clean_redis).get("spool_depth") == len(during)
            and heartbeat(clean_redis).get("database_ok") is False
        ),
        timeout=30,
        what="every reading of the outage spooled",
    )
    assert stored() == expected(before)

    db_proxy.restore()
    after = device_frames(CODES, START + timedelta(minutes=60), 20)
    pty_device.write(b"".join(frame for _, frame in after))
    everything = expected(before + during + after)
    wait_for(lambda: stored() == everything, timeout=60, what="the back-fill")
    assert Reading.objects.count() == len(everything)
    wait_for(lambda: heartbeat(clean_redis).get("spool_depth") == 0, timeout=10, what="an empty spool")
    assert "database unavailable" in bridge.output()
    assert metric("pipewatch_sensors_reconnects_total", target="database") > reconnects
    assert metric("pipewatch_sensors_readings_stored_total") == stored_before + len(everything)


def test_sigkill_while_spooling_then_restart_loses_nothing(
    pty_device: Pty,
    db_proxy: TcpProxy,
    start_bridge: Callable[..., ChildProcess],
    clean_redis: redis.Redis,
    tmp_path: Path,
) -> None:
    env = {"DATABASE_URL": db_proxy.database_url()}
    bridge = start_bridge(str(pty_device.link), env)
    wait_for(lambda: opened_count(bridge) == 1, timeout=30, what="the bridge to open the pty")
    before = device_frames(CODES, START, 10)
    pty_device.write(b"".join(frame for _, frame in before))
    wait_for(lambda: stored() == expected(before), timeout=30, what="the frames before the outage")

    db_proxy.cut()
    during = device_frames(CODES, START + timedelta(minutes=10), 30)
    pty_device.write(b"".join(frame for _, frame in during))
    wait_for(lambda: heartbeat(clean_redis).get("spool_depth") == len(during), timeout=30, what="the outage spooled")
    bridge.stop(signal.SIGKILL)
    assert bridge.proc.returncode == -signal.SIGKILL
    assert (tmp_path / "spool" / "test-bridge.spool").stat().st_size > 0

    db_proxy.restore()
    restarted = start_bridge(str(pty_device.link), env)
    wait_for(lambda: stored() == expected(before + during), timeout=60, what="the spool replayed at start")
    assert "back-filling" in restarted.output()
    wait_for(lambda: opened_count(restarted) == 1, timeout=30, what="the restarted bridge to open the pty")
    after = device_frames(CODES, START + timedelta(minutes=40), 5)
    pty_device.write(b"".join(frame for _, frame in after))
    wait_for(lambda: stored() == expected(before + during + after), timeout=30, what="new frames after restart")
    assert Reading.objects.count() == len(before + during + after)


def test_sigterm_flushes_what_was_read_and_exits_cleanly(
    pty_device: Pty, start_bridge: Callable[..., ChildProcess], clean_redis: redis.Redis, tmp_path: Path
) -> None:
    # A long flush interval: the readings are still uncommitted when SIGTERM arrives.
    port = free_port()
    bridge = start_bridge(
        str(pty_device.link), {"METRICS_PORT": str(port)}, "--flush-interval", "600", "--batch-size", "100000"
    )
    wait_for(lambda: opened_count(bridge) == 1, timeout=30, what="the bridge to open the pty")
    frames = device_frames(CODES, START, 10)
    pty_device.write(b"".join(frame for _, frame in frames))
    wait_for(lambda: heartbeat(clean_redis).get("spool_depth") == len(frames), timeout=30, what="frames read")
    exposed = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text  # its own exporter port
    assert "pipewatch_sensors_spool_depth" in exposed
    assert Reading.objects.count() == 0
    bridge.stop(signal.SIGTERM)
    assert bridge.proc.returncode == 0, bridge.output()
    assert stored() == expected(frames)
    assert (tmp_path / "spool" / "test-bridge.spool").stat().st_size == 0


def test_redis_unreachable_does_not_stop_readings(pty_device: Pty, start_bridge: Callable[..., ChildProcess]) -> None:
    """Readings need only the database; heartbeat and outbox wait for Redis with backoff."""
    bridge = start_bridge(str(pty_device.link), {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    wait_for(lambda: opened_count(bridge) == 1, timeout=30, what="the bridge to open the pty")
    frames = device_frames(CODES, START, 10)
    pty_device.write(b"".join(frame for _, frame in frames))
    wait_for(lambda: stored() == expected(frames), timeout=30, what="readings stored without Redis")
    assert "redis unavailable" in bridge.output()
    assert bridge.proc.poll() is None
