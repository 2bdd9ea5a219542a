"""Load a utility's own history (SCADA exports: CSV at 1-, 5- or 15-minute cadence) into readings.

1. The CSV is read in chunks of CHUNK_ROWS rows, so a multi-year export never sits in memory at once.
2. Each row is parsed and checked: timestamp (naive ones are local time in `tz`; seconds are dropped, a
   reading is a minute), sensor code (a registered sensor), flow and pressure numbers converted to the
   project's units (m³/h, bar) and inside the sensor's physical range. A bad row becomes a `Rejected`
   line with its line number and reason; it never stops the rows around it.
3. Good rows go to the database with `write_history` (COPY, then INSERT ... ON CONFLICT DO NOTHING), so
   importing the same file twice stores nothing new: the import is idempotent.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from .models import Sensor
from .services.backfill import write_history

CHUNK_ROWS = 50_000  # ~60k rows/s through write_history's COPY path; a chunk is about a second of work
# multiply a value in the unit by this to get the project's unit (flow m³/h, pressure bar)
FLOW_UNITS = {"m3/h": 1.0, "l/s": 3.6, "l/min": 0.06, "m3/s": 3600.0, "gpm": 0.2271247}
PRESSURE_UNITS = {"bar": 1.0, "kpa": 0.01, "mpa": 10.0, "psi": 0.0689476, "mh2o": 0.0980665}


class ImportSetupError(ValueError):
    """The file or the options cannot be used at all (not a row problem); the message says why."""


@dataclass(frozen=True)
class Columns:
    timestamp: str
    flow: str
    pressure: str
    sensor: str | None = None  # the column holding sensor codes, or
    sensor_code: str | None = None  # one sensor for the whole file


@dataclass(frozen=True)
class Units:
    flow: float = 1.0
    pressure: float = 1.0

    @classmethod
    def parse(cls, text: str | None) -> Units:
        """`flow=l/s,pressure=kPa` (either part optional; the defaults are m3/h and bar)."""
        factors = {"flow": 1.0, "pressure": 1.0}
        for part in filter(None, (text or "").split(",")):
            metric, _, unit = part.partition("=")
            table = {"flow": FLOW_UNITS, "pressure": PRESSURE_UNITS}.get(metric.strip())
            if table is None or unit.strip().lower() not in table:
                raise ImportSetupError(
                    f"bad --units part {part!r}: use flow=<{'|'.join(FLOW_UNITS)}>,"
                    f"pressure=<{'|'.join(PRESSURE_UNITS)}>"
                )
            factors[metric.strip()] = table[unit.strip().lower()]
        return cls(**factors)


@dataclass
class ImportResult:
    rows: int = 0
    stored: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    @property
    def already_stored(self) -> int:
        return self.rows - len(self.rejected) - self.stored


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ImportSetupError(f"unknown time zone {tz!r}") from exc


def _chunks(path: Path, columns: Columns) -> Iterator[pd.DataFrame]:
    if not path.is_file():
        raise ImportSetupError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise ImportSetupError(f"{path} is empty: expected a header row and data rows")
    wanted = [columns.timestamp, columns.flow, columns.pressure] + ([columns.sensor] if columns.sensor else [])
    missing = [name for name in wanted if name not in header]
    if missing:
        raise ImportSetupError(f"no column {', '.join(map(repr, missing))}; the columns are: {', '.join(header)}")
    yield from pd.read_csv(
        path, usecols=wanted, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS, encoding="utf-8-sig"
    )


def _timestamps(raw: pd.Series, zone: ZoneInfo) -> tuple[pd.Series, pd.Series]:
    """(UTC minute or NaT, reason for NaT): naive stamps are local in `zone`; DST gaps/overlaps are errors."""
    parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
    reasons = pd.Series("", index=raw.index)
    reasons[parsed.isna()] = "unparseable timestamp"
    if getattr(parsed.dt, "tz", None) is None:
        local = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        reasons[local.isna() & parsed.notna()] = f"timestamp ambiguous or nonexistent in {zone.key} (DST change)"
        parsed = local
    return parsed.dt.tz_convert("UTC").dt.floor("min"), reasons


def import_readings(
    path: Path,
    columns: Columns,
    *,
    units: Units = Units(),
    tz: str = "UTC",
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import every good row of `path`; see the module docstring. `progress(rows)` is called per chunk."""
    if (columns.sensor is None) == (columns.sensor_code is None):
        raise ImportSetupError("give exactly one of a sensor column or a single sensor code")
    zone = _zone(tz)
    sensors = {s.code: s for s in Sensor.objects.all()}
    if columns.sensor_code is not None and columns.sensor_code not in sensors:
        raise ImportSetupError(f"sensor {columns.sensor_code!r} is not registered")
    result = ImportResult()
    first_line = 2  # the header is line 1
    for chunk in _chunks(path, columns):
        lines = np.arange(first_line, first_line + len(chunk))
        first_line += len(chunk)
        result.rows += len(chunk)
        ts, reasons = _timestamps(chunk[columns.timestamp].str.strip(), zone)
        codes = (
            chunk[columns.sensor].str.strip()
            if columns.sensor
            else pd.Series(columns.sensor_code, index=chunk.index, dtype=object)
        )
        flow = pd.to_numeric(chunk[columns.flow].str.strip(), errors="coerce") * units.flow
        pressure = pd.to_numeric(chunk[columns.pressure].str.strip(), errors="coerce") * units.pressure
        known = codes.isin(sensors.keys())
        low = {m: codes.map({c: getattr(s, f"{m}_min") for c, s in sensors.items()}) for m in ("flow", "pressure")}
        high = {m: codes.map({c: getattr(s, f"{m}_max") for c, s in sensors.items()}) for m in ("flow", "pressure")}
        checks = [
            (~known, "sensor " + codes + " is not registered"),
            (flow.isna(), "flow is not a number"),
            (pressure.isna(), "pressure is not a number"),
            (known & flow.notna() & ((flow < low["flow"]) | (flow > high["flow"])), "flow outside the sensor's range"),
            (
                known & pressure.notna() & ((pressure < low["pressure"]) | (pressure > high["pressure"])),
                "pressure outside the sensor's range",
            ),
        ]
        for bad, reason in checks:
            reasons = reasons.where(reasons.ne("") | ~bad, reason)
        bad_rows = reasons.ne("")
        result.rejected.extend(zip(lines[bad_rows.to_numpy()].tolist(), reasons[bad_rows].tolist(), strict=True))
        good = ~bad_rows
        if good.any():
            frame = pd.DataFrame(
                {"sensor": codes[good], "ts": ts[good], "flow": flow[good], "pressure": pressure[good], "status": 0}
            )
            result.stored += write_history(frame)
        if progress is not None:
            progress(len(chunk))
    return result


def write_rejects(result: ImportResult, path: Path) -> None:
    """The rejected lines with their reasons, so they can be fixed and imported again."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "reason"])
        writer.writerows(result.rejected)
