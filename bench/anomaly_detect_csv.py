"""`detect_csv` throughput per method: rows/s through the whole command (read, parse, score, write).

A host-metric-like series (5-minute samples, a daily cycle, noise, a few spikes): 20,000 rows for every
method except IsolationForest (2,000 rows: it refits every 64 points and scores through sklearn one point
at a time). Prints one JSON line.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
ROWS = {"likelihood": 20_000, "zscore": 20_000, "iqr": 20_000, "seasonal": 20_000, "hst": 20_000, "ensemble": 20_000,
        "iforest": 2_000}  # fmt: skip


def write_series(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    values = 40 + 15 * np.sin(np.arange(rows) * 2 * np.pi / 288) + rng.normal(0, 2, rows)
    values[rng.choice(rows, rows // 1000, replace=False)] += 40
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "host", "cpu"])
        for index, value in enumerate(values):
            writer.writerow([(start + timedelta(minutes=5 * index)).isoformat(), "db-1", f"{value:.2f}"])


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    import django

    django.setup()
    from django.core.management import call_command

    figures = {}
    with tempfile.TemporaryDirectory() as directory:
        for method, rows in ROWS.items():
            source = Path(directory) / f"{rows}.csv"
            if not source.exists():
                write_series(source, rows)
            started = time.perf_counter()
            call_command("detect_csv", str(source), "--timestamp-col", "time", "--value-col", "cpu", "--method", method,
                         "--output", str(Path(directory) / "out.csv"), stdout=io.StringIO())  # fmt: skip
            elapsed = time.perf_counter() - started
            figures[method] = {"rows": rows, "seconds": round(elapsed, 2), "rows_per_second": round(rows / elapsed)}
    print(json.dumps({
        "bench": "anomaly_detect_csv",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.node()} {os.cpu_count()} cpu",
        "methods": figures,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
