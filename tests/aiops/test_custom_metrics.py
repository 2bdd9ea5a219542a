"""Custom metrics: batches in (all or nothing, readable 400s), series listed and read, the minute scoring
continues each series from its saved detector state and opens/resolves `metric` events; retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from aiops.models import MetricPoint, MetricSeries, MetricState
from aiops.serializers import MetricSeriesSerializer
from aiops.services import metrics, scoring
from anomaly.models import AnomalyEvent

URL = "/api/v1/aiops/metrics/"
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def point(i: int, value: float, name: str = "queue_depth", **labels: str) -> dict[str, Any]:
    return {"name": name, "labels": labels or {"queue": "orders"}, "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
            "value": value}  # fmt: skip


@pytest.mark.django_db
def test_ingest_list_and_read(token_client: APIClient) -> None:
    batch = [point(i, float(i)) for i in range(120)] + [point(i, 1.0, queue="billing") for i in range(60)]
    response = token_client.post(URL, {"points": batch}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"points": 180, "series": 2}
    assert MetricPoint.objects.count() == 180

    listed = token_client.get(URL).json()
    assert sorted(s["labels"]["queue"] for s in listed) == ["billing", "orders"]
    orders = next(s for s in listed if s["labels"]["queue"] == "orders")
    assert datetime.fromisoformat(orders["first_ts"]) == T0
    assert datetime.fromisoformat(orders["last_ts"]) == T0 + timedelta(minutes=119)
    assert orders["scored_until"] is None  # not scored yet: no MetricState row

    window = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=2)).isoformat()}
    raw = token_client.get(f"{URL}queue_depth/", {"labels": "queue=orders", **window}).json()
    assert len(raw["series"]) == 1
    assert len(raw["series"][0]["points"]) == 120
    stepped = token_client.get(f"{URL}queue_depth/", {"labels": "queue=orders", "step": "600", **window}).json()
    values = [value for _, value in stepped["series"][0]["points"]]
    assert values[:2] == [4.5, 14.5]  # 10-minute means of 0..9 and 10..19
    both = token_client.get(f"{URL}queue_depth/", window).json()
    assert len(both["series"]) == 2

    # a later batch continues the series; the same points again are refused whole
    assert token_client.post(URL, [point(120, 5.0)], format="json").status_code == 201
    again = token_client.post(URL, [point(60, 1.0, queue="billing"), point(120, 5.0)], format="json")
    assert again.status_code == 400
    assert "points[1]" in again.json()["message"]
    assert "out of order or duplicated" in again.json()["message"]
    assert MetricPoint.objects.count() == 181  # nothing of the refused batch was stored

    assert APIClient().post(URL, [point(200, 1.0)], format="json").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([point(0, 1.0, name="host.cpu_percent")], "collides with a built-in metric"),
        ([point(0, 1.0, name="sensor.flow")], "collides with a built-in metric"),
        ([point(0, 1.0, name="9lives")], "name '9lives' must match"),
        ([{**point(0, 1.0), "value": "NaN"}], "value 'NaN' is not a number"),
        ([{**point(0, 1.0), "value": None}], "value None is not a number"),
        ([{**point(0, 1.0), "timestamp": "2026-11-20T00:00:00"}], "has no time zone offset"),
        ([{**point(0, 1.0), "timestamp": "soon"}], "is not ISO 8601"),
        ([point(1, 1.0), point(0, 2.0)], "points[6]: timestamp 2026-11-20T00:00:00+00:00 is out of order"),
        ([point(1, 1.0), point(1, 2.0)], "points[6]: timestamp 2026-11-20T00:01:00+00:00 is duplicated"),
        ([point(0, 1.0, **{f"k{i}": "v" for i in range(11)})], "11 label keys is more than the limit of 10"),
        ([point(0, 1.0, **{"bad-key": "v"})], "label key 'bad-key' must match"),
        ([{**point(0, 1.0), "unit": "ms"}], "unknown field(s) unit"),
        ([], "with at least one point"),
        ({"points": "all of them"}, "with at least one point"),
    ],
)
def test_bad_batches_are_readable_400s_and_store_nothing(token_client: APIClient, records: Any, message: str) -> None:
    good = [point(i, 1.0, queue="good") for i in range(5)]
    body = [*good, *records] if isinstance(records, list) and records else records
    response = token_client.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()["message"]
    assert not MetricPoint.objects.exists()
    assert not MetricSeries.objects.exists()


@pytest.mark.django_db
def test_too_many_points_and_too_large(token_client: APIClient) -> None:
    with override_settings(AIOPS_METRICS_MAX_POINTS=10):
        response = token_client.post(URL, [point(i, 1.0) for i in range(11)], format="json")
        assert response.status_code == 400
        assert "11 points is more than the limit of 10" in response.json()["message"]
        huge = token_client.post(URL, [point(i, 1.0) for i in range(50)], format="json")  # > 10 x 200 bytes
        assert huge.status_code == 413
    assert not MetricPoint.objects.exists()


def _ingest(records: list[dict[str, Any]]) -> None:
    metrics.ingest(metrics.parse_batch(records))


@pytest.mark.django_db
def test_scoring_keeps_state_and_opens_and_resolves_metric_events(settings: Any) -> None:
    settings.ANOMALY_CLEAN_MINUTES = 2
    _ingest([point(i, 100.0 + (i % 5)) for i in range(60)])  # a noisy flat hour
    first = scoring.score_metrics(now=T0 + timedelta(minutes=61))
    assert (first.series, first.points, first.fired) == (1, 60, 0)
    state = MetricState.objects.get()
    assert state.scored_until == T0 + timedelta(minutes=59)
    assert state.detector == "zscore"
    listed = MetricSeriesSerializer(MetricSeries.objects.select_related("state").get()).data
    assert datetime.fromisoformat(listed["scored_until"]) == T0 + timedelta(minutes=59)

    # only the new points are read: the run after a spike scores exactly one point, from the saved state
    queries: list[str] = []

    def record(execute: Any, sql: str, *args: Any) -> Any:
        queries.append(sql)
        return execute(sql, *args)

    _ingest([point(60, 400.0)])
    with connection.execute_wrapper(record):
        spike = scoring.score_metrics(now=T0 + timedelta(minutes=62))
    assert (spike.series, spike.points, spike.fired) == (1, 1, 1)
    assert not any("aiops_metricpoint" in sql and "DESC" in sql for sql in queries)  # no warm-up replay
    event = AnomalyEvent.objects.get()
    assert (event.source, event.metric, event.method, event.status) == ("metric", "queue_depth", "stream", "open")
    assert event.subject == "queue_depth{queue=orders}"
    assert event.evidence["value"] == 400.0
    assert event.evidence["labels"] == {"queue": "orders"}

    assert scoring.score_metrics(now=T0 + timedelta(minutes=63)).points == 0  # nothing new: nothing read
    _ingest([point(61, 101.0), point(62, 102.0)])
    scoring.score_metrics(now=T0 + timedelta(minutes=64))
    event.refresh_from_db()
    assert event.status == "resolved"


@pytest.mark.django_db
def test_a_state_that_does_not_load_is_rebuilt_from_stored_points() -> None:
    _ingest([point(i, 100.0 + (i % 5)) for i in range(60)])
    scoring.score_metrics(now=T0 + timedelta(minutes=61))
    MetricState.objects.update(state=b"not a pickle")
    _ingest([point(60, 400.0)])
    result = scoring.score_metrics(now=T0 + timedelta(minutes=62))
    assert result.fired == 1  # the warm-up replay gave the detector its history back


@pytest.mark.django_db
def test_retention_deletes_old_points() -> None:
    _ingest([point(i, 1.0) for i in range(10)])
    _ingest([point(i, 1.0, queue="recent") for i in range(10, 20)])
    # minutes 0..4 are more than 30 days old
    assert metrics.purge_points(now=T0 + timedelta(days=30, minutes=5)) == (5, True)
    assert MetricPoint.objects.count() == 15
    first = dict(MetricSeries.objects.values_list("labels_key", "first_ts"))
    assert first == {"queue=orders": T0 + timedelta(minutes=5), "queue=recent": T0 + timedelta(minutes=10)}
    assert metrics.purge_points(now=T0 + timedelta(days=31)) == (15, True)  # everything: first_ts empties
    assert list(MetricSeries.objects.values_list("first_ts", flat=True)) == [None, None]
