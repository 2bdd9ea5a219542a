"""The minute cycle against the real database and Redis: methods fire where they should, once per minute."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pandas as pd
import pytest
import redis

from anomaly.models import AnomalyEvent, CriteriaVersion, DetectionRun, NightMinimum, SensorMethodSettings
from anomaly.services import detect
from anomaly.services.night import last_complete_night
from forecasting.models import Forecast
from sensors.models import Reading, Sensor
from sensors.outbox import OUTBOX_KEY
from sensors.predictions import minute_flags
from sensors.protocol import format_alert_frame
from sensors.settings import frame_layout
from sensors.simulation import Fault

from .conftest import MINUTE

pytestmark = pytest.mark.django_db(transaction=True)


def flags(code: str) -> tuple[str, str]:
    run = DetectionRun.objects.get(minute=MINUTE)
    assert run.sensors == 4
    events = AnomalyEvent.objects.filter(subject=code)
    flow = "".join(
        "1" if events.filter(metric="flow", method=m).exists() else "0" for m in detect.methods.FLAG_METHODS["flow"]
    )
    pressure = "".join(
        "1" if events.filter(metric="pressure", method=m).exists() else "0"
        for m in detect.methods.FLAG_METHODS["pressure"]
    )
    return flow, pressure


def test_clean_minute_is_silent_and_queues_all_zero_frames(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], clean_redis: redis.Redis
) -> None:
    readings()
    result = detect.detect_minute(MINUTE)
    assert result is not None
    assert result.sensors == 4
    assert sum(result.fired.values()) == 0
    assert result.no_forecast == 8  # no forecasts yet: predict says so and stays silent
    assert result.no_criteria == 0
    assert AnomalyEvent.objects.count() == 0
    frames = clean_redis.lrange(OUTBOX_KEY, 0, -1)
    layout = frame_layout()
    assert frames == [format_alert_frame(code, MINUTE, "0000", "000", layout) for code in ["001", "002", "003", "004"]]


def test_each_fault_fires_its_method(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], sensors: dict[str, Sensor]
) -> None:
    readings(
        faults=[
            Fault("stuck", "002", MINUTE - timedelta(minutes=10), MINUTE + timedelta(minutes=1)),
            Fault("spike", "003", MINUTE, MINUTE + timedelta(minutes=1)),
            Fault("dropout", "004", MINUTE - timedelta(minutes=6), MINUTE + timedelta(minutes=1)),
        ]
    )
    Reading.objects.filter(sensor=sensors["001"], ts=MINUTE).update(status=3)
    result = detect.detect_minute(MINUTE)
    assert result is not None
    assert flags("001") == ("1000", "100")  # device status code: system, both metrics
    assert flags("002") == ("1000", "100")  # stuck for 11 minutes
    assert flags("003") == ("0100", "000")  # flow x4 for one minute
    assert flags("004") == ("1000", "100")  # no reading for 7 minutes: gap
    # The same digits are handed to sensors for the 10-minute server frame's rows.
    assert minute_flags([MINUTE]) == {(code, MINUTE): flags(code) for code in ("001", "002", "003", "004")}
    states = {(e.subject, e.metric): e.evidence["state"] for e in AnomalyEvent.objects.filter(method="system")}
    assert states[("001", "flow")] == "status"
    assert states[("002", "pressure")] == "stuck"
    assert states[("004", "flow")] == "gap"
    spike = AnomalyEvent.objects.get(subject="003", method="value")
    _low, high = spike.evidence["band"]
    assert spike.evidence["value"] > high
    assert spike.evidence["criteria_version"] == criteria.pk


def test_out_of_physical_range_is_a_system_fault(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], sensors: dict[str, Sensor]
) -> None:
    readings()
    Reading.objects.filter(sensor=sensors["001"], ts=MINUTE).update(pressure=25.0)
    detect.detect_minute(MINUTE)
    event = AnomalyEvent.objects.get(subject="001", metric="pressure", method="system")
    assert event.evidence["state"] == "range"


def test_rerunning_a_minute_changes_nothing(criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame]) -> None:
    readings(faults=[Fault("spike", "003", MINUTE, MINUTE + timedelta(minutes=1))])
    assert detect.detect_minute(MINUTE) is not None
    before = list(AnomalyEvent.objects.values("id", "fired_count", "last_fired_at"))
    assert detect.detect_minute(MINUTE) is None
    assert list(AnomalyEvent.objects.values("id", "fired_count", "last_fired_at")) == before
    assert DetectionRun.objects.count() == 1


def test_predict_fires_on_a_wrong_forecast_only_once_forecasts_exist(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], sensors: dict[str, Sensor]
) -> None:
    frame = readings()
    hour = MINUTE.replace(minute=0)
    now = frame[frame["ts"] == MINUTE].set_index("sensor")["flow"]
    actual = now["001"]
    for code, value in (("001", actual * 3), ("002", now["002"])):  # 002's forecast is right
        Forecast.objects.create(
            sensor=sensors[code], metric="flow", issued_at=hour - timedelta(hours=1), target=hour, value=value
        )
    result = detect.detect_minute(MINUTE)
    assert result is not None
    assert result.fired["flow.predict"] == 1
    assert result.no_forecast == 8 - 2
    event = AnomalyEvent.objects.get(method="predict")
    assert (event.subject, event.evidence["forecast"]) == ("001", pytest.approx(actual * 3))


def test_night_method_reads_the_streak_of_the_last_night(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], sensors: dict[str, Sensor]
) -> None:
    readings()
    night = last_complete_night(MINUTE)
    NightMinimum.objects.create(sensor=sensors["002"], night=night, min_flow=60, baseline=40, exceeded=True, streak=2)
    NightMinimum.objects.create(sensor=sensors["003"], night=night, min_flow=60, baseline=40, exceeded=True, streak=1)
    result = detect.detect_minute(MINUTE)
    assert result is not None
    assert result.fired["flow.night"] == 1
    assert AnomalyEvent.objects.get(method="night").evidence["streak"] == 2


def test_disabled_method_and_sensor_settings(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], sensors: dict[str, Sensor]
) -> None:
    readings(faults=[Fault("dropout", "004", MINUTE - timedelta(minutes=6), MINUTE + timedelta(minutes=1))])
    SensorMethodSettings.objects.create(sensor=sensors["004"], system_enabled=False)
    SensorMethodSettings.objects.create(sensor=sensors["001"], value_k=0.01)  # a band too narrow to hold
    result = detect.detect_minute(MINUTE)
    assert result is not None
    assert not AnomalyEvent.objects.filter(subject="004").exists()
    assert AnomalyEvent.objects.filter(subject="001", method="value").exists()


def test_events_close_after_clean_minutes(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], settings: object
) -> None:
    readings(
        end=MINUTE + timedelta(minutes=12),
        minutes=102,
        faults=[Fault("spike", "003", MINUTE, MINUTE + timedelta(minutes=2))],
    )
    for offset in range(13):
        detect.detect_minute(MINUTE + timedelta(minutes=offset))
    event = AnomalyEvent.objects.get(subject="003", method="value", metric="flow")
    assert event.status == "resolved"
    assert (event.started_at, event.last_fired_at, event.fired_count) == (MINUTE, MINUTE + timedelta(minutes=1), 2)


def test_late_minutes_are_caught_up_once_in_order(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame]
) -> None:
    readings()
    now = MINUTE + timedelta(minutes=detect.settings.ANOMALY_DETECT_DELAY_MINUTES, seconds=20)  # target: MINUTE
    detect.detect_minute(MINUTE - timedelta(minutes=5))
    results = detect.run_detection(now)
    minutes = [r.minute for r in results]
    assert minutes == sorted(minutes)
    assert minutes[-1] == MINUTE
    assert MINUTE - timedelta(minutes=5) not in minutes
    assert len(minutes) == 14  # the 15-minute window minus the minute done before
    assert detect.run_detection(now) == []


def test_an_overlapping_run_skips(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], clean_redis: redis.Redis
) -> None:
    readings()
    held = clean_redis.lock(detect.LOCK_KEY, timeout=30)
    assert held.acquire()
    assert detect.run_detection(MINUTE + timedelta(minutes=1)) == []
    assert DetectionRun.objects.count() == 0
    held.release()
    assert len(detect.run_detection(MINUTE + timedelta(minutes=1))) == 15


def test_two_concurrent_cycles_of_one_minute_evaluate_it_once(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame]
) -> None:
    """Without the lock (two workers racing on a redelivered message) the DetectionRun row still decides."""
    from django.db import connection

    readings(faults=[Fault("spike", "003", MINUTE, MINUTE + timedelta(minutes=1))])
    outcomes: list[object] = []
    errors: list[BaseException] = []

    def cycle() -> None:
        try:
            outcomes.append(detect.detect_minute(MINUTE))
        except Exception as exc:  # noqa: BLE001 - a thread's exception is otherwise lost: kept for the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=cycle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(outcomes) == 2
    assert sum(outcome is not None for outcome in outcomes) == 1  # one evaluated it ...
    assert sum(outcome is None for outcome in outcomes) == 1  # ... the other saw the claim and skipped
    assert AnomalyEvent.objects.get(subject="003", method="value").fired_count == 1


@pytest.fixture
def failing_event_insert() -> Iterator[None]:
    """A real integrity error inside the cycle: a trigger refusing event inserts with SQLSTATE 23505."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_event() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'refused by test' USING ERRCODE = 'unique_violation'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_event BEFORE INSERT ON anomaly_anomalyevent "
            "FOR EACH ROW EXECUTE FUNCTION refuse_event()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER refuse_event ON anomaly_anomalyevent")
        cursor.execute("DROP FUNCTION refuse_event()")


