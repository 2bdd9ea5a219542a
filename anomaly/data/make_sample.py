"""Regenerate the sample initial data file: `python -m anomaly.data.make_sample [--sensors N] [--days D]`.

Clean simulated minute readings (sensors 001..N, no faults, seed 0) from the sensors app's simulator, so a
fresh install has criteria before it has readings of its own. Replace it with real data of the site's
sensors (same columns) and point ANOMALY_CRITERIA_FILE at it.
"""

from __future__ import annotations

import argparse
import gzip
from datetime import UTC, datetime
from pathlib import Path

from sensors.simulation import simulate

DEFAULT_PATH = Path(__file__).resolve().parent / "initial_readings.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", type=int, default=10)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--start", default="2026-01-05T00:00:00+00:00", help="ISO 8601 with offset")
    parser.add_argument("--output", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args()
    codes = [f"{number:03d}" for number in range(1, args.sensors + 1)]
    result = simulate(codes, datetime.fromisoformat(args.start).astimezone(UTC), args.days * 1440, seed=0)
    frame = result.readings.assign(ts=result.readings["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    with gzip.open(args.output, "wt", compresslevel=9) as handle:
        frame.to_csv(handle, index=False, columns=["sensor", "ts", "flow", "pressure", "status"])


if __name__ == "__main__":
    main()
