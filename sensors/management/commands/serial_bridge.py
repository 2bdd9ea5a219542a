"""`manage.py serial_bridge --url URL`: own one serial port (see sensors/bridge.py for the loop)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.metrics import start_exporter
from sensors.bridge import BATCH_SIZE, FLUSH_INTERVAL_SECONDS, Bridge
from sensors.checks import url_problem
from sensors.settings import frame_layout


class Command(BaseCommand):
    help = "Read sensor frames from a serial port (device, socket://, rfc2217://, loop://) into the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="", help="pyserial URL (default: the SERIAL_URL setting)")
        parser.add_argument("--baud", type=int, default=0, help="baud rate (default: SENSORS_SERIAL_BAUD)")
        parser.add_argument("--name", default="", help="bridge name for the spool file and heartbeat")
        parser.add_argument("--spool-dir", default="", help="spool directory (default: SENSORS_SPOOL_DIR)")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument("--flush-interval", type=float, default=FLUSH_INTERVAL_SECONDS)
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            help="serve Prometheus metrics on this port (default METRICS_PORT; 0: only via the web's /metrics)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"] or settings.SENSORS_SERIAL_URL
        if not url:
            raise CommandError("no serial URL: pass --url or set SERIAL_URL")
        if problem := url_problem(url):
            raise CommandError(f"{url}: {problem}")
        bridge = Bridge(
            url,
            baudrate=options["baud"] or settings.SENSORS_SERIAL_BAUD,
            layout=frame_layout(),
            spool_dir=Path(options["spool_dir"] or settings.SENSORS_SPOOL_DIR),
            name=options["name"] or None,
            batch_size=options["batch_size"],
            flush_interval=options["flush_interval"],
            reconnect_cap=settings.SENSORS_RECONNECT_MAX_SECONDS,
        )

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stdout.write(f"{signal.Signals(signum).name}: finishing the current unit and stopping")
            bridge.stop()

        metrics_port = options["metrics_port"] if options["metrics_port"] is not None else settings.METRICS_PORT
        if metrics_port:
            # In its own container the bridge's samples are not in the web's multiprocess directory.
            start_exporter(metrics_port)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.stdout.write(f"serial bridge {bridge.name} on {url} (spool {bridge.journal.path})")
        bridge.run()
        self.stdout.write(
            f"stopped: {bridge.stats.frames_ok} frames ok, {bridge.stats.frames_bad} bad, "
            f"{bridge.stats.stored} stored, {bridge.journal.depth} spooled"
        )
