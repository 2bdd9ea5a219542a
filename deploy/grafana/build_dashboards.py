# ruff: noqa: E501 - PromQL and SQL read better on one line each
"""Build pipewatch's Grafana dashboards (JSON under dashboards/) from the short specs below.

Run `python deploy/grafana/build_dashboards.py` after editing; tests/monitoring/test_prometheus_config.py checks the
JSON files match this script and that every PromQL metric they use is one pipewatch exposes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
DATABASE = {"type": "grafana-postgresql-datasource", "uid": "pipewatch-db"}
WIDTH, HEIGHT = 12, 8

Panel = dict[str, Any]


def prom(title: str, *exprs: tuple[str, str], unit: str = "short", kind: str = "timeseries") -> Panel:
    """A Prometheus panel; each expr is (PromQL, legend)."""
    targets = [
        {"refId": chr(65 + index), "datasource": PROMETHEUS, "expr": expr, "legendFormat": legend}
        for index, (expr, legend) in enumerate(exprs)
    ]
    return {"type": kind, "title": title, "datasource": PROMETHEUS, "targets": targets, "unit": unit}


def sql(title: str, query: str, *, kind: str = "timeseries", unit: str = "short") -> Panel:
    """A panel reading the pipewatch database (readings, forecasts, events)."""
    target = {
        "refId": "A",
        "datasource": DATABASE,
        "rawSql": query,
        "format": "table" if kind == "table" else "time_series",
        "rawQuery": True,
        "editorMode": "code",
    }
    return {"type": kind, "title": title, "datasource": DATABASE, "targets": [target], "unit": unit}


def dashboard(
    uid: str, title: str, rows: list[tuple[str, list[Panel]]], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    panels: list[Panel] = []
    y = 0
    for row_title, row_panels in rows:
        panels.append(
            {
                "type": "row",
                "title": row_title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        y += 1
        for index, panel in enumerate(row_panels):
            unit = panel.pop("unit")
            panel["fieldConfig"] = {"defaults": {"unit": unit}, "overrides": []}
            panel["gridPos"] = {"x": (index % 2) * WIDTH, "y": y + (index // 2) * HEIGHT, "w": WIDTH, "h": HEIGHT}
        y += ((len(row_panels) + 1) // 2) * HEIGHT
        panels.extend(row_panels)
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return {
        "uid": uid,
        "title": title,
        "tags": ["pipewatch"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables},
        "panels": panels,
    }


def variable(name: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "query",
        "datasource": PROMETHEUS,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "current": {"text": "All", "value": "$__all"},
    }


INSTANCE = '{instance=~"$instance"}'
HOST_RATE = "[2m]"

SYSTEM = dashboard(
    "pipewatch-system",
    "pipewatch / System (hosts)",
    [
        (
            "Hosts",
            [
                prom(
                    "CPU busy",
                    (
                        (
                            f'100 * (1 - sum by (instance) (rate(node_cpu_seconds_total{{mode=~"idle|iowait", instance=~"$instance"}}{HOST_RATE}))'
                            f" / sum by (instance) (rate(node_cpu_seconds_total{INSTANCE}{HOST_RATE})))"
                        ),
                        "{{instance}}",
                    ),
                    unit="percent",
                ),
                prom(
                    "Load average",
                    (f"node_load1{INSTANCE}", "{{instance}} 1m"),
                    (f"node_load15{INSTANCE}", "{{instance}} 15m"),
                ),
                prom(
                    "Memory used",
                    (
                        f"100 * (1 - node_memory_MemAvailable_bytes{INSTANCE} / node_memory_MemTotal_bytes{INSTANCE})",
                        "{{instance}}",
                    ),
                    unit="percent",
                ),
                prom(
                    "Swap used",
                    (f"node_memory_SwapTotal_bytes{INSTANCE} - node_memory_SwapFree_bytes{INSTANCE}", "{{instance}}"),
                    unit="bytes",
                ),
                prom(
                    "Disk used per mount",
                    (
                        f"100 * (1 - node_filesystem_avail_bytes{INSTANCE} / node_filesystem_size_bytes{INSTANCE})",
                        "{{instance}} {{mountpoint}}",
                    ),
                    unit="percent",
                ),
                prom(
                    "Disk I/O",
                    (f"sum by (instance) (rate(node_disk_read_bytes_total{INSTANCE}{HOST_RATE}))", "{{instance}} read"),
                    (
                        f"sum by (instance) (rate(node_disk_written_bytes_total{INSTANCE}{HOST_RATE}))",
                        "{{instance}} written",
                    ),
                    unit="Bps",
                ),
                prom(
                    "Network (without loopback)",
                    (
                        f'sum by (instance) (rate(node_network_receive_bytes_total{{device!="lo", instance=~"$instance"}}{HOST_RATE}))',
                        "{{instance}} in",
                    ),
                    (
                        f'sum by (instance) (rate(node_network_transmit_bytes_total{{device!="lo", instance=~"$instance"}}{HOST_RATE}))',
                        "{{instance}} out",
                    ),
                    unit="Bps",
                ),
                prom(
                    "Host anomaly events opened",
                    (
                        'sum by (source) (increase(pipewatch_anomaly_events_total{source="host", transition="opened"}[1h]))',
                        "per hour",
                    ),
                ),
            ],
        ),
        (
            "Host agents",
            [
                prom(
                    "Agent CPU (share of one core)",
                    ('rate(process_cpu_seconds_total{job="pipewatch-host-agent"}[5m])', "{{instance}}"),
                    unit="percentunit",
                ),
                prom(
                    "Agent errors and dropped samples",
                    ("sum by (host, stage) (rate(pipewatch_agent_errors_total[5m]))", "{{host}} {{stage}}"),
                    ("sum by (host) (rate(pipewatch_agent_dropped_samples_total[5m]))", "{{host}} dropped"),
                ),
                prom(
                    "Seconds since last sample",
                    ("time() - max by (host) (pipewatch_agent_last_sample_timestamp_seconds)", "{{host}}"),
                    unit="s",
                ),
                prom(
                    "Samples waiting for the database", ("sum by (host) (pipewatch_agent_pending_samples)", "{{host}}")
                ),
            ],
        ),
        (
            "Web and API",
            [
                prom(
                    "Requests by status",
                    ("sum by (status) (rate(pipewatch_http_requests_total[5m]))", "{{status}}"),
                    unit="reqps",
                ),
                prom(
                    "Latency p50 / p99",
                    (
                        "histogram_quantile(0.5, sum by (le) (rate(pipewatch_http_request_duration_seconds_bucket[5m])))",
                        "p50",
                    ),
                    (
                        "histogram_quantile(0.99, sum by (le) (rate(pipewatch_http_request_duration_seconds_bucket[5m])))",
                        "p99",
                    ),
                    unit="s",
                ),
                prom(
                    "p99 latency by view",
                    (
                        "histogram_quantile(0.99, sum by (le, view) (rate(pipewatch_http_request_duration_seconds_bucket[5m])))",
                        "{{view}}",
                    ),
                    unit="s",
                ),
                prom(
                    "Database queries and time",
                    ("sum(rate(pipewatch_db_queries_total[5m]))", "queries/s"),
                    ("sum(rate(pipewatch_db_query_duration_seconds_sum[5m]))", "seconds in the database per second"),
                ),
            ],
        ),
    ],
    [variable("instance", "label_values(node_load1, instance)")],
)

QUEUE = dashboard(
    "pipewatch-queue",
    "pipewatch / Queue (Celery)",
    [
        (
            "Tasks",
            [
                prom(
                    "Tasks finished by state",
                    ("sum by (state) (rate(pipewatch_celery_tasks_total[5m]))", "{{state}}"),
                    unit="ops",
                ),
                prom(
                    "Tasks by name",
                    ('sum by (task) (rate(pipewatch_celery_tasks_total{state="success"}[5m]))', "{{task}}"),
                    unit="ops",
                ),
                prom(
                    "Runtime p95 by task",
                    (
                        "histogram_quantile(0.95, sum by (le, task) (rate(pipewatch_celery_task_runtime_seconds_bucket[5m])))",
                        "{{task}}",
                    ),
                    unit="s",
                ),
                prom(
                    "Retries and failures",
                    ('sum by (task) (rate(pipewatch_celery_tasks_total{state="retry"}[5m]))', "{{task}} retry"),
                    ('sum by (task) (rate(pipewatch_celery_tasks_total{state="failure"}[5m]))', "{{task}} failure"),
                    unit="ops",
                ),
            ],
        ),
        (
            "Queues, workers, beat",
            [
                prom("Queue length", ("max by (queue) (pipewatch_celery_queue_length)", "{{queue}}")),
                prom("Workers up", ('up{job="pipewatch-worker"}', "{{instance}} {{pool}}"), kind="stat"),
                prom(
                    "Seconds since last success",
                    ("time() - max by (task) (pipewatch_celery_task_last_success_timestamp_seconds)", "{{task}}"),
                    unit="s",
                ),
                prom(
                    "Seconds since beat sent its every-minute task",
                    (
                        'time() - max(pipewatch_celery_task_last_published_timestamp_seconds{task="monitoring.detect_host_anomalies"})',
                        "beat",
                    ),
                    unit="s",
                    kind="stat",
                ),
            ],
        ),
    ],
    [],
)

WATER = dashboard(
    "pipewatch-water",
    "pipewatch / Water network",
    [
        (
            "Readings",
            [
                sql(
                    "Flow by sensor",
                    "SELECT r.ts AS time, s.code AS metric, r.flow AS value FROM sensors_reading r "
                    "JOIN sensors_sensor s ON s.id = r.sensor_id WHERE $__timeFilter(r.ts) AND s.code IN ($sensor) ORDER BY 1",
                ),
                sql(
                    "Pressure by sensor",
                    "SELECT r.ts AS time, s.code AS metric, r.pressure AS value FROM sensors_reading r "
                    "JOIN sensors_sensor s ON s.id = r.sensor_id WHERE $__timeFilter(r.ts) AND s.code IN ($sensor) ORDER BY 1",
                ),
                prom(
                    "Frames by result",
                    ("sum by (result) (rate(pipewatch_sensors_frames_total[5m]))", "{{result}}"),
                    unit="ops",
                ),
                prom(
                    "Bridge",
                    ("max(pipewatch_sensors_bridge_connected)", "connected"),
                    ("time() - max(pipewatch_sensors_last_frame_timestamp_seconds)", "seconds since last frame"),
                    ("sum(pipewatch_sensors_spool_depth)", "spooled readings"),
                ),
            ],
        ),
        (
            "Anomalies",
            [
                sql(
                    "Open anomaly events",
                    "SELECT started_at, source, subject, metric, method, severity, status, peak_score FROM anomaly_anomalyevent "
                    "WHERE status <> 'resolved' ORDER BY started_at DESC LIMIT 200",
                    kind="table",
                ),
                prom(
                    "Methods firing",
                    (
                        "sum by (metric, method) (rate(pipewatch_anomaly_method_fired_total[5m]) * 60)",
                        "{{metric}} {{method}}",
                    ),
                ),
                prom(
                    "Detection cycle p95 and lag",
                    (
                        "histogram_quantile(0.95, sum by (le) (rate(pipewatch_anomaly_detect_minute_seconds_bucket[10m])))",
                        "cycle p95 (s)",
                    ),
                    (
                        "time() - max(pipewatch_anomaly_last_evaluated_minute_timestamp)",
                        "seconds since evaluated minute",
                    ),
                    unit="s",
                ),
                prom(
                    "Events opened / resolved",
                    (
                        "sum by (source, transition) (increase(pipewatch_anomaly_events_total[1h]))",
                        "{{source}} {{transition}}",
                    ),
                ),
            ],
        ),
        (
            "Forecasts",
            [
                sql(
                    "Forecast vs readings (hourly flow)",
                    "SELECT f.target AS time, s.code || ' forecast' AS metric, f.value AS value FROM forecasting_forecast f "
                    "JOIN sensors_sensor s ON s.id = f.sensor_id WHERE f.metric = 'flow' AND $__timeFilter(f.target) "
                    "AND s.code IN ($sensor) AND f.issued_at = (SELECT max(issued_at) FROM forecasting_forecast "
                    "WHERE sensor_id = f.sensor_id AND metric = 'flow') "
                    "UNION ALL SELECT date_trunc('hour', r.ts) AS time, s.code || ' measured' AS metric, avg(r.flow) AS value "
                    "FROM sensors_reading r JOIN sensors_sensor s ON s.id = r.sensor_id WHERE $__timeFilter(r.ts) "
                    "AND s.code IN ($sensor) GROUP BY 1, 2 ORDER BY 1",
                ),
                prom(
                    "Forecasting freshness",
                    (
                        'time() - max(pipewatch_celery_task_last_success_timestamp_seconds{task="forecasting.predict_hourly"})',
                        "seconds since predict",
                    ),
                    ("time() - max(pipewatch_forecast_active_model_timestamp_seconds)", "active model age (s)"),
                    unit="s",
                ),
                prom(
                    "Forecast rows written and sensors skipped",
                    (
                        "sum by (metric, source) (increase(pipewatch_forecast_rows_written_total[1h]))",
                        "{{metric}} by {{source}}",
                    ),
                    (
                        "sum by (metric, reason) (increase(pipewatch_forecast_sensors_skipped_total[1h]))",
                        "{{metric}} skipped: {{reason}}",
                    ),
                ),
                prom(
                    "Prediction run p95 and model vs baseline",
                    (
                        "histogram_quantile(0.95, sum by (le) (rate(pipewatch_forecast_predict_seconds_bucket[6h])))",
                        "predict run p95 (s)",
                    ),
                    (
                        "max by (metric) (pipewatch_forecast_model_baseline_mae_ratio)",
                        "{{metric}} MAE / seasonal naive",
                    ),
                ),
                prom(
                    "Training runs",
                    ("sum by (status) (increase(pipewatch_forecast_training_runs_total[1d]))", "{{status}}"),
                    ("sum(increase(pipewatch_forecast_model_load_failures_total[1d]))", "model load failures"),
                ),
            ],
        ),
    ],
    [
        {
            "name": "sensor",
            "type": "query",
            "datasource": DATABASE,
            "query": "SELECT code FROM sensors_sensor WHERE active ORDER BY code",
            "definition": "SELECT code FROM sensors_sensor WHERE active ORDER BY code",
            "refresh": 1,
            "includeAll": True,
            "multi": True,
            "current": {"text": "All", "value": "$__all"},
        }
    ],
)

KIPRIS = dashboard(
    "pipewatch-kipris",
    "pipewatch / KIPRIS",
    [
        (
            "Requests",
            [
                prom(
                    "Requests by status",
                    ("sum by (status) (rate(kipris_requests_total[5m]))", "{{status}}"),
                    unit="reqps",
                ),
                prom(
                    "Requests by IPR mode and organisation type",
                    ("sum by (ipr_mode, org_type) (rate(kipris_requests_total[5m]))", "{{ipr_mode}} {{org_type}}"),
                    unit="reqps",
                ),
                prom(
                    "Failure ratio by IPR mode",
                    (
                        'sum by (ipr_mode) (rate(kipris_requests_total{status="failure"}[5m])) / sum by (ipr_mode) (rate(kipris_requests_total[5m]))',
                        "{{ipr_mode}}",
                    ),
                    unit="percentunit",
                ),
                prom(
                    "Errors by type",
                    ("sum by (error_type, ipr_mode) (rate(kipris_errors_total[5m]))", "{{error_type}} {{ipr_mode}}"),
                    unit="ops",
                ),
                prom(
                    "Response time p50 / p95",
                    ("histogram_quantile(0.5, sum by (le) (rate(kipris_response_seconds_bucket[5m])))", "p50"),
                    ("histogram_quantile(0.95, sum by (le) (rate(kipris_response_seconds_bucket[5m])))", "p95"),
                    unit="s",
                ),
                prom(
                    "Response time p95 by IPR mode",
                    (
                        "histogram_quantile(0.95, sum by (le, ipr_mode) (rate(kipris_response_seconds_bucket[5m])))",
                        "{{ipr_mode}}",
                    ),
                    unit="s",
                ),
            ],
        ),
        (
            "Harvest",
            [
                prom("Token bucket", ("max(kipris_token_bucket_tokens)", "tokens")),
                prom(
                    "In flight", ("sum(kipris_active_requests)", "requests"), ("sum(kipris_active_workers)", "workers")
                ),
                prom("Queue size", ("max(kipris_queue_size)", "checkpoints queued or running")),
                prom("Circuit breaker", ("max(kipris_circuit_open)", "open"), kind="stat"),
                prom(
                    "Worker processing p95",
                    (
                        "histogram_quantile(0.95, sum by (le, ipr_mode) (rate(kipris_worker_process_seconds_bucket[5m])))",
                        "{{ipr_mode}}",
                    ),
                    unit="s",
                ),
            ],
        ),
    ],
    [],
)

DASHBOARDS = {"system": SYSTEM, "queue": QUEUE, "water-network": WATER, "kipris": KIPRIS}


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def main() -> None:
    DASHBOARDS_DIR.mkdir(exist_ok=True)
    for name, board in DASHBOARDS.items():
        (DASHBOARDS_DIR / f"{name}.json").write_text(render(board))


if __name__ == "__main__":
    main()
