"""aiops' Prometheus metrics (multiprocess-safe: gauges name their multiprocess mode)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

INCIDENTS = Counter(
    "pipewatch_incidents_total", "Incident transitions, by transition (opened, notified, resolved).", ["transition"]
)
CAPACITY_SECONDS_TO_LIMIT = Gauge(
    "pipewatch_capacity_seconds_to_limit",
    "Seconds until the series' robust trend crosses its limit (+Inf when the trend does not reach it).",
    ["kind", "subject", "series", "window"],
    multiprocess_mode="mostrecent",
)
METRIC_POINTS = Counter(
    "pipewatch_custom_metric_points_total", "Custom-metric points received, by outcome (stored, rejected).", ["outcome"]
)
ALERTS_RECEIVED = Counter(
    "pipewatch_alertmanager_alerts_total", "Alerts received from Alertmanager's webhook, by status.", ["status"]
)
