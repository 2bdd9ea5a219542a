"""`manage.py host_agent`: one per host; samples it every --interval seconds until SIGTERM/SIGINT.

Shaped like healthchecks' `sendalerts`: a loop of small units (one sample), a signal sets a flag and
the loop finishes its unit, flushes what is pending and exits. Samples are taken on a fixed grid
(next = previous + interval), so a slow database write never shifts the sampling times.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

from monitoring import metrics
from monitoring.services.agent import AgentConfig, HostAgent

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Sample this host's CPU, memory, disks and network into the database, Redis and Prometheus."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=None, help="seconds between samples (1-60)")
        parser.add_argument(
            "--host", default=None, help="host name to report (default: PIPEWATCH_HOST_NAME or hostname)"
        )
        parser.add_argument("--batch-size", type=int, default=None, help="samples per database write")
        parser.add_argument("--flush-seconds", type=float, default=None, help="write at least this often")
        parser.add_argument("--metrics-port", type=int, default=None, help="exporter port (0: no exporter)")
        parser.add_argument("--metrics-addr", default=None, help="exporter bind address")
        parser.add_argument("--count", type=int, default=0, help="stop after this many samples (0: run forever)")

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"] if options["interval"] is not None else settings.MONITORING_AGENT_INTERVAL
        if not 1 <= interval <= 60:
            raise CommandError(f"--interval must be between 1 and 60 seconds, not {interval}")
        config = AgentConfig(
            interval=interval,
            batch_size=options["batch_size"] or settings.MONITORING_AGENT_BATCH_SIZE,
            flush_seconds=options["flush_seconds"] or settings.MONITORING_AGENT_FLUSH_SECONDS,
            max_pending=settings.MONITORING_AGENT_MAX_PENDING,
            process_interval=max(interval, settings.MONITORING_PROCESS_INTERVAL),
            host=options["host"] or settings.MONITORING_HOST_NAME or None,
        )
        agent = HostAgent(config)

        port = (
            options["metrics_port"] if options["metrics_port"] is not None else settings.MONITORING_AGENT_METRICS_PORT
        )
        if port:
            addr = options["metrics_addr"] or settings.MONITORING_AGENT_METRICS_ADDR
            try:
                start_http_server(port, addr=addr, registry=self._registry(agent))
                self.stdout.write(f"host_agent: exporter on http://{addr}:{port}/metrics")
            except OSError as exc:  # the port is taken: sampling matters more than the exporter
                logger.warning("host agent: cannot serve metrics on %s:%d (%s); sampling without it", addr, port, exc)

        stopping = threading.Event()

        def stop(signum: int, frame: FrameType | None) -> None:
            logger.info("host agent: signal %d, finishing", signum)
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"host_agent: sampling {agent.host} every {interval:g} s")

        taken = 0
        next_at = time.monotonic() + interval  # the sampler was primed at construction
        while not stopping.wait(max(0.0, next_at - time.monotonic())):
            close_old_connections()  # drops a connection the database closed, so the next write reconnects
            try:
                agent.tick()
            except Exception:  # one bad sample must not stop the agent: logged with its traceback, counted
                logger.exception("host agent: sample failed")
                metrics.AGENT_ERRORS.labels(host=agent.host, stage="sample").inc()
            taken += 1
            if options["count"] and taken >= options["count"]:
                break
            next_at += interval
            if next_at < time.monotonic():  # suspended or starved: skip the missed slots, don't burst
                next_at = time.monotonic() + interval
        written = agent.flush()
        self.stdout.write(
            f"host_agent: stopped after {taken} samples ({written} written at exit, {len(agent.pending)} unsaved)"
        )

    @staticmethod
    def _registry(agent: HostAgent) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(metrics.HostCollector(lambda: agent.latest, agent.info["boot_time"].timestamp()))
        for metric in (
            metrics.AGENT_SAMPLES,
            metrics.AGENT_ROWS_WRITTEN,
            metrics.AGENT_ERRORS,
            metrics.AGENT_DROPPED,
            metrics.AGENT_PENDING,
            metrics.AGENT_LAST_SAMPLE,
            metrics.AGENT_SAMPLE_SECONDS,
        ):
            registry.register(metric)
        ProcessCollector(registry=registry)  # the agent's own CPU and memory: its overhead, measured
        return registry
