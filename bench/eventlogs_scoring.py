"""One minute of behaviour scoring for 100,000 active lol accounts on PostgreSQL (target: <= 5 s).

Builds its own database (`<DATABASE_URL's name>_bench`, dropped first) and loads, with COPY, three
minutes of game events for ACCOUNTS accounts (~4 actions per account-minute, the scenario's rate: 80 %
moves, 1 % of accounts jumping like the suspect). The first two minutes are scored untimed (the second
has every account's previous state, as in steady operation); the third is the measured one: the whole
`services.score_window` — events query, previous state, features and scores, writes (the window rows that
carry information, the notable accounts' AccountState, the kind's state row, the window row) and the
anomaly events of the flagged accounts. Prints one JSON line: wall seconds per window, and the
CPU seconds of this process and of its PostgreSQL backend (read from /proc: the database runs here), and
the WAL each window wrote.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.database import bench_url, recreate_database, setup_django

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "100000"))
PER_MINUTE = 4
MINUTES = 3
START = datetime(2024, 3, 24, 11, 0, tzinfo=UTC)


def events(rng: np.random.Generator) -> io.StringIO:
    """MINUTES x ACCOUNTS x PER_MINUTE lol rows as COPY text."""
    n = ACCOUNTS * PER_MINUTE * MINUTES
    account = np.tile(np.arange(ACCOUNTS), PER_MINUTE * MINUTES)
    seconds = rng.uniform(0, MINUTES * 60, n)
    moves = rng.random(n) < 0.8
    cheater = account % 100 == 0
    jump = cheater & (rng.random(n) < 0.35)
    x = np.clip(rng.normal(0, 400, n) + np.where(jump, rng.uniform(-1000, 1000, n), 0), -1000, 1000).astype(int)
    y = np.clip(rng.normal(0, 400, n), -1000, 1000).astype(int)
    keys = np.where(rng.random(n) < 0.03, "alt", "q")
    buffer = io.StringIO()
    ids = [uuid.UUID(int=int(v), version=4) for v in rng.integers(0, 2**63, n)]
    base = START.timestamp()
    for i in range(n):
        ts = datetime.fromtimestamp(base + seconds[i], tz=UTC).isoformat()
        game = int(seconds[i])
        buffer.write(
            f"{ids[i]}\t{ts}\t{START.isoformat()}\tbench_{account[i]}\t{'/move' if moves[i] else '/wait'}\t"
            f"{game // 60}:{game % 60}\t{game}\t{START.isoformat()}\t10.0.0.1\t{x[i]}\t{y[i]}\t{x[i] + y[i]}\t0\t"
            f"{keys[i]}\tvex\t0\t0\n"
        )
    buffer.seek(0)
    return buffer


def backend_cpu_seconds(pid: int) -> float:
    """utime + stime of a local process (the PostgreSQL backend serving this connection)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wal_position(connection: object) -> str:
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        return str(cursor.fetchone()[0])


def wal_bytes(connection: object, since: str) -> int:
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s::pg_lsn)", [since])
        return int(cursor.fetchone()[0])


def main() -> None:
    database = bench_url("bench")
    recreate_database(database)
    setup_django(database)
    from django.db import connection

    from eventlogs.detection import services
    from eventlogs.detection.models import AccountWindow, ScoredWindow

    rng = np.random.default_rng(11)
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.copy_expert(
            "COPY eventlogs_lolevent (event_id, ts, received_at, account, method, ingametime, ingame_seconds, "
            "game_start, ip, x, y, x_plus_y, death_count, inputkey, champion, status, buy_item) FROM STDIN",
            events(rng),
        )
        cursor.execute("ANALYZE eventlogs_lolevent")
    load_s = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    timings, cpu, db_cpu, wal = [], [], [], []
    for minute in range(MINUTES):
        window = START + timedelta(minutes=minute)
        began, began_cpu, began_db = time.perf_counter(), time.process_time(), backend_cpu_seconds(backend)
        began_wal = wal_position(connection)
        services.score_window("lol", window)
        timings.append(round(time.perf_counter() - began, 3))
        cpu.append(round(time.process_time() - began_cpu, 3))
        db_cpu.append(round(backend_cpu_seconds(backend) - began_db, 3))
        wal.append(round(wal_bytes(connection, began_wal) / 2**20, 1))
        if minute == 0:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE eventlogs_accountstate; ANALYZE eventlogs_accountwindow")
    last = ScoredWindow.objects.get(kind="lol", window_start=START + timedelta(minutes=MINUTES - 1))
    window_rows = AccountWindow.objects.filter(kind="lol", window_start=last.window_start).count()
    began = time.perf_counter()
    skipped = services.score_window("lol", last.window_start)
    skip_s = time.perf_counter() - began
    print(
        json.dumps(
            {
                "bench": "eventlogs_scoring",
                "accounts": ACCOUNTS,
                "events_in_window": last.events,
                "flagged": last.flagged,
                "window_rows": window_rows,
                "window_seconds": timings,
                "measured_window_seconds": timings[-1],
                "python_cpu_seconds": cpu,
                "postgres_cpu_seconds": db_cpu,
                "wal_mib": wal,
                "target_seconds": 5.0,
                "already_scored_skip_seconds": round(skip_s, 4) if skipped is None else None,
                "load_seconds": round(load_s, 1),
                "machine": f"{platform.machine()} {os.cpu_count()} cpu",
                "load_average": os.getloadavg()[0],
                "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            }
        )
    )


if __name__ == "__main__":
    main()
