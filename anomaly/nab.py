"""Detection quality on labelled series, the way the Numenta Anomaly Benchmark (NAB) scores it.

Implemented from NAB's published scoring rules (standard profile: true-positive weight 1, false-negative
weight 1, false-positive weight 0.11):
1. The first 15 % of each file (at most 750 rows) is probation: alarms there are ignored.
2. Each labelled window [start, end] is worth its earliest alarm: an alarm at relative position p in
   the window (p = -1 at its start, 0 just past its end) earns sigmoid(p) = 2 / (1 + e^(5p)) - 1,
   scaled so an alarm on the first row earns exactly 1. A window without an alarm costs -1.
3. An alarm outside every window costs 0.11, times sigmoid of its distance after the last window that
   ended before it (in units of that window's length): right after a window it costs almost nothing,
   three lengths later the full 0.11. Before the first window it costs the full 0.11.
4. The normalised score is 100 (raw - null) / (perfect - null): 0 for a detector that never alarms,
   100 for one alarm on the first row of every window.
Episode figures beside it are plain counts: an episode is an alarm (an episode start); precision is the
share of alarms inside a window, recall the share of windows with an alarm, delay the time from the
window's start to its first alarm.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .detectors import alarms

TP_WEIGHT, FN_WEIGHT, FP_WEIGHT = 1.0, 1.0, 0.11  # NAB's standard profile
PROBATION_SHARE, PROBATION_MAX_ROWS = 0.15, 750


def _sigmoid(position: float) -> float:
    return -1.0 if position > 3.0 else 2 / (1 + math.exp(5 * position)) - 1


def _utc(text: str) -> pd.Timestamp:
    """A window bound; NAB's are naive, read as UTC like the series' own naive timestamps."""
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@dataclass
class FileScore:
    """One series: NAB raw score and the episode counts behind it."""

    name: str
    windows: int
    raw: float = 0.0
    alarms: int = 0
    alarms_in_windows: int = 0
    windows_found: int = 0
    delays_seconds: list[float] = field(default_factory=list)


def score_alarms(timestamps: pd.Series, flags: np.ndarray, windows: list[tuple[str, str]], name: str) -> FileScore:
    """Score one file's alarms (`flags`: True on alarm rows, in time order) against its labelled windows."""
    times = pd.to_datetime(timestamps, utc=True).reset_index(drop=True)
    count = len(times)
    probation = min(math.floor(PROBATION_SHARE * count), PROBATION_SHARE * 5000)
    # row spans: the first row at or after the start to the last row at or before the end
    spans = [
        (int(times.searchsorted(_utc(start), side="left")), int(times.searchsorted(_utc(end), side="right")) - 1)
        for start, end in windows
    ]
    result = FileScore(name=name, windows=len(spans))
    best = [-FN_WEIGHT] * len(spans)
    best_tp = _sigmoid(-1.0)
    for index in np.flatnonzero(flags):
        if index < probation:
            continue
        result.alarms += 1
        inside = next((k for k, (first, last) in enumerate(spans) if first <= index <= last), None)
        if inside is not None:
            first, last = spans[inside]
            result.alarms_in_windows += 1
            if best[inside] == -FN_WEIGHT:
                result.windows_found += 1
                result.delays_seconds.append((times[index] - times[first]).total_seconds())
            gain = _sigmoid(-(last - index + 1) / (last - first + 1)) * TP_WEIGHT / best_tp
            best[inside] = max(best[inside], gain)
            continue
        before = [(first, last) for first, last in spans if last < index]
        if not before:
            result.raw -= FP_WEIGHT
        else:
            first, last = before[-1]
            result.raw += _sigmoid(abs(last - index) / max(last - first, 1)) * FP_WEIGHT
    result.raw += sum(best)
    return result


@dataclass(frozen=True)
class Report:
    files: list[FileScore]

    @property
    def windows(self) -> int:
        return sum(f.windows for f in self.files)

    @property
    def score(self) -> float:
        """NAB's normalised standard-profile score (null detector 0, perfect 100)."""
        if not self.windows:
            return math.nan
        return 100 * (sum(f.raw for f in self.files) + FN_WEIGHT * self.windows) / (2 * FN_WEIGHT * self.windows)

    def as_dict(self) -> dict[str, Any]:
        alarms_total = sum(f.alarms for f in self.files)
        found = sum(f.windows_found for f in self.files)
        delays = [d for f in self.files for d in f.delays_seconds]
        return {
            "files": len(self.files),
            "windows": self.windows,
            "nab_standard_score": round(self.score, 2),
            "alarms": alarms_total,
            "episode_precision": round(sum(f.alarms_in_windows for f in self.files) / alarms_total, 4)
            if alarms_total
            else None,
            "episode_recall": round(found / self.windows, 4) if self.windows else None,
            "mean_detection_delay_seconds": round(float(np.mean(delays)), 1) if delays else None,
            "per_file": {
                f.name: {"raw": round(f.raw, 4), "windows": f.windows, "found": f.windows_found, "alarms": f.alarms}
                for f in self.files
            },
        }


class DatasetError(ValueError):
    """The folder or the windows file cannot be evaluated; the message says which file and why."""


def load_windows(path: Path) -> dict[str, list[tuple[str, str]]]:
    """NAB's windows JSON: {"relative/file.csv": [[start, end], ...]} with inclusive timestamps."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the windows JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: expected an object mapping file names to lists of [start, end]")
    windows: dict[str, list[tuple[str, str]]] = {}
    for name, spans in raw.items():
        if not isinstance(spans, list) or not all(isinstance(s, list) and len(s) == 2 for s in spans):
            raise DatasetError(f"{path}: windows of {name!r} must be a list of [start, end] pairs")
        windows[name] = [(str(start), str(end)) for start, end in spans]
    return windows


def evaluate_folder(
    folder: Path,
    windows_file: Path,
    *,
    method: str,
    clean_points: int,
    timestamp_col: str = "timestamp",
    value_col: str = "value",
) -> Report:
    """Run `method` over every CSV named in the windows file (paths relative to `folder`) and score it."""
    windows = load_windows(windows_file)
    if not windows:
        raise DatasetError(f"{windows_file} lists no files")
    files = []
    for name in sorted(windows):
        path = folder / name
        if not path.is_file():
            raise DatasetError(f"{path}: listed in {windows_file.name} but not found")
        frame = pd.read_csv(path)
        for column in (timestamp_col, value_col):
            if column not in frame.columns:
                raise DatasetError(f"{path}: no column {column!r}; the columns are: {', '.join(frame.columns)}")
        times = pd.to_datetime(frame[timestamp_col], utc=True, errors="coerce", format="mixed")
        if times.isna().any():
            lines = ", ".join(str(i + 2) for i in np.flatnonzero(times.isna())[:10])
            raise DatasetError(f"{path}: unparseable timestamps on line(s) {lines}")
        order = np.argsort(times.to_numpy(), kind="stable")
        times = times.iloc[order].reset_index(drop=True)
        values = pd.to_numeric(frame[value_col], errors="coerce").to_numpy(dtype=float)[order]
        _, starts, _ = alarms(method, list(times.dt.to_pydatetime()), values, clean_points)
        files.append(score_alarms(times, starts, windows[name], name))
    return Report(files)
