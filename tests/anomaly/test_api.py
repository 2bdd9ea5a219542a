"""The anomaly API: filters, detail, acknowledge/resolve with auth, criteria current and history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from anomaly.criteria import build_from_frame
from anomaly.models import AnomalyEvent, CriteriaSource, CriteriaVersion
from sensors.models import Sensor
from sensors.simulation import simulate

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


@pytest.fixture
def operator() -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.create_user("operator"))
    return client


@pytest.fixture
def make_event(sensors: dict[str, Sensor]) -> Callable[..., AnomalyEvent]:
    def make(code: str = "001", **fields: object) -> AnomalyEvent:
        defaults: dict[str, object] = {
            "source": "sensor", "sensor": sensors[code], "subject": code, "metric": "flow", "method": "value",
            "started_at": T0, "last_fired_at": T0, "peak_score": 2.0, "evidence": {"value": 1.0},
        }  # fmt: skip
        return AnomalyEvent.objects.create(**(defaults | fields))

    return make


def test_list_filters(make_event: Callable[..., AnomalyEvent]) -> None:
    first = make_event("001")
    second = make_event("002", metric="pressure", method="system", severity="critical")
    make_event("003", status="resolved", ended_at=T0 + timedelta(minutes=5))
    late = make_event("004", started_at=T0 + timedelta(days=2), last_fired_at=T0 + timedelta(days=2))
    client = APIClient()

    def ids(query: str) -> list[int]:
        response = client.get(f"/api/v1/anomalies/?{query}")
        assert response.status_code == 200, response.json()
        return sorted(row["id"] for row in response.json()["results"])

    assert ids("sensor=001") == [first.pk]
    assert ids("metric=pressure") == [second.pk]
    assert ids("method=system&severity=critical") == [second.pk]
    assert len(ids("open=true")) == 3
    assert len(ids("open=false")) == 1
    assert ids(f"start={(T0 + timedelta(days=1)).isoformat().replace('+', '%2B')}") == sorted(
        [first.pk, second.pk, late.pk]
    )
    assert late.pk not in ids(f"end={(T0 + timedelta(hours=1)).isoformat().replace('+', '%2B')}")
    replayed = make_event("001", method="system", replayed=True, status="resolved", ended_at=T0)
    assert ids("replayed=true") == [replayed.pk]
    assert replayed.pk not in ids("replayed=false")
    assert client.get(f"/api/v1/anomalies/{replayed.pk}/").json()["replayed"] is True


def test_bad_filter_is_a_readable_400() -> None:
    response = APIClient().get("/api/v1/anomalies/?severity=apocalyptic&start=yesterday")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert "severity" in body["message"]
    assert "start" in body["message"]


def test_detail_and_transitions_need_auth(make_event: Callable[..., AnomalyEvent], operator: APIClient) -> None:
    event = make_event()
    assert APIClient().get(f"/api/v1/anomalies/{event.pk}/").json()["sensor"] == "001"
    assert APIClient().post(f"/api/v1/anomalies/{event.pk}/acknowledge/").status_code in {401, 403}
    body = operator.post(f"/api/v1/anomalies/{event.pk}/acknowledge/").json()
    assert (body["status"], body["acknowledged_by"]) == ("acknowledged", "operator")
    body = operator.post(f"/api/v1/anomalies/{event.pk}/resolve/").json()
    assert (body["status"], body["resolved_by"]) == ("resolved", "operator")
    again = operator.post(f"/api/v1/anomalies/{event.pk}/resolve/")
    assert again.status_code == 400
    assert again.json()["message"] == "the event is already resolved"
    assert operator.post("/api/v1/anomalies/999999/resolve/").status_code == 404


def test_criteria_current_and_history(sensors: dict[str, Sensor]) -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    old = build_from_frame(simulate(["001", "002"], start, 3 * 1440).readings, source=CriteriaSource.FILE, detail="a")
    new = build_from_frame(simulate(["001"], start, 2 * 1440).readings, source=CriteriaSource.FILE, detail="b")
    client = APIClient()

    def versions(query: str) -> dict[str, set[int]]:
        rows = client.get(f"/api/v1/criteria/?limit=1000&{query}").json()["results"]
        found: dict[str, set[int]] = {}
        for row in rows:
            found.setdefault(row["sensor"], set()).add(row["version"])
        return found

    replay = build_from_frame(simulate(["002"], start, 2 * 1440).readings, source=CriteriaSource.REPLAY, detail="r")
    assert versions("metric=flow") == {"001": {new.pk}, "002": {old.pk}}  # newest live version covering each sensor
    assert versions(f"sensor=002&version={replay.pk}") == {"002": {replay.pk}}  # a replay's: asked for by number
    assert versions("sensor=001&history=true") == {"001": {old.pk, new.pk}}
    assert versions(f"sensor=001&version={old.pk}") == {"001": {old.pk}}
    rows = client.get("/api/v1/criteria/?sensor=002&metric=pressure&hour=3&weekend=false").json()["results"]
    assert len(rows) == 1
    assert rows[0]["lower"] < rows[0]["median"] < rows[0]["upper"]
    listed = client.get("/api/v1/criteria-versions/").json()["results"]
    assert [v["id"] for v in listed] == [replay.pk, new.pk, old.pk]
    assert CriteriaVersion.objects.get(pk=new.pk).sensors == 1