def test_an_integrity_error_other_than_the_claim_fails_the_cycle_and_keeps_the_minute_pending(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], failing_event_insert: None
) -> None:
    """Only the DetectionRun claim may be read as "already evaluated"; anything else must fail loudly."""
    from django.db import IntegrityError

    readings(faults=[Fault("spike", "003", MINUTE, MINUTE + timedelta(minutes=1))])
    with pytest.raises(IntegrityError, match="refused by test"):
        detect.detect_minute(MINUTE)
    assert not DetectionRun.objects.filter(minute=MINUTE).exists()  # rolled back: the catch-up evaluates it again
    assert MINUTE in detect.pending_minutes(MINUTE + timedelta(minutes=detect.settings.ANOMALY_DETECT_DELAY_MINUTES))


def test_events_of_a_deactivated_sensor_close(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], sensors: dict[str, Sensor], settings: object
) -> None:
    readings(end=MINUTE + timedelta(minutes=12), minutes=102,
             faults=[Fault("spike", "003", MINUTE, MINUTE + timedelta(minutes=12))])  # fmt: skip
    detect.detect_minute(MINUTE)
    Sensor.objects.filter(code="003").update(active=False)
    for offset in range(1, 12):
        detect.detect_minute(MINUTE + timedelta(minutes=offset))
    event = AnomalyEvent.objects.get(subject="003", method="value")
    assert (event.status, event.fired_count) == ("resolved", 1)
