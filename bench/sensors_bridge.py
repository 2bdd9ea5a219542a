"""Serial bridge benchmark: parser-only rate, batch-size sweep, pty -> bridge -> PostgreSQL throughput,
CPU per 1,000 frames, and frame -> committed latency at the wire's 400 frames/s. Prints one JSON line.

Needs PostgreSQL and Redis (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/pw_bench_sensors,
created and migrated if missing; REDIS_URL, default redis://127.0.0.1:6379/1).
"""

from __future__ import annotations

import json
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
import tty
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pw_bench_sensors")
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-sensors-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
sys.path.insert(0, str(BASE_DIR))

import psutil  # noqa: E402
import psycopg2  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
SENSORS = 100
THROUGHPUT_FRAMES = 100_000
LATENCY_RATE = 400  # frames/s: a 115200-baud line carries ~400 of these frames per second
LATENCY_SECONDS = 15


def ensure_database() -> None:
    name = DATABASE_URL.rsplit("/", 1)[1]
    admin = psycopg2.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cursor.fetchone():
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def setup_django() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def frames(count: int, first_minute: int = 0) -> list[bytes]:
    from sensors.protocol import FrameReading, format_reading_frame
    from sensors.settings import frame_layout

    layout = frame_layout()
    return [
        format_reading_frame(
            FrameReading(
                f"{i % SENSORS + 1:03d}",
                START + timedelta(minutes=first_minute + i // SENSORS),
                round(50 + (i % 977) * 0.1, 3),
                4.5,
                0,
            ),
            layout,
        )
        for i in range(count)
    ]


def parser_rate(data: list[bytes]) -> float:
    from sensors.protocol import LineBuffer, parse_frame
    from sensors.settings import frame_layout

    layout = frame_layout()
    stream = b"".join(data)
    started = time.perf_counter()
    buffer = LineBuffer()
    parsed = 0
    for offset in range(0, len(stream), 4096):  # as the bridge sees it: chunks off the port
        for line in buffer.feed(stream[offset : offset + 4096]):
            parse_frame(line, layout)
            parsed += 1
    return parsed / (time.perf_counter() - started)


def clear_readings() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE sensors_reading")


def batch_sweep() -> dict[str, int]:
    """Rows/s of store_readings by batch size (in-process, the bridge's own insert path)."""
    from sensors.protocol import parse_frame
    from sensors.services.storage import SensorRegistry, store_readings
    from sensors.settings import frame_layout

    layout = frame_layout()
    registry = SensorRegistry()
    rates = {}
    minute = 100_000
    for size in (100, 500, 2000, 5000):
        clear_readings()
        readings = [parse_frame(frame, layout) for frame in frames(40_000, first_minute=minute)]
        minute += 1000
        started = time.perf_counter()
        for index in range(0, len(readings), size):
            store_readings(readings[index : index + size], registry)
        rates[str(size)] = round(len(readings) / (time.perf_counter() - started))
    return rates


def count_readings() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sensors_reading")
        return int(cursor.fetchone()[0])


def start_bridge(link: Path, spool: Path, name: str, *extra: str) -> subprocess.Popen[bytes]:
    from core.redis import redis_client
    from sensors.bridge import HEARTBEAT_PREFIX

    redis_client().delete(HEARTBEAT_PREFIX + name)
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serial_bridge",
            "--url",
            str(link),
            "--spool-dir",
            str(spool),
            "--name",
            name,
            *extra,
        ],
        cwd=BASE_DIR,
        env={**os.environ, "PIPEWATCH_PROCESS": "bench-bridge"},
        stdout=subprocess.DEVNULL,
        stderr=(Path(tempfile.gettempdir()) / f"{name}.log").open("wb"),
    )


def open_pty(link: Path) -> int:
    master, slave = os.openpty()
    tty.setraw(slave)
    link.unlink(missing_ok=True)
    link.symlink_to(os.ttyname(slave))
    return master


