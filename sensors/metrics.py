"""Prometheus metrics of the serial bridge (multiprocess mode: they show on the web's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRAMES = Counter("pipewatch_sensors_frames_total", "Frames read from the serial line, by result.", ["result"])
READINGS_STORED = Counter("pipewatch_sensors_readings_stored_total", "Readings newly committed to the database.")
DUPLICATES = Counter(
    "pipewatch_sensors_readings_duplicate_total", "Readings already stored for that sensor and minute (no-ops)."
)
DROPPED_BYTES = Counter(
    "pipewatch_sensors_dropped_bytes_total", "Bytes dropped by the line buffer (oversize garbage, no line end)."
)
SPOOL_DEPTH = Gauge(
    "pipewatch_sensors_spool_depth", "Valid readings spooled to disk, not yet committed.", multiprocess_mode="livesum"
)
RECONNECTS = Counter(
    "pipewatch_sensors_reconnects_total", "Reconnect attempts after a failure, by what failed.", ["target"]
)
CONNECTED = Gauge(
    "pipewatch_sensors_bridge_connected", "1 while the bridge holds its serial port open.", multiprocess_mode="livesum"
)
LAST_FRAME = Gauge(
    "pipewatch_sensors_last_frame_timestamp_seconds",
    "Unix time of the last valid frame read (age = time() - this).",
    multiprocess_mode="max",
)
OUTBOUND = Counter("pipewatch_sensors_outbound_frames_total", "Frames written to the device, by tag.", ["tag"])
COMMIT_LATENCY = Histogram(
    "pipewatch_sensors_commit_latency_seconds",
    "From reading a frame off the port to its reading being committed.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600),
)
