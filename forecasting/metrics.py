"""forecasting's Prometheus metrics (multiprocess mode: workers write, the web's /metrics shows them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FORECASTS_WRITTEN = Counter(
    "pipewatch_forecast_rows_written_total",
    "Hourly forecast values stored, by metric and by what produced them (model or baseline).",
    ["metric", "source"],
)
SENSORS_SKIPPED = Counter(
    "pipewatch_forecast_sensors_skipped_total",
    "Sensors left without a forecast in an hourly run, by metric and reason.",
    ["metric", "reason"],
)
MODEL_LOAD_FAILURES = Counter(
    "pipewatch_forecast_model_load_failures_total",
    "Active model versions that could not serve (artifact unreadable, non-finite output): the baseline served.",
    ["metric"],
)
PREDICT_SECONDS = Histogram(
    "pipewatch_forecast_predict_seconds",
    "Wall time of one hourly prediction run (all sensors, both metrics).",
    buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 120, 300),
)
TRAINING_SECONDS = Histogram(
    "pipewatch_forecast_training_seconds",
    "Wall time to train one metric (read + resample + train + validate).",
    ["metric"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 3600),
)
TRAINING_RUNS = Counter(
    "pipewatch_forecast_training_runs_total", "Training runs finished, by final status.", ["status"]
)
RUNS_REQUEUED = Counter(
    "pipewatch_forecast_training_runs_requeued_total", "Training runs re-queued by the watchdog after a worker died."
)
MODEL_RATIO = Gauge(
    "pipewatch_forecast_model_baseline_mae_ratio",
    "Validation MAE of the newest trained version divided by seasonal naive's (below 1 = better).",
    ["metric"],
    multiprocess_mode="mostrecent",
)
ACTIVE_MODEL_TIMESTAMP = Gauge(
    "pipewatch_forecast_active_model_timestamp_seconds",
    "When the model version serving each metric was trained (Unix time), set by every hourly run it serves.",
    ["metric"],
    multiprocess_mode="mostrecent",
)
