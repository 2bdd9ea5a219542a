"""`replay_detection` over imported history: replayed minutes per second, CPU per minute, memory.

Builds its own database (`<DATABASE_URL's name>_replay_bench`, dropped first and at the end): 10 sensors with
30 days of simulated readings kept at a 15-minute cadence (what a SCADA export gives, loaded with the
import path's `write_history`), a leak on one sensor and a stuck run on another in the replayed days. Then
replays day 1, and days 2-3, through `anomaly.services.replay.replay` (the command's code), and prints one
JSON line: seconds and process CPU seconds per replayed minute, the events found, and the process's peak
resident memory after each replay (bounded: the second, twice as long, must not need more).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.database import bench_url, drop_database, recreate_database, setup_django

SENSORS = 10
CADENCE = 15
START = datetime(2026, 3, 31, 15, 0, tzinfo=UTC)  # 2026-04-01 00:00 in Seoul: a criteria period starts


def main() -> None:
    database = bench_url("replay_bench")
    recreate_database(database)
    setup_django(database)
    from django.db import connection

    from anomaly.evaluation import at_cadence
    from anomaly.services.replay import replay
    from sensors.models import Sensor
    from sensors.services.backfill import write_history
    from sensors.simulation import Fault, simulate

    codes = [f"{number:03d}" for number in range(1, SENSORS + 1)]
    Sensor.objects.bulk_create([Sensor(code=code) for code in codes])
    first = START - timedelta(days=27)
    faults = [
        Fault("leak", "001", START - timedelta(days=1), START + timedelta(days=3), 1.0),
        Fault("stuck", "002", START + timedelta(hours=30), START + timedelta(hours=33)),
    ]
    readings = at_cadence(simulate(codes, first, 30 * 1440, seed=3, faults=faults).readings, CADENCE)
    write_history(readings)
    runs = []
    for begin, days in ((START, 1), (START + timedelta(days=1), 2)):
        started, cpu = time.perf_counter(), time.process_time()
        result = replay(begin, begin + timedelta(days=days))
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        runs.append({
            "days": days,
            "minutes": result.minutes,
            "seconds": round(seconds, 1),
            "seconds_per_minute": round(seconds / result.minutes, 4),
            "cpu_seconds_per_minute": round(cpu_seconds / result.minutes, 4),
            "events": result.events,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        })  # fmt: skip
    print(json.dumps({
        "bench": "anomaly_replay",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, shared",
        "load_average_1min": os.getloadavg()[0],
        "sensors": SENSORS,
        "cadence_minutes": CADENCE,
        "readings": len(readings),
        "runs": runs,
    }))  # fmt: skip
    connection.close()
    drop_database(database)


if __name__ == "__main__":
    main()
