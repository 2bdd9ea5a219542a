"""replay_detection over imported history: the live cycle's methods and events, marked replayed, never notified,
idempotent, with criteria from the data before each period."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from django.core.management import CommandError, call_command

from anomaly import criteria, events
from anomaly.evaluation import at_cadence
from anomaly.models import AnomalyEvent, CriteriaSource, CriteriaVersion, DetectionResult, DetectionRun, Source
from anomaly.services.replay import period_start
from core.notify import Alert
from sensors.models import Sensor
from sensors.outbox import OUTBOX_KEY
from sensors.simulation import Fault, simulate

# Only the end-to-end test needs real commits (notifications are sent on commit); the rest run cheaper.
pytestmark = pytest.mark.django_db
SEOUL = ZoneInfo("Asia/Seoul")
START = datetime(2026, 4, 1, tzinfo=SEOUL)  # the first day of a criteria period (Apr-Jun)
CODES = ["201", "202"]
# in the replayed window: 201 freezes at 00:30 for 4 readings; 202's 01:15 reading is missing
STUCK = Fault("stuck", "201", START + timedelta(minutes=30), START + timedelta(minutes=90))
DROPOUT = Fault("dropout", "202", START + timedelta(minutes=61), START + timedelta(minutes=80))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Alert]:
    """Alerts handed to core.notify (whose delivery the core tests cover end to end)."""
    alerts: list[Alert] = []
    monkeypatch.setattr(events, "notify", alerts.append)
    return alerts


def scada_export(path: Path, faults: Sequence[Fault] = (STUCK, DROPOUT)) -> Path:
    """17 days of two sensors at a 15-minute cadence, local time, flow in l/s, as a SCADA system exports it."""
    first = START - timedelta(days=17)
    readings = simulate(CODES, first, 17 * 1440 + 180, seed=7, faults=faults).readings
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Timestamp", "Tag", "Flow (l/s)", "Pressure (bar)"])
        for row in at_cadence(readings, 15).itertuples(index=False):
            local = row.ts.tz_convert(SEOUL)
            writer.writerow([f"{local:%Y-%m-%d %H:%M}", row.sensor, f"{row.flow / 3.6:.4f}", f"{row.pressure:.3f}"])
    return path


def replay(*args: str) -> str:
    out = io.StringIO()
    call_command("replay_detection", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def snapshot() -> list[tuple[Any, ...]]:
    fields = ("subject", "metric", "method", "started_at", "last_fired_at", "ended_at", "fired_count", "peak_score",
              "status", "replayed", "evidence")  # fmt: skip
    return sorted(AnomalyEvent.objects.values_list(*fields))


@pytest.fixture
def history(tmp_path: Path, db: None) -> Path:
    for code in CODES:
        Sensor.objects.create(code=code)
    path = scada_export(tmp_path / "scada.csv")
    out = io.StringIO()
    call_command("import_readings", str(path), "--timestamp-col", "Timestamp", "--sensor-col", "Tag",
                 "--flow-col", "Flow (l/s)", "--pressure-col", "Pressure (bar)", "--units", "flow=l/s",
                 "--tz", "Asia/Seoul", stdout=out, stderr=io.StringIO())  # fmt: skip
    assert "0 rejected" in out.getvalue()
    return path


@pytest.mark.django_db(transaction=True)
def test_a_15_minute_export_imported_and_replayed_gives_replayed_events_once(
    history: Path, sent: list[Alert], clean_redis: redis.Redis
) -> None:
    output = replay("--from", "2026-04-01T01:10", "--to", "2026-04-01T02:00")
    assert "replayed events: flow.system 2, pressure.system 2" in output
    found = {(e.subject, e.metric, e.evidence["state"], e.started_at) for e in AnomalyEvent.objects.all()}
    assert found == {
        # 201's criteria saw its values repeat once (2 readings), so a stuck run needs twice that: the 4th
        # identical reading, 01:15 (3 readings would have been 01:00)
        ("201", "flow", "stuck", START + timedelta(minutes=75)),
        ("201", "pressure", "stuck", START + timedelta(minutes=75)),
        ("202", "flow", "gap", START + timedelta(minutes=79)),  # the 01:15 reading 4 minutes overdue
        ("202", "pressure", "gap", START + timedelta(minutes=79)),
    }
    version = CriteriaVersion.objects.get()
    assert set(version.rows.filter(sensor__code="201").values_list("max_flat_run", flat=True)) == {2}
    assert set(AnomalyEvent.objects.values_list("replayed", "status", "source")) == {(True, "resolved", Source.SENSOR)}
    gap = AnomalyEvent.objects.get(subject="202", metric="flow")
    assert gap.ended_at == START + timedelta(minutes=90)  # the 01:30 reading came; closed 30 minutes later
    # criteria from the data before the period only, and the evidence says which
    assert (version.source, version.data_end, version.sensors) == (CriteriaSource.REPLAY, START, 2)
    assert gap.evidence["cadence_minutes"] == 15
    assert criteria.current_rows(START).empty  # a replay's criteria never serve live detection
    assert criteria.rebuild_reason(START) == "no criteria yet"
    # nothing live: no notification, no alert frame, no detection-run or per-minute rows
    assert sent == []
    assert clean_redis.llen(OUTBOX_KEY) == 0
    assert not DetectionRun.objects.exists()
    assert not DetectionResult.objects.exists()
    # idempotent: a second run replaces the window's replayed events with the same ones
    first = snapshot()
    replay("--from", "2026-04-01T01:10", "--to", "2026-04-01T02:00")
    assert snapshot() == first
    assert CriteriaVersion.objects.count() == 1  # the same data: the same criteria version again


def test_adjacent_windows_give_the_events_of_one_replay(history: Path) -> None:
    """An episode going on at the second window's start is replayed from its beginning, not cut in two."""
    replay("--from", "2026-04-01T01:05", "--to", "2026-04-01T01:45")
    whole = snapshot()
    replay("--from", "2026-04-01T01:05", "--to", "2026-04-01T01:20")
    cut = AnomalyEvent.objects.get(subject="201", metric="flow")
    assert cut.ended_at == START + timedelta(minutes=80)  # still open when that replay ended: closed at its end
    output = replay("--from", "2026-04-01T01:20", "--to", "2026-04-01T01:45")
    assert "replayed from its start, 2026-04-01 01:15" in output
    assert snapshot() == whole


