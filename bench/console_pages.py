"""Server time of every console page with 1,000 sensors on PostgreSQL (target: < 300 ms each).

Builds its own database (`<DATABASE_URL's name>_console_bench`, dropped first and at the end), filled in
SQL (generate_series): 1,000 active sensors with the last 36 hours of minute readings, YEAR_SENSORS of them
with a full year (525,600 readings each), the hourly roll-up of the last two weeks (forecasting's own
rollup.refresh), newest criteria for every sensor, the latest 168-hour forecast issue for every sensor and
metric, 2,000 anomaly events (200 unresolved), a year of nights, 3 hosts x 7 days of 5-second samples
and their hourly roll-up (monitoring's rollup.refresh: the first run, then an incremental one, both timed),
50 organisations with 500 harvest runs, model versions and training runs.

CONSOLE_BENCH_REUSE=1 keeps the seeded database for the next run (and reuses it); the readings then end
when it was seeded, so the 24 h chart is as full as the time since then allows.

Each page is requested WARMUP times, then MEASURED times through Django's test client (in-process: the
time is the server's - URL routing, view, queries, template - without a network). The health panel is
reported apart: it runs the live health checks (the worker ping waits up to 1 s when no worker answers).
Prints one JSON line: per page median, p90 and max milliseconds and the number of queries.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.database import bench_url, drop_database, recreate_database, setup_django

SENSORS = 1_000
YEAR_SENSORS = 10
RECENT_HOURS = 36
HOSTS = 3
WARMUP = 2
MEASURED = 15


SEED_SQL = """
INSERT INTO sensors_sensor (code, name, location, active, flow_min, flow_max, pressure_min, pressure_max,
                            auto_registered, created_at)
SELECT lpad(i::text, 3, '0'), 'sensor ' || i, 'zone ' || (i %% 17), true, 0, 1000, 0, 16, false, now()
FROM generate_series(0, %(sensors)s - 1) i;

-- the last 36 hours for every sensor; a year for the first YEAR_SENSORS
INSERT INTO sensors_reading (sensor_id, ts, flow, pressure, status, received_at)
SELECT s.id, t, 20 + 8 * sin(extract(epoch FROM t) / 86400 * 2 * pi()) + s.id %% 7, 3 + (s.id %% 5) * 0.1, 0, t
FROM sensors_sensor s,
     generate_series(%(now)s::timestamptz - interval '%(recent)s hours', %(now)s::timestamptz, interval '1 minute') t;
INSERT INTO sensors_reading (sensor_id, ts, flow, pressure, status, received_at)
SELECT s.id, t, 20 + 8 * sin(extract(epoch FROM t) / 86400 * 2 * pi()) + s.id %% 7, 3 + (s.id %% 5) * 0.1, 0, t
FROM (SELECT id FROM sensors_sensor ORDER BY code LIMIT %(year_sensors)s) s,
     generate_series(%(now)s::timestamptz - interval '365 days',
                     %(now)s::timestamptz - interval '%(recent)s hours' - interval '1 minute', interval '1 minute') t;

INSERT INTO anomaly_criteriaversion (created_at, source, source_detail, data_start, data_end, readings, sensors,
                                     parameters)
VALUES (now(), 'database', 'bench', %(now)s::timestamptz - interval '90 days', %(now)s, 0, %(sensors)s, '{}');
INSERT INTO anomaly_criteria (version_id, sensor_id, metric, hour, weekend, samples, median, mad, q1, q3, lower,
                              upper, residual_lower, residual_upper, max_flat_run, night_baseline)
SELECT v.id, s.id, m, h, w, 60, 20, 2, 18, 22, 10 + h %% 5, 32 + h %% 5, -5, 5, 3, CASE WHEN m = 'flow' THEN 12 END
FROM (SELECT max(id) id FROM anomaly_criteriaversion) v, sensors_sensor s, unnest(ARRAY['flow', 'pressure']) m,
     generate_series(0, 23) h, unnest(ARRAY[false, true]) w;

INSERT INTO forecasting_forecast (sensor_id, metric, issued_at, target, value, degraded)
SELECT s.id, m, date_trunc('hour', %(now)s::timestamptz),
       date_trunc('hour', %(now)s::timestamptz) + k * interval '1 hour',
       CASE WHEN m = 'flow' THEN 21 ELSE 3 END, false
FROM sensors_sensor s, unnest(ARRAY['flow', 'pressure']) m, generate_series(0, 167) k;

INSERT INTO anomaly_anomalyevent (source, sensor_id, subject, metric, method, severity, status, started_at,
                                  last_fired_at, ended_at, peak_score, fired_count, evidence, created_at)
