"""`manage.py simulate_sensors`: a field device on a pseudo-terminal or a TCP port, for demos and tests.

Sends one `$R` frame per sensor per simulated minute (sensors/simulation.py: daily and weekly profiles,
noise, injected faults), echoes the `$A`/`$S`/`$E` frames the bridge sends back, writes the faults'
ground truth to a CSV, and with --backfill DAYS loads that much history straight into the database.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import tty
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sensors.protocol import LineBuffer
from sensors.services.backfill import write_history
from sensors.settings import frame_layout
from sensors.simulation import Fault, simulate

CHUNK_MINUTES = 60
# Frames kept while nobody reads the port: ~40 bytes a frame, so about an hour of 20 sensors.
UNSENT_MAX_BYTES = 64 * 1024
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90s`, `10m`, `2h`, `3d` (a bare number is minutes)."""
    text = text.strip()
    unit = text[-1] if text and text[-1] in DURATION_UNITS else "m"
    number = text[:-1] if text and text[-1] in DURATION_UNITS else text
    try:
        return timedelta(seconds=float(number) * DURATION_UNITS[unit])
    except ValueError:
        raise CommandError(f"{text!r} is not a duration like 30m, 2h or 3d") from None


def parse_fault(spec: str, start: datetime) -> Fault:
    """`KIND:SENSOR:OFFSET:DURATION[:MAGNITUDE]`, the offset counted from the simulation start."""
    parts = spec.split(":")
    if len(parts) not in {4, 5}:
        raise CommandError(f"fault {spec!r}: expected KIND:SENSOR:OFFSET:DURATION[:MAGNITUDE]")
    kind, sensor, offset, duration = parts[:4]
    begin = start + parse_duration(offset)
    try:
        magnitude = float(parts[4]) if len(parts) == 5 else 0.0
        return Fault(kind, sensor.zfill(3), begin, begin + parse_duration(duration), magnitude)
    except ValueError as exc:
        raise CommandError(f"fault {spec!r}: {exc}") from None