def write_all(master: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        select.select([], [master], [])
        view = view[os.write(master, view[:65536]) :]


def wait_stored(expected: int, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while (stored := count_readings()) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {stored} of {expected} readings stored")
        time.sleep(0.02)
    return time.monotonic()


def wait_open(name: str) -> None:
    """Until the bridge's heartbeat says its port is open (pyserial discards input that came before)."""
    from core.redis import redis_client
    from sensors.bridge import HEARTBEAT_PREFIX

    deadline = time.monotonic() + 60
    while True:
        raw = redis_client().get(HEARTBEAT_PREFIX + name)
        if raw and json.loads(raw)["connected"]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the bridge never opened the pty")
        time.sleep(0.05)


def throughput(workdir: Path) -> dict[str, float]:
    clear_readings()
    link = workdir / "tput.pty"
    master = open_pty(link)
    bridge = start_bridge(link, workdir / "spool-tput", "bench-tput")
    process = psutil.Process(bridge.pid)
    wait_open("bench-tput")
    data = b"".join(frames(THROUGHPUT_FRAMES))
    cpu_before = sum(process.cpu_times()[:2])
    started = time.monotonic()
    write_all(master, data)
    written = time.monotonic()
    finished = wait_stored(THROUGHPUT_FRAMES)
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    bridge.terminate()
    bridge.wait(30)
    os.close(master)
    return {
        "frames_per_s": round(THROUGHPUT_FRAMES / (finished - started)),
        "pty_write_s": round(written - started, 3),
        "cpu_s_per_1000_frames": round(cpu / THROUGHPUT_FRAMES * 1000, 4),
    }


def latency(workdir: Path, flush_interval: str) -> dict[str, float]:
    from django.db import connection

    clear_readings()
    link = workdir / f"lat{flush_interval}.pty"
    master = open_pty(link)
    name = f"bench-lat-{flush_interval}"
    bridge = start_bridge(link, workdir / f"spool-{name}", name, "--flush-interval", flush_interval)
    process = psutil.Process(bridge.pid)
    wait_open(name)
    total = LATENCY_RATE * LATENCY_SECONDS
    data = frames(total, first_minute=500_000)
    sent_at: list[float] = []
    cpu_before = sum(process.cpu_times()[:2])
    began = time.time()
    for index in range(0, total, 4):  # 4 frames every 10 ms = 400 frames/s
        due = began + index / LATENCY_RATE
        if (pause := due - time.time()) > 0:
            time.sleep(pause)
        now = time.time()
        write_all(master, b"".join(data[index : index + 4]))
        sent_at.extend([now] * 4)
    wait_stored(total)
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM r.received_at) FROM sensors_reading r "
            "JOIN sensors_sensor s ON s.id = r.sensor_id ORDER BY r.ts, s.code"
        )
        committed = [float(row[0]) for row in cursor.fetchall()]
    bridge.terminate()
    bridge.wait(30)
    os.close(master)
    # Frames were generated in (minute, sensor) order, the same order as the query.
    delays = sorted(done - sent for done, sent in zip(committed, sent_at, strict=True))
    return {
        "p50_ms": round(statistics.median(delays) * 1000, 1),
        "p99_ms": round(delays[int(len(delays) * 0.99)] * 1000, 1),
        "max_ms": round(delays[-1] * 1000, 1),
        "cpu_share_of_a_core": round(cpu / LATENCY_SECONDS, 3),
    }


def main() -> None:
    ensure_database()
    setup_django()
    from sensors.bridge import BATCH_SIZE, FLUSH_INTERVAL_SECONDS

    sample = frames(200_000)
    with tempfile.TemporaryDirectory(prefix="bench-sensors-") as tmp:
        workdir = Path(tmp)
        result = {
            "bench": "sensors_bridge",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {psutil.cpu_count()} cores, shared",
            "parser_frames_per_s": round(parser_rate(sample)),
            "store_rows_per_s_by_batch": batch_sweep(),
            "batch_size": BATCH_SIZE,
            "flush_interval_s": FLUSH_INTERVAL_SECONDS,
            "pty_to_postgresql": throughput(workdir),
            "latency_at_400_fps": latency(workdir, str(FLUSH_INTERVAL_SECONDS)),
            "latency_at_400_fps_flush_0.05": latency(workdir, "0.05"),
        }
    clear_readings()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