SELECT 'sensor', s.id, s.code, CASE WHEN i %% 2 = 0 THEN 'flow' ELSE 'pressure' END,
       (ARRAY['system', 'value', 'predict', 'night'])[1 + i %% 4], (ARRAY['info', 'warning', 'critical'])[1 + i %% 3],
       CASE WHEN i < 200 THEN 'open' ELSE 'resolved' END,
       %(now)s::timestamptz - (i * interval '2 hours') - interval '1 hour',
       %(now)s::timestamptz - (i * interval '2 hours'),
       CASE WHEN i < 200 THEN NULL ELSE %(now)s::timestamptz - (i * interval '2 hours') + interval '10 minutes' END,
       2.5, 60, '{"state": "high", "value": 40.0, "band": [10.0, 30.0]}', now()
FROM generate_series(0, 1999) i JOIN sensors_sensor s ON s.code = lpad((i %% 1000)::text, 3, '0');

INSERT INTO anomaly_nightminimum (sensor_id, night, min_flow, baseline, exceeded, streak, blocks)
SELECT s.id, (%(now)s::timestamptz - k * interval '1 day')::date, 12 + random(), 12.5, false, 0, 42
FROM (SELECT id FROM sensors_sensor ORDER BY code LIMIT %(year_sensors)s) s, generate_series(1, 365) k;

INSERT INTO monitoring_host (name, active, cpu_count, memory_total_bytes, platform, interval_seconds, first_seen_at,
                             last_seen_at)
SELECT 'host-' || i, true, 2, 8000000000, 'Linux', 5, now(), %(now)s FROM generate_series(1, %(hosts)s) i;
INSERT INTO monitoring_hostsample (host_id, ts, cpu_percent, cpu_per_core, load_1, load_5, load_15,
    memory_total_bytes, memory_used_bytes, memory_available_bytes, memory_percent, swap_total_bytes, swap_used_bytes,
    swap_percent, disk_percent, disk_read_bytes_per_second, disk_write_bytes_per_second, disks,
    net_sent_bytes_per_second, net_recv_bytes_per_second, interfaces)
SELECT h.id, t, 20 + 10 * random(), '[20, 20]', 0.5, 0.4, 0.3, 8000000000, 2000000000, 6000000000, 25 + random(), 0, 0,
       0, 40, 1000 * random(), 2000 * random(), '[]', 300 * random(), 400 * random(), '{}'
FROM monitoring_host h,
     generate_series(%(now)s::timestamptz - interval '7 days', %(now)s::timestamptz, interval '5 seconds') t;

INSERT INTO forecasting_modelversion (metric, status, created_at, data_start, data_end, validation_start, sensors,
    rows, windows, epochs, training_seconds, mae, baseline_mae, artifact_dir, params, reason)
SELECT (ARRAY['flow', 'pressure'])[1 + i %% 2], 'rejected', now() - i * interval '1 day', now() - interval '300 days',
       now() - interval '1 day', now() - interval '30 days', 1000, 0, 0, 20, 120, 1.5, 1.4, '', '{}', 'bench'
FROM generate_series(1, 20) i;
INSERT INTO forecasting_trainingrun (metrics, status, requested_by, attempts, task_id, worker, queued_at, error,
                                     summary, finished_at)
