"""`manage.py import_readings FILE --timestamp-col C (--sensor-col C | --sensor CODE) --flow-col C
--pressure-col C [--units flow=l/s,pressure=kPa] [--tz Europe/Berlin] [--rejects OUT] [--strict]`.

Loads a SCADA export into readings (sensors.importing): bulk, idempotent (a second run stores nothing new),
with a progress bar on stderr. Bad rows are listed by line with their reason, written to --rejects
(default FILE.rejected.csv), and the good rows around them are imported; --strict imports nothing when
any row is bad.
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from sensors.importing import Columns, ImportSetupError, Units, import_readings, write_rejects

MAX_LISTED = 10


class Command(BaseCommand):
    help = "Import a CSV of historic readings (SCADA export) for one or many sensors."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--timestamp-col", required=True)
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--sensor-col", help="column holding each row's sensor code")
        which.add_argument("--sensor", help="the one sensor code of the whole file")
        parser.add_argument("--flow-col", required=True)
        parser.add_argument("--pressure-col", required=True)
        parser.add_argument("--units", help="e.g. flow=l/s,pressure=kPa (default m3/h and bar)")
        parser.add_argument("--tz", default=None, help="zone of timestamps without an offset (default TIME_ZONE)")
        parser.add_argument("--rejects", type=Path, help="where bad rows are listed (default FILE.rejected.csv)")
        parser.add_argument("--strict", action="store_true", help="import nothing if any row is bad")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        columns = Columns(
            timestamp=options["timestamp_col"],
            flow=options["flow_col"],
            pressure=options["pressure_col"],
            sensor=options["sensor_col"],
            sensor_code=options["sensor"],
        )
        try:
            units = Units.parse(options["units"])
            with tqdm(unit=" rows", desc=path.name, disable=None) as bar, transaction.atomic():
                result = import_readings(
                    path, columns, units=units, tz=options["tz"] or settings.TIME_ZONE, progress=bar.update
                )
                if options["strict"] and result.rejected:
                    transaction.set_rollback(True)  # --strict: all or nothing
        except ImportSetupError as exc:
            raise CommandError(str(exc)) from exc
        if options["strict"] and result.rejected:
            raise CommandError(
                f"{len(result.rejected)} bad row(s), nothing imported (--strict): {self._listed(result.rejected)}"
            )
        summary = (
            f"{path.name}: {result.rows} rows, {result.stored} stored, {result.already_stored} already stored, "
            f"{len(result.rejected)} rejected"
        )
        if result.rejected:
            rejects = options["rejects"] or path.with_name(path.name + ".rejected.csv")
            write_rejects(result, rejects)
            summary += f" ({self._listed(result.rejected)}; all listed in {rejects})"
        self.stdout.write(summary)

    @staticmethod
    def _listed(rejected: list[tuple[int, str]]) -> str:
        shown = "; ".join(f"line {line}: {reason}" for line, reason in rejected[:MAX_LISTED])
        return shown + (f"; and {len(rejected) - MAX_LISTED} more" if len(rejected) > MAX_LISTED else "")