class Command(BaseCommand):
    help = "Simulate field sensors on a pty (or a TCP port), with injectable faults and a ground-truth CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sensors", type=int, default=20, help="number of sensors (codes 001..N)")
        parser.add_argument("--first-code", type=int, default=1)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--start", default="", help="first simulated minute, ISO 8601 (default: now)")
        parser.add_argument("--speed", type=float, default=1.0, help="simulated minutes per real minute")
        parser.add_argument("--minutes", type=int, default=0, help="stop after this many minutes (0: run on)")
        parser.add_argument("--fault", action="append", default=[], help="KIND:SENSOR:OFFSET:DURATION[:MAGNITUDE]")
        parser.add_argument("--truth", default="", help="write the faults' ground truth to this CSV")
        parser.add_argument("--link", default="", help="keep a symlink to the pty slave at this path")
        parser.add_argument("--tcp-port", type=int, default=-1, help="serve frames on TCP instead of a pty")
        parser.add_argument("--tcp-host", default="127.0.0.1")
        parser.add_argument("--backfill", type=float, default=0, help="first write DAYS of history to the DB")
        parser.add_argument(
            "--delay", type=float, default=0, help="seconds between opening the pty/port and the first frame"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = datetime.fromisoformat(options["start"]).astimezone(UTC) if options["start"] else now
        codes = [f"{options['first_code'] + i:03d}" for i in range(options["sensors"])]
        if options["sensors"] < 1 or options["first_code"] + options["sensors"] > 1000:
            raise CommandError("sensor codes are 3 digits: --first-code + --sensors must stay below 1000")
        if options["speed"] <= 0:
            raise CommandError("--speed must be positive")
        history = timedelta(days=options["backfill"])
        faults = [parse_fault(spec, start - history) for spec in options["fault"]]
        self.codes, self.seed, self.faults = codes, options["seed"], faults
        self.stopping = False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if options["truth"]:
            truth = simulate(codes, start, 0, seed=self.seed, faults=faults).truth
            truth.to_csv(options["truth"], index=False)
            self.stdout.write(f"ground truth: {options['truth']} ({len(truth)} rows)")
        if history:
            # Like a data logger starting up: its log goes in up to and including the minute in progress, so a
            # restarted simulator's first minute on the wire comes after the bridge has had time to reopen the
            # new port (a frame sent before that would be flushed by the bridge's open and lost).
            begin = start - history
            if not options["start"] and options["speed"] == 1:
                start += timedelta(minutes=1)
            self.backfill(begin, start)
            if options["tcp_port"] < 0 and not options["link"]:
                return
        self.serve(start, options)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def backfill(self, begin: datetime, end: datetime) -> None:
        """History in day-sized chunks (bounded memory), idempotent (existing minutes are kept)."""
        total = 0
        cursor = begin
        while cursor < end and not self.stopping:
            minutes = int(min(timedelta(days=1), end - cursor).total_seconds() // 60)
            result = simulate(self.codes, cursor, minutes, seed=self.seed, faults=self.faults)
            total += write_history(result.readings)
            cursor += timedelta(minutes=minutes)
        self.stdout.write(f"back-filled {total} readings from {begin:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")

    # --- the device --------------------------------------------------------------------------------------
    def serve(self, start: datetime, options: dict[str, Any]) -> None:
        self.listener: socket.socket | None = None
        self.clients: list[socket.socket] = []
        self.master: int | None = None
        link = Path(options["link"]) if options["link"] else None
        if options["tcp_port"] >= 0:
            self.listener = socket.create_server((options["tcp_host"], options["tcp_port"]))
            self.listener.setblocking(False)
            host, port = self.listener.getsockname()[:2]
            self.stdout.write(f"tcp: socket://{host}:{port}", ending="\n")
        else:
            # The slave stays open here too, so the master never reads EIO while the bridge reconnects.
            self.master, self.slave = os.openpty()
            tty.setraw(self.slave)
            os.set_blocking(self.master, False)
            slave_path = os.ttyname(self.slave)
            self.stdout.write(f"pty: {slave_path}")
            if link:
                link.parent.mkdir(parents=True, exist_ok=True)
                temporary = link.with_name(link.name + ".tmp")
                temporary.unlink(missing_ok=True)
                temporary.symlink_to(slave_path)
                temporary.replace(link)
                self.stdout.write(f"link: {link} -> {slave_path}")
        self.stdout.flush()
        self.echo = LineBuffer()
        self.sent = self.lost = 0
        self.unsent = b""  # frames the port would not take (no reader): sent first once it does again
        try:
            self.run_device(start, options)
        finally:
            if link and link.is_symlink():
                link.unlink()
            if self.listener:
                self.listener.close()
            for client in self.clients:
                client.close()
            self.stdout.write(f"simulator stopped: {self.sent} frames sent, {self.lost} lost (no reader)")

    def run_device(self, start: datetime, options: dict[str, Any]) -> None:
        layout = frame_layout()
        seconds_per_minute = 60.0 / options["speed"]
        if options["start"] or options["speed"] != 1:
            wall_start = datetime.now(UTC).timestamp() + options["delay"]
        else:
            # Real time: like a device, report each minute as soon as it is over (on the clock's minute).
            wall_start = start.timestamp() + 60 + options["delay"]
        minute = 0
        while not self.stopping and (not options["minutes"] or minute < options["minutes"]):
            count = CHUNK_MINUTES if not options["minutes"] else min(CHUNK_MINUTES, options["minutes"] - minute)
            chunk_start = start + timedelta(minutes=minute)
            frames = simulate(self.codes, chunk_start, count, seed=self.seed, faults=self.faults).frames(layout)
            by_minute: dict[datetime, list[bytes]] = {}
            for at, frame in frames:
                by_minute.setdefault(at, []).append(frame)
            for offset in range(count):
                due = wall_start + (minute + offset) * seconds_per_minute
                while not self.stopping and (wait := due - datetime.now(UTC).timestamp()) > 0:
                    self.pump(min(wait, 0.5))
                if self.stopping:
                    return
                self.send(b"".join(by_minute.get(chunk_start + timedelta(minutes=offset), [])))
            minute += count
        # Finite runs linger briefly so the bridge's replies still reach the log.
        for _ in range(4):
            if not self.stopping:
                self.pump(0.5)

    def send(self, data: bytes) -> None:
        if not data:
            return
        frames = data.count(b"\n")
        if self.master is not None:
            # Store and forward, as data loggers do: while nobody has the port open (the bridge restarting)
            # frames wait here, up to UNSENT_MAX_BYTES (about an hour of 20 sensors); older ones are lost.
            data = self.unsent + data
            frames = data.count(b"\n")
            try:
                written = os.write(self.master, data)
            except OSError as exc:
                if exc.errno not in {errno.EAGAIN, errno.EIO}:
                    raise
                written = 0
            self.unsent = data[written:]
            if len(self.unsent) > UNSENT_MAX_BYTES:
                dropped = self.unsent[: len(self.unsent) - UNSENT_MAX_BYTES]
                self.lost += dropped.count(b"\n")
                self.unsent = self.unsent[len(dropped) :]
            if self.unsent:
                self.sent += data[:written].count(b"\n")
                return
        for client in list(self.clients):
            try:
                client.sendall(data)
            except OSError:
                self.clients.remove(client)
                client.close()
        self.sent += frames

    def pump(self, timeout: float) -> None:
        """Wait up to `timeout` for replies from the bridge (echoed) and new TCP clients."""
        readable: list[Any] = [*self.clients]
        if self.master is not None:
            readable.append(self.master)
        if self.listener is not None:
            readable.append(self.listener)
        ready, _, _ = select.select(readable, [], [], timeout)
        for source in ready:
            if source is self.listener and self.listener is not None:
                client, address = self.listener.accept()
                self.clients.append(client)
                self.stdout.write(f"client connected from {address[0]}:{address[1]}")
                continue
            try:
                data = os.read(source, 65536) if isinstance(source, int) else source.recv(65536)
            except OSError:
                data = b""
            if not data:
                if isinstance(source, socket.socket):
                    self.clients.remove(source)
                    source.close()
                continue
            for line in self.echo.feed(data):
                self.stdout.write(f"device received: {line.decode('ascii', 'replace')}")
            self.stdout.flush()
