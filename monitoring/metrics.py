"""monitoring's Prometheus metrics.

Two kinds:
- multiprocess metrics (the agent's own health, web requests and database time, Celery task freshness),
  written to PROMETHEUS_MULTIPROC_DIR and served by the web's /metrics;
- node_exporter-style host metrics, built at scrape time from the agent's latest sample by
  `HostCollector` and served only from the agent's own exporter port (they describe one host, and each
  host runs its own agent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from celery import signals
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .services.sampling import Sample

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# --- the host agent
AGENT_SAMPLES = Counter("pipewatch_agent_samples_total", "Host samples taken by the agent.", ["host"])
AGENT_ROWS_WRITTEN = Counter("pipewatch_agent_rows_written_total", "Host sample rows stored in the database.", ["host"])
AGENT_ERRORS = Counter(
    "pipewatch_agent_errors_total", "Agent failures by stage (sample, database, redis).", ["host", "stage"]
)
AGENT_DROPPED = Counter(
    "pipewatch_agent_dropped_samples_total", "Samples dropped because the database stayed down too long.", ["host"]
)
AGENT_PENDING = Gauge(
    "pipewatch_agent_pending_samples",
    "Samples waiting for the next database write.",
    ["host"],
    multiprocess_mode="livesum",
)
AGENT_LAST_SAMPLE = Gauge(
    "pipewatch_agent_last_sample_timestamp_seconds",
    "Unix time of the agent's latest sample.",
    ["host"],
    multiprocess_mode="max",
)
AGENT_SAMPLE_SECONDS = Histogram(
    "pipewatch_agent_sample_duration_seconds",
    "Time to take one sample (psutil reads and rates).",
    ["host"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)

# --- the web process
HTTP_REQUESTS = Counter(
    "pipewatch_http_requests_total", "HTTP requests answered, by view, method and status.", ["view", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "pipewatch_http_request_duration_seconds",
    "Time from request to response, by view and method.",
    ["view", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge(
    "pipewatch_http_requests_in_progress", "Requests being answered right now.", multiprocess_mode="livesum"
)
HTTP_EXCEPTIONS = Counter("pipewatch_http_exceptions_total", "Unhandled exceptions in views, by view.", ["view"])
DB_QUERIES = Counter("pipewatch_db_queries_total", "Database queries run by the web process, by alias.", ["alias"])
DB_ERRORS = Counter("pipewatch_db_errors_total", "Database queries that raised, by alias.", ["alias"])
DB_QUERY_SECONDS = Histogram(
    "pipewatch_db_query_duration_seconds",
    "Time of one database query in the web process, by alias.",
    ["alias"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)

# --- Celery task freshness (any process that runs tasks): the base of the "no success in N minutes" alerts.
TASK_LAST_SUCCESS = Gauge(
    "pipewatch_celery_task_last_success_timestamp_seconds",
    "Unix time of the latest successful run, by task name.",
    ["task"],
    multiprocess_mode="max",
)
TASK_LAST_PUBLISHED = Gauge(
    "pipewatch_celery_task_last_published_timestamp_seconds",
    "Unix time a task was last sent to the broker, by task name (beat's schedule shows as its own sends).",
    ["task"],
    multiprocess_mode="max",
)


class HostCollector(Collector):
    """node_exporter-style families from the latest sample (base units, `_total` counters)."""

    def __init__(self, latest: Callable[[], Sample | None], boot_time: float) -> None:
        self._latest = latest
        self._boot_time = boot_time

    def collect(self) -> Iterator[Metric]:
        sample = self._latest()
        if sample is None:
            return
        values = sample.values

        cpu = CounterMetricFamily("node_cpu_seconds", "Seconds the CPUs spent in each mode.", labels=["cpu", "mode"])
        for index, times in enumerate(sample.cpu_times):
            for mode, seconds in times.items():
                if not mode.startswith("guest"):  # guest time is already in user/nice (node_exporter's rule)
                    cpu.add_metric([str(index), mode], seconds)
        yield cpu
        busy = GaugeMetricFamily("pipewatch_host_cpu_busy_ratio", "Busy share of all CPUs over the last interval.")
        busy.add_metric([], values["cpu_percent"] / 100)
        yield busy
        for period in ("1", "5", "15"):
            load = GaugeMetricFamily(f"node_load{period}", f"{period}-minute load average.")
            load.add_metric([], values[f"load_{period}"])
            yield load

        for name, help_text, value in (
            ("node_memory_MemTotal_bytes", "Total memory.", values["memory_total_bytes"]),
            ("node_memory_MemAvailable_bytes", "Memory available to new processes.", values["memory_available_bytes"]),
            ("node_memory_SwapTotal_bytes", "Total swap.", values["swap_total_bytes"]),
            ("node_memory_SwapFree_bytes", "Unused swap.", values["swap_total_bytes"] - values["swap_used_bytes"]),
            ("node_boot_time_seconds", "Unix time the host booted.", self._boot_time),
        ):
            gauge = GaugeMetricFamily(name, help_text)
            gauge.add_metric([], value)
            yield gauge

        labels = ["device", "mountpoint", "fstype"]
        size = GaugeMetricFamily("node_filesystem_size_bytes", "File system size.", labels=labels)
        avail = GaugeMetricFamily("node_filesystem_avail_bytes", "File system space available to users.", labels=labels)
        for disk in values["disks"]:
            key = [disk["device"], disk["mountpoint"], disk["fstype"]]
            size.add_metric(key, disk["total_bytes"])
            avail.add_metric(key, disk["free_bytes"])
        yield size
        yield avail

        disk_families = {
            "read_bytes": CounterMetricFamily("node_disk_read_bytes", "Bytes read.", labels=["device"]),
            "write_bytes": CounterMetricFamily("node_disk_written_bytes", "Bytes written.", labels=["device"]),
            "reads": CounterMetricFamily("node_disk_reads_completed", "Reads completed.", labels=["device"]),
            "writes": CounterMetricFamily("node_disk_writes_completed", "Writes completed.", labels=["device"]),
        }
        for device, counters in sample.disk_io.items():
            for field, family in disk_families.items():
                family.add_metric([device], counters[field])
        yield from disk_families.values()

        net_families = {
            "bytes_recv": CounterMetricFamily("node_network_receive_bytes", "Bytes received.", labels=["device"]),
            "bytes_sent": CounterMetricFamily("node_network_transmit_bytes", "Bytes sent.", labels=["device"]),
            "packets_recv": CounterMetricFamily("node_network_receive_packets", "Packets received.", labels=["device"]),
            "packets_sent": CounterMetricFamily("node_network_transmit_packets", "Packets sent.", labels=["device"]),
            "errin": CounterMetricFamily("node_network_receive_errs", "Receive errors.", labels=["device"]),
            "errout": CounterMetricFamily("node_network_transmit_errs", "Transmit errors.", labels=["device"]),
            "dropin": CounterMetricFamily("node_network_receive_drop", "Received packets dropped.", labels=["device"]),
            "dropout": CounterMetricFamily("node_network_transmit_drop", "Packets to send dropped.", labels=["device"]),
        }
        for device, counters in values["interfaces"].items():
            for field, family in net_families.items():
                family.add_metric([device], counters[field])
        yield from net_families.values()


@signals.task_success.connect
def _task_succeeded(sender: Any = None, **_: Any) -> None:
    """Record when each task last succeeded: the base of the "no success in N minutes" alert rules."""
    if name := getattr(sender, "name", None):
        TASK_LAST_SUCCESS.labels(task=name).set(time.time())


@signals.before_task_publish.connect
def _task_published(sender: str | None = None, **_: Any) -> None:
    """Every-minute tasks are only sent by beat: their freshness is beat's liveness, seen from Prometheus."""
    if sender:
        TASK_LAST_PUBLISHED.labels(task=sender).set(time.time())
