"""Events: open on the first firing minute, extend while firing, close after M clean minutes, notify once each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from anomaly import events
from anomaly.models import AnomalyEvent, EventStatus
from core.notify import Alert

T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
KEY: dict[str, Any] = {"source": "sensor", "subject": "001", "metric": "flow", "method": "value"}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Alert]:
    """Alerts handed to core.notify (whose delivery the core tests cover end to end)."""
    alerts: list[Alert] = []
    monkeypatch.setattr(events, "notify", alerts.append)
    return alerts


def observe(minute: int, fired: bool, score: float = 1.0, **extra: Any) -> AnomalyEvent | None:
    return events.observe(
        **KEY, at=T0 + timedelta(minutes=minute), fired=fired, score=score, evidence={"minute": minute}, **extra
    )


@pytest.mark.django_db(transaction=True)
def test_open_extend_close(sent: list[Alert], settings: Any) -> None:
    settings.ANOMALY_CLEAN_MINUTES = 3
    assert observe(0, fired=False) is None
    event = observe(1, fired=True, score=2.0)
    assert event is not None
    assert event.status == EventStatus.OPEN
    observe(2, fired=True, score=5.0)
    observe(3, fired=False)
    observe(4, fired=True, score=3.0)  # a short dip does not split the episode
    for minute in (5, 6):
        observe(minute, fired=False)
    event.refresh_from_db()
    assert event.status == EventStatus.OPEN
    observe(7, fired=False)  # third clean minute after the last firing one
    event.refresh_from_db()
    assert event.status == EventStatus.RESOLVED
    assert (event.started_at, event.last_fired_at) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=4))
    assert event.ended_at == T0 + timedelta(minutes=5)
    assert event.fired_count == 3
    assert event.peak_score == 5.0
    assert event.evidence == {"minute": 2}
    assert [(alert.status, alert.key) for alert in sent] == [
        ("firing", f"anomaly:{event.pk}"),
        ("resolved", f"anomaly:{event.pk}"),
    ]
    assert AnomalyEvent.objects.count() == 1
    observe(8, fired=True)
    assert AnomalyEvent.objects.count() == 2  # a new episode is a new event


@pytest.mark.django_db(transaction=True)
def test_reobserving_a_minute_changes_nothing(sent: list[Alert]) -> None:
    event = observe(0, fired=True)
    observe(1, fired=True)
    observe(1, fired=True)
    observe(0, fired=True)
    assert event is not None
    event.refresh_from_db()
    assert event.fired_count == 2
    assert len(sent) == 1


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_cycle_never_notifies(sent: list[Alert]) -> None:
    from django.db import transaction

    def failing_cycle() -> None:
        with transaction.atomic():
            observe(0, fired=True)
            raise RuntimeError("cycle failed")

    with pytest.raises(RuntimeError):
        failing_cycle()
    assert sent == []
    assert AnomalyEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_acknowledge_then_resolve_by_hand(sent: list[Alert]) -> None:
    event = observe(0, fired=True)
    assert event is not None
    events.acknowledge(event.pk, None)
    observe(1, fired=True)  # an acknowledged event still extends
    event.refresh_from_db()
    assert (event.status, event.fired_count) == (EventStatus.ACKNOWLEDGED, 2)
    events.resolve(event.pk, None)
    event.refresh_from_db()
    assert event.status == EventStatus.RESOLVED
    with pytest.raises(ValueError, match="already resolved"):
        events.resolve(event.pk, None)
    assert [alert.status for alert in sent] == ["firing", "resolved"]


@pytest.mark.django_db(transaction=True)
def test_host_events_share_the_model_and_clean_minutes_can_be_overridden(sent: list[Alert]) -> None:
    key: dict[str, Any] = {"source": "host", "subject": "db-1", "metric": "cpu_percent", "method": "ensemble"}
    event = events.observe(**key, at=T0, fired=True, score=2.0, evidence={}, severity="critical", clean_minutes=1)
    events.observe(**key, at=T0 + timedelta(minutes=1), fired=False, score=0.0, evidence={}, clean_minutes=1)
    assert event is not None
    event.refresh_from_db()
    assert (event.sensor_id, event.severity, event.status) == (None, "critical", EventStatus.RESOLVED)
    assert sent[0].severity == "critical"


@pytest.mark.django_db
def test_clean_minutes_without_an_event_cost_one_query() -> None:
    with CaptureQueriesContext(connection) as queries:
        observe(0, fired=False)
    assert len([q for q in queries.captured_queries if q["sql"].startswith("SELECT")]) == 1


@pytest.mark.django_db(transaction=True)
def test_transitions_are_counted_after_commit(sent: list[Alert]) -> None:
    from anomaly.metrics import EVENTS

    opened = EVENTS.labels(source="sensor", transition="opened")
    resolved = EVENTS.labels(source="sensor", transition="resolved")
    before = (opened._value.get(), resolved._value.get())
    event = observe(0, fired=True)
    assert event is not None
    events.resolve(event.pk, None)
    assert (opened._value.get(), resolved._value.get()) == (before[0] + 1, before[1] + 1)


@pytest.mark.django_db(transaction=True)
def test_observe_many_follows_the_same_rules_in_a_constant_number_of_queries(sent: list[Alert], settings: Any) -> None:
    settings.ANOMALY_CLEAN_MINUTES = 2

    def minute(offset: int, fired: set[str]) -> int:
        observations = [
            events.Observation(subject=f"{n:03d}", metric="flow", method="value", fired=f"{n:03d}" in fired,
                               score=float(offset) if n == 0 else 1.0, evidence={"minute": offset})
            for n in range(40)
        ]  # fmt: skip
        return events.observe_many(source="sensor", at=T0 + timedelta(minutes=offset), observations=observations)

    everyone = {f"{n:03d}" for n in range(40)}
    assert minute(0, everyone) == 40  # 40 opened
    with CaptureQueriesContext(connection) as queries:
        assert minute(1, everyone) == 40  # 40 extended
    # transaction, locking read, one UPDATE for all, one peak save ("000") — not one per event
    assert len(queries.captured_queries) <= 7
    assert minute(1, everyone) == 0  # the same minute again: nothing changes
    assert minute(2, {"000"}) == 1
    assert minute(3, {"000"}) == 40  # "000" extended; 39 closed after 2 clean minutes (last fired at 1)
    assert minute(4, set()) == 0
    assert minute(5, set()) == 1  # "000" closes too
    extended = AnomalyEvent.objects.get(subject="000")
    assert (extended.fired_count, extended.peak_score, extended.evidence) == (4, 3.0, {"minute": 3})
    assert AnomalyEvent.objects.filter(status=EventStatus.RESOLVED).count() == 40
    assert [alert.status for alert in sent].count("resolved") == 40