def test_live_events_are_neither_extended_nor_closed_by_a_replay(history: Path) -> None:
    sensor = Sensor.objects.get(code="201")
    live = AnomalyEvent.objects.create(source=Source.SENSOR, sensor=sensor, subject="201", metric="flow",
                                       method="system", started_at=START, last_fired_at=START)  # fmt: skip
    replay("--from", "2026-04-01T01:10", "--to", "2026-04-01T01:20", "--sensor", "201")
    live.refresh_from_db()
    assert (live.status, live.fired_count, live.last_fired_at) == ("open", 1, START)
    assert AnomalyEvent.objects.filter(replayed=True, subject="201", metric="flow").count() == 1


def test_errors_name_what_to_change(history: Path) -> None:
    with pytest.raises(CommandError, match=r"sensor\(s\) 999"):
        replay("--from", "2026-04-01", "--to", "2026-04-01T01:00", "--sensor", "999")
    with pytest.raises(CommandError, match="must be before"):
        replay("--from", "2026-04-01T01:00", "--to", "2026-04-01")
    with pytest.raises(CommandError, match="not an ISO date"):
        replay("--from", "April", "--to", "2026-04-01")
    with pytest.raises(CommandError, match="at least a day ago"):
        replay("--from", "2026-04-01", "--to", "2999-01-01")
    # the first period (Jan-Mar) would need criteria from before January: the readings begin in March
    with pytest.raises(CommandError, match="replay from 2026-04-01 on"):
        replay("--from", "2026-03-31", "--to", "2026-03-31T01:00")
    DetectionRun.objects.create(minute=START + timedelta(minutes=5), started_at=START, finished_at=START)
    with pytest.raises(CommandError, match="live minute job already evaluated"):
        replay("--from", "2026-04-01", "--to", "2026-04-01T01:00")
    assert not AnomalyEvent.objects.exists()


def test_periods_are_calendar_blocks_of_the_rebuild_months() -> None:
    assert period_start(datetime(2026, 5, 17, 13, tzinfo=SEOUL)) == START
    assert period_start(datetime(2026, 3, 31, 23, 59, tzinfo=SEOUL)) == datetime(2026, 1, 1, tzinfo=SEOUL)
