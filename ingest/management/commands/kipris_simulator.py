"""`manage.py kipris_simulator --port P`: the KIPRIS stand-in for `make run`, tests and benchmarks.

`--export-orgs FILE --count N` writes N of its organisations as an import_orgs CSV and exits.
"""

from __future__ import annotations

import csv
import signal
import threading
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ingest.simulator import DEFAULT_KEY, SimulatedKipris, make_server


class Command(BaseCommand):
    help = "Serve a deterministic KIPRIS Plus simulator (both URL families) over HTTP."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8089)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--organizations", type=int, default=2000)
        parser.add_argument("--api-key", default=DEFAULT_KEY, help="the key it accepts (default: the dev key)")
        parser.add_argument("--scale", type=float, default=1.0, help="multiplies how many rights applicants hold")
        parser.add_argument("--latency-ms", default="0-0", help="injected latency range, e.g. 50-200")
        parser.add_argument("--rate-limit", type=int, default=0, help="answer 'Blocked users.' above N req/s")
        parser.add_argument("--export-orgs", type=Path, help="write organisations as CSV and exit")
        parser.add_argument("--count", type=int, default=5, help="how many organisations --export-orgs writes")

    def handle(self, *args: Any, **options: Any) -> None:
        simulator = SimulatedKipris(
            seed=options["seed"],
            organizations=options["organizations"],
            api_key=options["api_key"],
            scale=options["scale"],
        )
        if options["export_orgs"]:
            self._export(simulator, options["export_orgs"], options["count"])
            return
        low, _, high = options["latency_ms"].partition("-")
        simulator.control({"latency_ms": [int(low), int(high or low)], "rate_limit_per_sec": options["rate_limit"]})
        server = make_server(simulator, options["host"], options["port"])
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        thread = threading.Thread(target=server.serve_forever, name="kipris-simulator", daemon=True)
        thread.start()
        port = server.server_address[1]
        self.stdout.write(
            f"KIPRIS simulator on http://{options['host']}:{port} ({len(simulator.organizations)} organisations)"
        )
        self.stdout.flush()
        stop.wait()
        server.shutdown()
        server.server_close()

    def _export(self, simulator: SimulatedKipris, path: Path, count: int) -> None:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["name", "org_type", "business_number", "corporate_number"])
            for org in simulator.organizations[:count]:
                writer.writerow([org.name, org.org_type, org.business_number, org.corporate_number])
        self.stdout.write(f"wrote {min(count, len(simulator.organizations))} organisations to {path}")
