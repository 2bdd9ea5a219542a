"""What each console page shows for given rows, who may see and do what, and `/` content negotiation."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from anomaly.models import AnomalyEvent, EventStatus
from console.models import EventNote
from console.services import charts, events, forecasts, harvest, hosts, overview, sensors
from forecasting.models import TrainingRun
from ingest.models import HarvestRun, RunStatus
from sensors.models import Sensor
from tests.console.conftest import Plant, user_in

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PAGES = [
    "/",
    "/sensors/",
    "/sensors/001/",
    "/sensors/001/?range=30d",
    "/events/",
    "/forecasts/",
    "/harvest/",
    "/hosts/",
]


def bucket_count(times: pd.DatetimeIndex, start: object, end: object, seconds: int) -> int:
    inside = times[(times >= start) & (times < end)]
    return len({int(moment.timestamp()) // seconds for moment in inside})


# --- access -------------------------------------------------------------------------------------------


def test_api_clients_keep_the_json_index(db: None) -> None:
    for accept in ({}, {"Accept": "application/json"}, {"Accept": "*/*"}):
        response = Client().get("/", headers=accept)
        assert response.status_code == 200
        assert response.json()["name"] == "pipewatch"
        assert "Accept" in response["Vary"]


def test_a_browser_gets_the_login_then_the_overview(plant: Plant, operator_client: Client) -> None:
    response = Client().get("/", headers=HTML)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")
    page = operator_client.get("/", headers=HTML)
    assert page.status_code == 200
    assert b"System health" in page.content
    assert b"Times in Asia/Seoul" in page.content


@pytest.mark.parametrize("path", PAGES)
def test_a_viewer_sees_every_page(plant: Plant, viewer_client: Client, path: str) -> None:
    response = viewer_client.get(path, headers=HTML)
    assert response.status_code == 200
    assert b"Acknowledge</button>" not in response.content


def test_a_user_in_no_group_gets_the_403_page(plant: Plant) -> None:
    client = Client()
    client.force_login(user_in(None, "nobody"))
    response = client.get("/sensors/")
    assert response.status_code == 403
    assert b"Not allowed (403)" in response.content


def test_a_viewer_is_refused_every_action(plant: Plant, viewer_client: Client) -> None:
    event = plant.open_event
    for url in (f"/events/{event.pk}/acknowledge/", "/forecasts/train/", f"/harvest/{plant.organization.pk}/start/"):
        response = viewer_client.post(url, {"note": "no"})
        assert response.status_code == 403, url
        assert b"console.operate_console" in response.content
    event.refresh_from_db()
    assert event.status == EventStatus.OPEN
    assert not EventNote.objects.exists()
    assert TrainingRun.objects.count() == 1


def test_actions_need_the_csrf_token(plant: Plant) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_in("operator", "olga"))
    response = client.post(f"/events/{plant.open_event.pk}/acknowledge/", {"note": "x"})
    assert response.status_code == 403
    plant.open_event.refresh_from_db()
    assert plant.open_event.status == EventStatus.OPEN


# --- overview -----------------------------------------------------------------------------------------


def test_overview_counts(plant: Plant) -> None:
    data = overview.overview()
    assert (data.sensors_active, data.sensors_reporting) == (2, 1)  # 002 never reported, 003 is inactive
    assert data.events == {"critical": {"sensor": 1}, "warning": {"host": 1}}
    assert data.last_forecast == plant.now.replace(minute=0)
    assert data.harvest_failed == 1
    assert data.last_harvest == plant.failed_run
    assert data.queues == {queue.name: 0 for queue in settings.CELERY_TASK_QUEUES}
    assert {"default", "detect", "ingest", "training"} <= set(data.queues)
    assert data.host == "web-1"
    assert [chart.name for chart in data.sparks] == ["host-cpu", "host-memory"]
    assert data.kipris.used == 0
    assert data.kipris.circuit_open is False


def test_health_panel_lists_every_check(plant: Plant, viewer_client: Client) -> None:
    response = viewer_client.get("/console/health/")
    for name in ("database", "broker", "workers", "beat", "anomaly_detection", "forecasting", "kipris", "bridge"):
        assert f"<td>{name}</td>".encode() in response.content


# --- sensors ------------------------------------------------------------------------------------------


def test_sensor_table_status_search_and_sort(plant: Plant) -> None:
    table = sensors.sensor_table()
    assert [(row["code"], row["status"], row["events"]) for row in table.rows] == [
        ("001", "alarm", 1),
        ("002", "silent", 0),
        ("003", "inactive", 0),
    ]
    latest = table.rows[0]
    assert latest["ts"] == plant.reading_times[-1]
    assert sensors.sensor_table("north").rows[0]["code"] == "001"
    assert sensors.sensor_table("north").matching == 1
    assert sensors.sensor_table(sort="-age").rows[0]["code"] in {"002", "003"}
    assert sensors.sensor_table(sort="-events").rows[0]["code"] == "001"


def test_sensor_detail_24h_buckets_band_forecast_and_events(plant: Plant) -> None:
    detail = sensors.sensor_detail(plant.sensor, charts.RANGES["24h"], "24h", now=plant.now)
    assert detail.bucket_seconds == 300
    flow = next(chart for chart in detail.charts if chart.name == "sensor-flow")
    assert flow.points == bucket_count(plant.reading_times, detail.start, detail.end, 300) == 288
    # the bucket means are the means of the minute readings in each bucket
    frame = pd.DataFrame({"ts": plant.reading_times})
    first = pd.Timestamp(flow.x[0], unit="s", tz="UTC")
    readings = sensors.sensor_series(plant.sensor.pk, first, first + timedelta(minutes=5), 60)
    assert flow.series[0]["values"][0] == pytest.approx(readings["flow"].mean(), abs=1e-3)
    assert len(frame) == 8 * 1440 + 1
    # criteria band on every reading bucket, the forecast for the next 24 h (as far ahead as the chart looks back)
    upper = flow.series[1]["values"][: flow.points]
    assert all(value is not None for value in upper)
    forecast = [value for value in flow.series[3]["values"] if value is not None]
    assert len(forecast) == 24
    assert set(forecast) == {21.0}
    assert [mark["id"] for mark in flow.marks] == [plant.open_event.pk]
    assert detail.status == "alarm"
    assert len(detail.nights) == 5
    assert detail.night_chart is not None
    assert detail.night_chart.points == 5
    assert [day["day"] for day in detail.forecast_days] == [str(day) for day in range(1, 8)]
    assert detail.frames == []


def test_sensor_detail_7d_and_30d_use_the_hourly_rollup(plant: Plant) -> None:
    for key, seconds in (("7d", 3600), ("30d", 10800)):
        detail = sensors.sensor_detail(plant.sensor, charts.RANGES[key], key, now=plant.now)
        assert detail.bucket_seconds == seconds
        flow = detail.charts[0]
        assert flow.points == bucket_count(plant.reading_times, detail.start, detail.end, seconds)
        assert len([value for value in flow.series[3]["values"] if value is not None]) >= 160
    # an hour from the roll-up equals the mean of its minute readings
    hour = plant.now.replace(minute=0) - timedelta(hours=5)
    rolled = sensors.sensor_series(plant.sensor.pk, hour, hour + timedelta(hours=1), 3600)
    minutes = sensors.sensor_series(plant.sensor.pk, hour, hour + timedelta(hours=1), 60)
    assert rolled["flow"].iloc[0] == pytest.approx(minutes["flow"].mean())


def test_frames_sent_to_the_device_are_shown(plant: Plant, viewer_client: Client) -> None:
    from sensors.outbox import record_sent

    record_sent(
        [b"$A,001,2612020745,0100,000*3F\r\n", b"$S,001,2612020740,20.1,3.0,0,0*11\r\n", b"$E,1*44\r\n"], ",", 1.0
    )
    detail = sensors.sensor_detail(plant.sensor, charts.RANGES["24h"], "24h")
    assert [item["frame"] for item in detail.frames or []] == [
        "$S,001,2612020740,20.1,3.0,0,0*11",
        "$A,001,2612020745,0100,000*3F",
    ]
    assert b"$A,001,2612020745,0100,000*3F" in viewer_client.get("/sensors/001/").content


def test_a_sensor_without_readings_says_what_to_do(plant: Plant, viewer_client: Client) -> None:
    response = viewer_client.get("/sensors/002/")
    assert b"No readings in the last 24h" in response.content
    assert b"No forecast yet" in response.content
    assert Client().get("/sensors/001/").status_code == 302
    assert viewer_client.get("/sensors/999/").status_code == 404


# --- events -------------------------------------------------------------------------------------------


def test_event_filters_are_anomalys_own(plant: Plant) -> None:
    def ids(**params: str) -> list[int]:
        from django.http import QueryDict

        query = QueryDict(mutable=True)
        query.update(params)
        listing = events.event_list(query)
        assert listing.page is not None
        return [event.pk for event in listing.page]

    assert ids(source="host") == [plant.host_event.pk]
    assert ids(status="resolved") == [plant.resolved_event.pk]
    assert ids(sensor="001", open="true") == [plant.open_event.pk]
    assert set(ids()) == {plant.open_event.pk, plant.host_event.pk, plant.resolved_event.pk}
    from django.http import QueryDict

    bad = events.event_list(QueryDict("severity=loud"))
    assert bad.page is None
    assert "severity" in bad.errors


def test_replayed_events_are_marked_and_filtered(plant: Plant, viewer_client: Client) -> None:
    found = plant.resolved_event
    found.replayed = True
    found.save(update_fields=["replayed"])
    page = viewer_client.get("/events/").content.decode()
    assert page.count('class="badge replayed"') == 1
    live = viewer_client.get("/events/?replayed=false").content.decode()
    assert f'id="event-{found.pk}"' not in live
    assert f'id="event-{plant.open_event.pk}"' in live
    history = viewer_client.get("/events/?replayed=true").content.decode()
    assert f'id="event-{found.pk}"' in history
    assert f'id="event-{plant.open_event.pk}"' not in history


def test_acknowledge_then_resolve_with_notes(plant: Plant, operator_client: Client) -> None:
    event = plant.open_event
    row = operator_client.post(
        f"/events/{event.pk}/acknowledge/", {"note": "crew on the way", "from": "list"}, HTTP_HX_REQUEST="true"
    )
    assert row.status_code == 200
    assert b'data-status="acknowledged"' in row.content
    assert row.content.lstrip().startswith(b"<tr")
    panel = operator_client.post(f"/events/{event.pk}/resolve/", {"note": "valve closed"}, HTTP_HX_REQUEST="true")
    assert b'data-status="resolved"' in panel.content
    assert b"valve closed" in panel.content
    event.refresh_from_db()
    assert event.status == EventStatus.RESOLVED
    assert event.acknowledged_by is not None
    assert event.resolved_by == event.acknowledged_by
    assert [(note.action, note.note) for note in EventNote.objects.order_by("id")] == [
        ("acknowledge", "crew on the way"),
        ("resolve", "valve closed"),
    ]
    again = operator_client.post(f"/events/{event.pk}/resolve/", {"note": ""}, HTTP_HX_REQUEST="true")
    assert again.status_code == 409
    assert b"already resolved" in again.content
    assert EventNote.objects.count() == 2
    plain = operator_client.post(f"/events/{plant.host_event.pk}/acknowledge/", {"next": "/events/"})
    assert (plain.status_code, plain["Location"]) == (302, "/events/")
    assert operator_client.post(f"/events/{event.pk}/explode/").status_code == 404


def test_evidence_charts(plant: Plant) -> None:
    chart = events.evidence_chart(plant.open_event, now=plant.now)
    assert chart is not None
    start = plant.open_event.started_at - events.CONTEXT
    seconds = charts.bucket_seconds(plant.now - start)
    assert seconds == 120
    assert chart.points == bucket_count(plant.reading_times, start, plant.now, seconds)
    # the forecast as detection saw it: issued by the hour it is for (the plant has one issue, this hour's)
    assert chart.series[3]["values"].count(21.0) == 1
    host = events.evidence_chart(plant.host_event, now=plant.now)
    assert host is not None
    assert host.points == bucket_count(
        pd.DatetimeIndex(plant.sample_times), plant.now - timedelta(hours=6.5), plant.now + timedelta(minutes=1), 120
    )
    assert events.evidence_rows(plant.open_event)[3] == ("band", "10 .. 30")


# --- forecasts, harvest, hosts -----------------------------------------------------------------------


def test_forecasts_page_versions_runs_and_train_now(plant: Plant, operator_client: Client) -> None:
    page = forecasts.forecasts_page()
    assert page.active["flow"] is not None
    assert page.active["pressure"] is None
    assert page.versions[0]["ratio"] == pytest.approx(0.6)
    assert page.versions[0]["beats_baseline"]
    assert page.runs[0]["progress"]["percent"] == 12  # metric 1 of 2 at epoch 5 of 20
    assert page.busy
    assert page.next_training is not None
    assert timezone.localtime(page.next_training).strftime("%m-%d %H:%M") == "01-01 03:30"
    response = operator_client.post("/forecasts/train/", {"metrics": ["pressure"], "days": "30"})
    assert response.status_code == 302
    run = TrainingRun.objects.order_by("-id").first()
    assert run is not None
    assert (run.metrics, run.status, run.requested_by) == (["pressure"], "queued", "olga")
    assert operator_client.post("/forecasts/train/", {"metrics": ["rain"]}).status_code == 400


def test_harvest_page_progress_guards_failures_and_start(plant: Plant, operator_client: Client) -> None:
    page = harvest.harvest_page()
    done = next(row for row in page.runs if row["run"].status == RunStatus.DONE)
    assert done["progress"] == [
        {"kind": "patent + utility", "fetched": 40, "total": 40, "percent": 100, "states": "done"}
    ]
    assert done["found"] == {"patent": 32, "utility": 8}
    assert done["requests"] == 5
    assert page.failed == [plant.failed_run]
    assert page.guards.budget == 1000
    assert page.guards.tokens == 10.0
    assert page.organizations[0]["rights_count"] == 0
    response = operator_client.post(f"/harvest/{plant.organization.pk}/start/", {"kinds": ["design"]})
    assert response.status_code == 302
    run = HarvestRun.objects.order_by("-id").first()
    assert run is not None
    assert (run.kinds, run.status) == (["design"], RunStatus.QUEUED)
    again = operator_client.post(f"/harvest/{plant.organization.pk}/start/", {"kinds": ["design"]})
    assert again.status_code == 409
    assert b"already queued or running" in again.content
    page_html = operator_client.get("/harvest/").content
    assert b"KIPRIS rejected the service key (code 30)" in page_html


def test_hosts_page_charts_and_ranges(plant: Plant) -> None:
    page = hosts.hosts_page(None, "1h")
    assert page.host == "web-1"
    assert [chart.name for chart in page.charts] == ["host-cpu", "host-memory", "host-disk", "host-network"]
    cpu = page.charts[0]
    start = pd.Timestamp(cpu.x[0], unit="s", tz="UTC")
    assert cpu.points == bucket_count(pd.DatetimeIndex(plant.sample_times), start, start + timedelta(hours=1), 60)
    day = hosts.hosts_page("web-1", "24h")
    assert day.charts[0].points == bucket_count(
        pd.DatetimeIndex(plant.sample_times),
        pd.Timestamp(day.charts[0].x[0], unit="s", tz="UTC"),
        plant.now + timedelta(hours=1),
        300,
    )
    assert hosts.hosts_page("nope", "bogus").range_key == "1h"


def test_empty_console_tells_what_to_do(db: None, viewer_client: Client) -> None:
    for path, text in {
        "/sensors/": b"No sensors yet",
        "/events/": b"No anomaly events yet",
        "/forecasts/": b"No forecast model yet",
        "/harvest/": b"No organisations tracked yet",
        "/hosts/": b"No host has reported yet",
    }.items():
        response = viewer_client.get(path)
        assert response.status_code == 200
        assert text in response.content, path
    assert Sensor.objects.count() == 0
    assert AnomalyEvent.objects.count() == 0
