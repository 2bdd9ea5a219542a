"""One `detect_minute` cycle for 10,000 sensors on PostgreSQL (target: <= 5 s).

Builds its own database (`<DATABASE_URL's name>_bench`, dropped first): 10,000 active sensors, two
hours of simulated minute readings (1.2 M rows, loaded with COPY), criteria for every sensor and metric
(computed from a week of simulated history of 100 sensor profiles, each reused by 100 sensors), a
forecast for the hour (predict active) and a night summary per sensor. 1 % of the sensors spike at the
measured minutes, so events open and extend as in production.

Prints one JSON line: per-minute cycle seconds for 5 consecutive minutes (the first includes loading
the criteria slot into the process cache), the split of the last cycle, and an already-evaluated
minute's skip time. What this benchmark changes to get there: pipewatch's `sensors_sensor.code` is
varchar(3) (the serial protocol addresses 000-999, so one line carries at most 1,000 sensors); this
benchmark widens the column to varchar(8) in its own database (ALTER TABLE below) and gives sensors
1,000-9,999 5-digit codes. Only the 1,000 3-digit sensors get an alert frame, as on a real line; frame
formatting for 10,000 sensors is timed separately. A site with more sensors runs more lines and bridges.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.database import bench_url, drop_database, recreate_database, setup_django

SENSORS = 10_000
PROFILES = 100
HISTORY_MINUTES = 120
MINUTE = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # the first measured minute (21:00 in Seoul, a weekday)
MEASURED = 5


def copy(cursor: object, table: str, columns: list[str], rows: list[tuple[object, ...]]) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if value is None else str(value) for value in row) + "\n")
    buffer.seek(0)
    cursor.copy_from(buffer, table, columns=columns)  # type: ignore[attr-defined]


def main() -> None:
    database = bench_url("bench")
    recreate_database(database)
    os.environ["ANOMALY_CATCHUP_MINUTES"] = "1"
    setup_django(database)
    from django.db import connection

    from anomaly.criteria import Parameters, compute_criteria
    from anomaly.services import detect
    from sensors.simulation import simulate

    setup_started = time.perf_counter()
    codes = [f"{number:03d}" if number < 1000 else f"{number:05d}" for number in range(SENSORS)]
    profile_codes = [f"{number:03d}" for number in range(PROFILES)]
    now = datetime.now(UTC).isoformat()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE sensors_sensor ALTER COLUMN code TYPE varchar(8)")
        raw = cursor.cursor
        copy(raw, "sensors_sensor",
             ["id", "code", "name", "location", "active", "flow_min", "flow_max", "pressure_min", "pressure_max",
              "auto_registered", "created_at"],
             [(i + 1, code, "", "", "t", 0, 1000, 0, 16, "f", now) for i, code in enumerate(codes)])  # fmt: skip
        # readings: 100 simulated profiles, each reused by 100 sensors; 1 % spike during the measured minutes
        window = simulate(profile_codes, MINUTE - timedelta(minutes=HISTORY_MINUTES - 1), HISTORY_MINUTES + MEASURED,
                          seed=3).readings  # fmt: skip
        spiking = set(range(0, SENSORS, 100))
        by_profile = dict(list(window.groupby("sensor")))
        rows: list[tuple[object, ...]] = []
        for index in range(SENSORS):
            frame = by_profile[profile_codes[index % PROFILES]]
            flows = frame["flow"].to_numpy().copy()
            if index in spiking:
                flows[-MEASURED:] *= 4  # what the simulator's spike fault does (magnitude 3)
            rows.extend(
                (index + 1, ts.isoformat(), flow, pressure, 0, now)
                for ts, flow, pressure in zip(frame["ts"], flows, frame["pressure"], strict=True)
            )
        copy(raw, "sensors_reading", ["sensor_id", "ts", "flow", "pressure", "status", "received_at"], rows)
        history = simulate(profile_codes, MINUTE - timedelta(days=8), 7 * 1440, seed=3).readings
        criteria = compute_criteria(history, Parameters.from_settings())
        cursor.execute(
            "INSERT INTO anomaly_criteriaversion (created_at, source, source_detail, data_start, data_end, readings,"
            " sensors, parameters) VALUES (now(), 'file', 'bench', %s, %s, %s, %s, '{}') RETURNING id",
            [MINUTE - timedelta(days=8), MINUTE - timedelta(days=1), len(history), SENSORS],
        )
        version = cursor.fetchone()[0]
        columns = ["median", "mad", "q1", "q3", "lower", "upper", "residual_lower", "residual_upper"]
        per_profile = dict(list(criteria.groupby("sensor")))
        copy(raw, "anomaly_criteria",
             ["version_id", "sensor_id", "metric", "hour", "weekend", "samples", *columns, "max_flat_run",
              "night_baseline"],
             [(version, index + 1, r.metric, r.hour, "t" if r.weekend else "f", r.samples,
               *(getattr(r, c) for c in columns), r.max_flat_run,
               None if np.isnan(r.night_baseline) else r.night_baseline)
              for index in range(SENSORS)
              for r in per_profile[profile_codes[index % PROFILES]].itertuples()])  # fmt: skip
        hour = MINUTE.replace(minute=0)
        means = window[window["ts"] >= hour].groupby("sensor")[["flow", "pressure"]].mean()
        copy(raw, "forecasting_forecast", ["sensor_id", "metric", "issued_at", "target", "value", "degraded"],
             [(index + 1, metric, (hour - timedelta(hours=1)).isoformat(), hour.isoformat(),
               means.loc[profile_codes[index % PROFILES], metric], "f")
              for index in range(SENSORS) for metric in ("flow", "pressure")])  # fmt: skip
        from anomaly.services.night import last_complete_night

        copy(raw, "anomaly_nightminimum",
             ["sensor_id", "night", "min_flow", "baseline", "exceeded", "streak", "blocks"],
             [(index + 1, last_complete_night(MINUTE).isoformat(), 50.0, 48.0, "f", 0, 42)
              for index in range(SENSORS)])  # fmt: skip
        cursor.execute("ANALYZE")
    setup_seconds = time.perf_counter() - setup_started

    cycles, cycles_cpu = [], []
    for offset in range(MEASURED):
        started, cpu = time.perf_counter(), time.process_time()
        result = detect.detect_minute(MINUTE + timedelta(minutes=offset))
        cycles.append(round(time.perf_counter() - started, 3))
        cycles_cpu.append(round(time.process_time() - cpu, 3))  # this process only: PostgreSQL's share is not in it
        assert result is not None
    last = MINUTE + timedelta(minutes=MEASURED - 1)
    # the split of one more cycle's stages (a fresh minute: the last measured one plus nothing new)
    from anomaly.models import DetectionResult, DetectionRun

    DetectionRun.objects.filter(minute=last).delete()
    DetectionResult.objects.filter(minute=last).delete()  # evaluated again below: its per-minute results too
    split = {}
    started = time.perf_counter()
    frame = detect.load_minute(last)
    split["minute_query"] = time.perf_counter() - started
    started = time.perf_counter()
    frame = detect.prepare(last)
    split["prepare_all_queries"] = time.perf_counter() - started
    started = time.perf_counter()
    results = detect.evaluate(frame)
    split["methods_numpy"] = time.perf_counter() - started
    from django.db import transaction

    with transaction.atomic():  # the next minute's events step (200 open events all extend), rolled back
        started = time.perf_counter()
        detect.apply_events(last + timedelta(minutes=1), frame, results)
        split["events_step_200_extended"] = time.perf_counter() - started
        transaction.set_rollback(True)
    started = time.perf_counter()
    wired = detect.alert_frames(last, frame, results)
    split["alert_frames_1000"] = time.perf_counter() - started
    started = time.perf_counter()
    frame_all = frame.assign(code=[f"{i % 1000:03d}" for i in range(len(frame))])
    detect.alert_frames(last, frame_all, results)
    split["alert_frames_10000"] = time.perf_counter() - started
    detect.detect_minute(last)
    started = time.perf_counter()
    skipped = detect.detect_minute(last)
    split["already_evaluated_skip"] = time.perf_counter() - started
    from anomaly.models import AnomalyEvent

    print(json.dumps({
        "bench": "anomaly_detect_minute",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.node()} {os.cpu_count()} cpu",
        "sensors": SENSORS,
        "readings_in_db": SENSORS * (HISTORY_MINUTES + MEASURED),
        "cycle_seconds": cycles,
        "cycle_median_seconds": float(np.median(cycles)),
        "cycle_cpu_seconds": cycles_cpu,
        "cycle_cpu_median_seconds": float(np.median(cycles_cpu)),
        "split_seconds": {key: round(value, 3) for key, value in split.items()},
        "events": AnomalyEvent.objects.count(),
        "frames_queued_per_minute": len(wired),
        "skip_returned_none": skipped is None,
        "setup_seconds": round(setup_seconds, 1),
    }))  # fmt: skip
    connection.close()
    drop_database(database)


if __name__ == "__main__":
    main()
