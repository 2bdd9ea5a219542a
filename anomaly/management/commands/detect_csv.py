"""`manage.py detect_csv FILE --timestamp-col C --value-col V [--method M] [--output OUT]`: a backtest.

Reads any CSV, scores the value column with a streaming detector in time order, and writes every input
row unchanged, in input order, plus `score` (higher = more anomalous) and `is_anomaly` (1 on the row
where an operator would be alerted: the first row of each anomalous episode at the detector's own
threshold). Without --output the CSV goes to stdout and the summary line to stderr.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from anomaly.detectors import DEFAULT_METHOD, METHODS, alarms

MAX_LISTED = 10


def _rows_listed(line_numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in line_numbers[:MAX_LISTED])
    more = f" and {len(line_numbers) - MAX_LISTED} more" if len(line_numbers) > MAX_LISTED else ""
    return f"line(s) {shown}{more}"


class Command(BaseCommand):
    help = "Score a CSV column with an anomaly detector (streaming, in time order) and write score/is_anomaly."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--timestamp-col", required=True)
        parser.add_argument("--value-col", required=True)
        parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS)
        parser.add_argument("--output", type=Path, help="output CSV (default: stdout)")
        parser.add_argument(
            "--clean-points",
            type=int,
            default=None,
            help="unflagged rows that end an episode (default ANOMALY_CLEAN_MINUTES)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        header, rows = self._read(options["file"])
        timestamps, values, missing = self._columns(header, rows, options["timestamp_col"], options["value_col"])
        clean = options["clean_points"] if options["clean_points"] is not None else settings.ANOMALY_CLEAN_MINUTES
        # streamed in time order, written in input order
        scores, starts, threshold = alarms(options["method"], list(timestamps.dt.to_pydatetime()), values, clean)
        flagged = np.nan_to_num(scores, nan=0.0) >= threshold
        self._write(options["output"], header, rows, scores, starts)
        elapsed = time.perf_counter() - started
        summary = (
            f"detect_csv: {len(rows)} rows, method {options['method']}, threshold {threshold:g}, "
            f"{int(flagged.sum())} rows above it, {int(starts.sum())} anomalies (episode starts), "
            f"{missing} without a value, {len(rows) / max(elapsed, 1e-9):.0f} rows/s"
        )
        (self.stdout if options["output"] else self.stderr).write(summary)

    def _read(self, path: Path) -> tuple[list[str], list[list[str]]]:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = list(reader)
        if not header:
            raise CommandError(f"{path} is empty: expected a header row and data rows")
        if not rows:
            raise CommandError(f"{path} has a header but no data rows")
        return header, rows

    def _columns(
        self, header: list[str], rows: list[list[str]], timestamp_col: str, value_col: str
    ) -> tuple[pd.Series, np.ndarray, int]:
        for column in (timestamp_col, value_col):
            if column not in header:
                raise CommandError(f"no column {column!r}; the columns are: {', '.join(header)}")
        short = [number for number, row in enumerate(rows, start=2) if len(row) != len(header)]
        if short:
            raise CommandError(f"{_rows_listed(short)} do not have {len(header)} fields like the header")
        ts_index, value_index = header.index(timestamp_col), header.index(value_col)
        raw_ts = pd.Series([row[ts_index] for row in rows])
        timestamps = pd.to_datetime(raw_ts, utc=True, errors="coerce", format="mixed")
        bad_ts = [number for number, bad in enumerate(timestamps.isna(), start=2) if bad]
        if bad_ts:
            raise CommandError(f"unparseable timestamps in column {timestamp_col!r} on {_rows_listed(bad_ts)}")
        raw_values = pd.Series([row[value_index].strip() for row in rows])
        values = pd.to_numeric(raw_values, errors="coerce")
        blank = raw_values.eq("")
        bad_values = [number for number, bad in enumerate(values.isna() & ~blank, start=2) if bad]
        if bad_values:
            raise CommandError(f"non-numeric values in column {value_col!r} on {_rows_listed(bad_values)}")
        return timestamps, values.to_numpy(dtype=float), int(blank.sum())

    def _write(
        self, output: Path | None, header: list[str], rows: list[list[str]], scores: np.ndarray, starts: np.ndarray
    ) -> None:
        def emit(handle: TextIO) -> None:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow([*header, "score", "is_anomaly"])
            for row, score, start in zip(rows, scores, starts, strict=True):
                writer.writerow([*row, "" if math.isnan(score) else f"{score:.6g}", int(start)])

        if output is None:
            emit(sys.stdout)
            return
        with output.open("w", newline="", encoding="utf-8") as handle:
            emit(handle)
