"""Detection at a SCADA logger's cadence (5 and 15 minutes) through the live minute cycle and the night job:
gaps, stuck runs, night blocks and event closing measured in readings at that cadence, never faked minutes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import cache

import pandas as pd
import pytest

from anomaly.criteria import build_from_frame
from anomaly.evaluation import at_cadence
from anomaly.models import AnomalyEvent, CriteriaSource, CriteriaVersion, NightMinimum
from anomaly.services import detect
from anomaly.services.night import store_night_flow
from sensors.models import Sensor
from sensors.simulation import Fault, simulate

from .conftest import CODES, MINUTE, store
from .test_night_flow import EVENING, run_every_ten_minutes

# Nothing here waits for a commit (frames, notifications): the cheaper transactional test database will do.
pytestmark = pytest.mark.django_db
CADENCES = [5, 15]


@cache
def clean_history() -> pd.DataFrame:
    """Two clean simulated weeks before the test window (simulated once per test process)."""
    return simulate(CODES, MINUTE - timedelta(days=15), 14 * 1440, seed=5).readings


@pytest.fixture
def criteria_at(sensors: dict[str, Sensor]) -> Callable[[int], CriteriaVersion]:
    """Criteria from two clean weeks kept at the given cadence (what an import of a SCADA export gives)."""

    def build(cadence: int) -> CriteriaVersion:
        history = at_cadence(clean_history(), cadence)
        return build_from_frame(history, source=CriteriaSource.FILE, detail=f"every {cadence}")

    return build


@pytest.fixture
def stored_at(sensors: dict[str, Sensor]) -> Callable[..., pd.DataFrame]:
    def make(cadence: int, start: datetime, end: datetime, faults: Sequence[Fault] = ()) -> pd.DataFrame:
        minutes = int((end - start).total_seconds() // 60)
        frame = at_cadence(simulate(CODES, start, minutes, seed=5, faults=faults).readings, cadence)
        store(frame, sensors)
        return frame

    return make


def detect_minutes(first: datetime, last: datetime) -> None:
    minute = first
    while minute <= last:
        detect.detect_minute(minute)
        minute += timedelta(minutes=1)


def detect_at(*minutes: datetime) -> None:
    """The minutes that decide a rule (the live cycle evaluates any minute on its own, in any order it is given)."""
    for minute in minutes:
        detect.detect_minute(minute)


def opened(**key: str) -> list[datetime]:
    return sorted(AnomalyEvent.objects.filter(**key).values_list("started_at", flat=True))


@pytest.mark.parametrize("cadence", CADENCES)
def test_criteria_learn_the_cadence_and_a_night_baseline(
    criteria_at: Callable[[int], CriteriaVersion], cadence: int
) -> None:
    version = criteria_at(cadence)
    rows = version.rows.filter(metric="flow")
    assert set(rows.values_list("cadence_minutes", flat=True)) == {cadence}
    # night blocks use the readings that exist: 1 reading in a 10-minute block counts from 5 minutes on
    assert rows.filter(night_baseline__isnull=True).count() == 0


@pytest.mark.parametrize("cadence", CADENCES)
def test_clean_readings_at_a_coarse_cadence_are_silent(
    criteria_at: Callable[[int], CriteriaVersion], stored_at: Callable[..., pd.DataFrame], cadence: int
) -> None:
    """Between readings nothing is missing yet, and a reading 5 or 15 minutes after a different one is not flat."""
    criteria_at(cadence)
    stored_at(cadence, MINUTE - timedelta(hours=2), MINUTE + timedelta(hours=1))
    detect_minutes(MINUTE, MINUTE + timedelta(minutes=cadence))  # a reading, every minute to the next one
    assert list(AnomalyEvent.objects.values_list("subject", "metric", "method")) == []


@pytest.mark.parametrize("cadence", CADENCES)
def test_stuck_fires_on_the_third_identical_reading(
    criteria_at: Callable[[int], CriteriaVersion], stored_at: Callable[..., pd.DataFrame], cadence: int
) -> None:
    criteria_at(cadence)
    frozen = MINUTE - timedelta(hours=1)  # on the cadence: the first frozen reading
    stuck = Fault("stuck", "002", frozen, MINUTE + timedelta(hours=1))
    stored_at(cadence, MINUTE - timedelta(hours=3), MINUTE + timedelta(hours=1), faults=[stuck])
    third = frozen + timedelta(minutes=2 * cadence)
    detect_at(third - timedelta(minutes=cadence), third)  # the second identical reading, then the third
    # not a reading earlier (flow never repeats a value in the criteria data of 002: 3 readings are enough)
    assert opened(subject="002", metric="flow", method="system") == [third]
    event = AnomalyEvent.objects.get(subject="002", metric="flow", method="system")
    assert event.evidence["state"] == "stuck"
    assert (event.evidence["flat_readings"], event.evidence["cadence_minutes"]) == (3, cadence)
    assert not AnomalyEvent.objects.exclude(subject="002").exists()


@pytest.mark.parametrize("cadence", CADENCES)
def test_a_missing_reading_is_a_gap_once_the_allowance_has_passed(
    criteria_at: Callable[[int], CriteriaVersion], stored_at: Callable[..., pd.DataFrame], cadence: int
) -> None:
    criteria_at(cadence)
    dropout = Fault("dropout", "004", MINUTE + timedelta(minutes=1), MINUTE + timedelta(hours=1))
    stored_at(cadence, MINUTE - timedelta(hours=2), MINUTE + timedelta(hours=1), faults=[dropout])
    due = MINUTE + timedelta(minutes=cadence + 4)  # the reading expected at MINUTE + cadence, 4 minutes late
    detect_at(MINUTE + timedelta(minutes=cadence), due - timedelta(minutes=1), due)
    assert opened(subject="004", metric="flow", method="system") == [due]
    assert AnomalyEvent.objects.get(subject="004", metric="flow").evidence["state"] == "gap"


def test_an_event_stays_open_between_two_firing_readings_15_minutes_apart(
    criteria_at: Callable[[int], CriteriaVersion], stored_at: Callable[..., pd.DataFrame]
) -> None:
    """The clean window is at least two reading intervals: a 10-minute one would close and reopen it."""
    criteria_at(15)
    burst = Fault("burst", "003", MINUTE, MINUTE + timedelta(minutes=16), magnitude=3.0)
    stored_at(15, MINUTE - timedelta(hours=2), MINUTE + timedelta(hours=1), faults=[burst])

    def event() -> AnomalyEvent:
        return AnomalyEvent.objects.get(subject="003", metric="flow", method="value")

    detect_at(MINUTE, MINUTE + timedelta(minutes=10))
    assert event().status == "open"  # 10 quiet minutes between two readings: not an end yet
    detect_at(*(MINUTE + timedelta(minutes=offset) for offset in (15, 44)))
    assert (event().started_at, event().last_fired_at, event().fired_count, event().status) == (
        MINUTE, MINUTE + timedelta(minutes=15), 2, "open"
    )  # fmt: skip
    detect_at(MINUTE + timedelta(minutes=45))
    assert event().status == "resolved"  # 30 minutes (two readings) after its last firing one


def test_a_faster_feed_than_the_criteria_is_judged_at_its_own_cadence(
    criteria_at: Callable[[int], CriteriaVersion], stored_at: Callable[..., pd.DataFrame]
) -> None:
    """Criteria learned from a 15-minute export, then the 1-minute bridge: a gap after 5 minutes, not 19."""
    criteria_at(15)
    dropout = Fault("dropout", "004", MINUTE + timedelta(minutes=1), MINUTE + timedelta(hours=1))
    stored_at(1, MINUTE - timedelta(hours=1), MINUTE + timedelta(hours=1), faults=[dropout])
    detect_at(MINUTE + timedelta(minutes=4), MINUTE + timedelta(minutes=5))
    assert opened(subject="004", metric="flow", method="system") == [MINUTE + timedelta(minutes=5)]
    assert AnomalyEvent.objects.get(subject="004", metric="flow").evidence["cadence_minutes"] == 1


@pytest.mark.parametrize(("cadence", "blocks"), [(5, 42), (15, 28)])
def test_night_minimum_and_leak_streak_at_a_coarse_cadence(
    criteria_at: Callable[[int], CriteriaVersion],
    stored_at: Callable[..., pd.DataFrame],
    sensors: dict[str, Sensor],
    cadence: int,
    blocks: int,
) -> None:
    """Blocks use the readings there are: 2 in each 10-minute block at 5 minutes, 1 in two of three at 15."""
    criteria_at(cadence)
    leak = Fault("leak", "002", EVENING - timedelta(hours=12), EVENING + timedelta(days=3), magnitude=1.2)
    end = EVENING + timedelta(days=1, hours=8)
    stored_at(cadence, EVENING - timedelta(hours=1), end, faults=[leak])
    run_every_ten_minutes(EVENING, end)
    nights = [EVENING.date(), EVENING.date() + timedelta(days=1)]
    summary = {(row.sensor.code, row.night): row for row in NightMinimum.objects.select_related("sensor")}
    assert summary[("001", nights[0])].blocks == blocks
    assert summary[("001", nights[0])].baseline is not None
    assert [summary[("001", night)].streak for night in nights] == [0, 0]
    assert [summary[("002", night)].streak for night in nights] == [1, 2]
    detect.detect_minute(end)  # the day after the second night: the night method reads the streak
    assert AnomalyEvent.objects.get(method="night").subject == "002"


def test_store_night_flow_is_scoped_to_a_replays_sensors(
    criteria_at: Callable[[int], CriteriaVersion], stored_at: Callable[..., pd.DataFrame], sensors: dict[str, Sensor]
) -> None:
    version = criteria_at(15)
    stored_at(15, EVENING - timedelta(hours=1), EVENING + timedelta(hours=8))
    store_night_flow(EVENING + timedelta(hours=7), [sensors["001"].pk], version.pk)
    assert set(NightMinimum.objects.values_list("sensor__code", flat=True)) == {"001"}
