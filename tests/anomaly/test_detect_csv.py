"""detect_csv: rows out unchanged and in order with score/is_anomaly; clear errors for bad input."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from anomaly.detectors import score_series


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header or ["when", "cpu", "note"])
        writer.writerows(rows)
    return path


def series_rows(points: int = 600, spike_at: int = 500) -> list[list[str]]:
    rng = np.random.default_rng(0)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    # bounded noise: with Gaussian noise the default method also (rightly) alarms on the first new record
    # low/high beyond 5 % of the range seen (row 303 of this seed), which is not what this file tests
    values = 40 + rng.uniform(-3, 3, points)
    values[spike_at : spike_at + 3] = 95  # one episode of three points
    return [[(start + timedelta(minutes=i)).isoformat(), f"{value:.3f}", f"n{i}"] for i, value in enumerate(values)]


def run(path: Path, *args: str) -> tuple[list[dict[str, str]], str]:
    output = path.with_suffix(".out.csv")
    stdout = io.StringIO()
    call_command("detect_csv", str(path), "--timestamp-col", "when", "--value-col", "cpu", "--output", str(output),
                 *args, stdout=stdout)  # fmt: skip
    with output.open(newline="") as handle:
        return list(csv.DictReader(handle)), stdout.getvalue()


def test_rows_unchanged_in_order_with_one_alert_per_episode(tmp_path: Path) -> None:
    rows = series_rows()
    out, summary = run(write_csv(tmp_path / "in.csv", rows))
    assert [[r["when"], r["cpu"], r["note"]] for r in out] == rows
    flagged = [i for i, r in enumerate(out) if r["is_anomaly"] == "1"]
    assert flagged == [500]
    assert "600 rows, method likelihood" in summary
    assert "1 anomalies (episode starts)" in summary
    assert len(summary.strip().splitlines()) == 1


@pytest.mark.parametrize("method", ["likelihood", "zscore", "iqr", "seasonal", "hst", "ensemble"])
def test_scores_equal_the_detector_and_unsorted_input_is_scored_in_time_order(tmp_path: Path, method: str) -> None:
    rows = series_rows(300, 250)
    shuffled = rows[150:] + rows[:150]
    out, _ = run(write_csv(tmp_path / "in.csv", shuffled), "--method", method)
    assert [r["note"] for r in out] == [r[2] for r in shuffled]
    by_note = {r["note"]: float(r["score"]) for r in out}
    expected = score_series(method, [datetime.fromisoformat(r[0]) for r in rows], [float(r[1]) for r in rows])
    np.testing.assert_allclose([by_note[r[2]] for r in rows], expected, rtol=1e-5, atol=1e-9)


def test_blank_values_are_missing_not_errors(tmp_path: Path) -> None:
    rows = series_rows(100, 90)
    rows[10][1] = ""
    out, summary = run(write_csv(tmp_path / "in.csv", rows))
    assert out[10]["score"] == ""
    assert out[10]["is_anomaly"] == "0"
    assert "1 without a value" in summary


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("", ("--timestamp-col", "when", "--value-col", "cpu"), "is empty"),
        ("when,cpu\n", ("--timestamp-col", "when", "--value-col", "cpu"), "no data rows"),
        ("when,cpu\n2026-01-01,1\n", ("--timestamp-col", "time", "--value-col", "cpu"),
         "no column 'time'; the columns are: when, cpu"),
        ("when,cpu\n2026-01-01,1\nyesterday,2\n2026-01-03,3\nnope,4\n",
         ("--timestamp-col", "when", "--value-col", "cpu"),
         "unparseable timestamps in column 'when' on line(s) 3, 5"),
        ("when,cpu\n2026-01-01,1\n2026-01-02,abc\n2026-01-03,3\n", ("--timestamp-col", "when", "--value-col", "cpu"),
         "non-numeric values in column 'cpu' on line(s) 3"),
        ("when,cpu\n2026-01-01,1\n2026-01-02\n", ("--timestamp-col", "when", "--value-col", "cpu"),
         "line(s) 3 do not have 2 fields"),
    ],
)  # fmt: skip
def test_bad_input_is_a_clear_error(tmp_path: Path, content: str, args: tuple[str, ...], message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CommandError) as error:
        call_command("detect_csv", str(path), *args, "--output", str(tmp_path / "out.csv"))
    assert message in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        call_command("detect_csv", str(tmp_path / "none.csv"), "--timestamp-col", "a", "--value-col", "b")