SELECT '["flow", "pressure"]', 'succeeded', 'bench', 1, '', '', now() - i * interval '1 day', '', '{}', now()
FROM generate_series(1, 20) i;
"""


def seed_ingest(now: datetime) -> None:
    from ingest.identifiers import business_check_digit
    from ingest.models import Applicant, HarvestCheckpoint, HarvestRun, Organization, RunStatus

    numbers = [f"10186{i:04d}" for i in range(50)]
    numbers = [f"{n[:3]}-{n[3:5]}-{n[5:]}{business_check_digit(n)}" for n in numbers]
    organizations = [
        Organization(name=f"org {i}", org_type="company", business_number=number) for i, number in enumerate(numbers)
    ]
    Organization.objects.bulk_create(organizations)
    applicants = Applicant.objects.bulk_create(
        Applicant(number=f"1202300{i:05d}", name=org.name, organization=org) for i, org in enumerate(organizations)
    )
    runs = HarvestRun.objects.bulk_create(
        HarvestRun(
            organization=organizations[i % 50],
            kinds=["patent", "design", "trademark"],
            status=RunStatus.FAILED if i % 25 == 0 else RunStatus.DONE,
            error="KiprisAuthError: KIPRIS rejected the service key" if i % 25 == 0 else "",
            started_at=now - timedelta(hours=i),
            finished_at=now - timedelta(hours=i) + timedelta(minutes=5),
        )
        for i in range(500)
    )
    HarvestCheckpoint.objects.bulk_create(
        HarvestCheckpoint(
            run=run,
            organization=run.organization,
            applicant=applicants[i % 50],
            kind=kind,
            fetched=100,
            total=100,
            status=RunStatus.DONE,
            requests=10,
            stats={kind: {"new": 60, "unchanged": 40}},
        )
        for i, run in enumerate(runs)
        for kind in ("patent", "design", "trademark")
    )


def measure(client: object, path: str) -> dict[str, float]:
    """Wall time of the request, and its split: SQL (the queries' own times) and this thread's CPU (Python:
    view, pandas, template). Wall above SQL + CPU is waiting for a core on a loaded machine."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    walls, sqls, cpus = [], [], []
    queries = 0
    for attempt in range(WARMUP + MEASURED):
        with CaptureQueriesContext(connection) as captured:
            started, cpu_started = time.perf_counter(), time.thread_time()
            response = client.get(path, HTTP_ACCEPT="text/html")  # type: ignore[attr-defined]
            elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        assert response.status_code == 200, (path, response.status_code)
        if attempt >= WARMUP:
            walls.append(elapsed * 1000)
            sqls.append(sum(float(query["time"]) for query in captured.captured_queries) * 1000)
            cpus.append(cpu * 1000)
            queries = len(captured)
    walls.sort()
    return {
        "median_ms": round(statistics.median(walls), 1),
        "p90_ms": round(walls[int(len(walls) * 0.9) - 1], 1),
        "max_ms": round(walls[-1], 1),
        "sql_median_ms": round(statistics.median(sqls), 1),
        "python_cpu_median_ms": round(statistics.median(cpus), 1),
        "queries": queries,
    }


def main() -> None:
    reuse = os.environ.get("CONSOLE_BENCH_REUSE", "") == "1"
    database = bench_url("console_bench")
    seed = recreate_database(database, reuse=reuse)
    os.environ["ALLOWED_HOSTS"] = "testserver"
    setup_django(database)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from forecasting.services import rollup
    from monitoring.services import rollup as host_rollup

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    setup_started = time.perf_counter()
    if seed:
        with connection.cursor() as cursor:
            cursor.execute(
                SEED_SQL,
                {"sensors": SENSORS, "year_sensors": YEAR_SENSORS, "recent": RECENT_HOURS, "now": now, "hosts": HOSTS},
            )
        rollup.refresh(now.replace(minute=0), 14 * 24)
        seed_ingest(now)
    host_rollup_seconds = []
    for _ in range(2):  # the first run (every stored hour, unless reused) and an incremental one
        started = time.perf_counter()
        host_rollup.refresh()
        host_rollup_seconds.append(round(time.perf_counter() - started, 2))
    with connection.cursor() as cursor:
        if seed:
            cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT count(*) FROM sensors_reading")
        readings = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM monitoring_hostsample")
        samples = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]
    setup_seconds = time.perf_counter() - setup_started

    client = Client()
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", password="x")
    client.force_login(user)
    year_sensor = "005"
    from anomaly.models import AnomalyEvent

    event = AnomalyEvent.objects.filter(sensor__code=year_sensor).order_by("-started_at").first()
    assert event is not None
    pages = {
        "overview": "/",
        "sensors": "/sensors/",
        "sensors_sorted_by_age": "/sensors/?sort=-age",
        "sensors_search": "/sensors/?q=zone+3",
        "sensor_24h": f"/sensors/{year_sensor}/?range=24h",
        "sensor_7d": f"/sensors/{year_sensor}/?range=7d",
        "sensor_30d": f"/sensors/{year_sensor}/?range=30d",
        "events": "/events/",
        "events_open_critical": "/events/?open=true&severity=critical",
        "event_detail": f"/events/{event.pk}/",
        "forecasts": "/forecasts/",
        "harvest": "/harvest/",
        "hosts_1h": "/hosts/?host=host-1&range=1h",
        "hosts_24h": "/hosts/?host=host-1&range=24h",
        "hosts_7d": "/hosts/?host=host-1&range=7d",
        "eventlogs_no_data_seeded": "/eventlogs/",
    }
    load_before = os.getloadavg()[0]
    results = {name: measure(client, path) for name, path in pages.items()}
    health = measure(client, "/console/health/")
    load_after = os.getloadavg()[0]
    print(
        json.dumps(
            {
                "bench": "console_pages",
                "date": datetime.now(UTC).date().isoformat(),
                "machine": f"{platform.node()} {os.cpu_count()} cpu",
                "sensors": SENSORS,
                "readings_in_db": readings,
                "year_sensors": YEAR_SENSORS,
                "host_samples": samples,
                "database_size": size,
                "host_rollup_seconds_first_then_incremental": host_rollup_seconds,
                "pages": results,
                "slowest_page": max(results, key=lambda name: results[name]["p90_ms"]),
                "health_panel_live_checks": health,
                "setup_seconds": round(setup_seconds, 1),
                "seeded_now": seed,
                "load_average_1m": [round(load_before, 1), round(load_after, 1)],
                "target_ms": 300,
            }
        )
    )
    connection.close()
    if not reuse:
        drop_database(database)


if __name__ == "__main__":
    main()
