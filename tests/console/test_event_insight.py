"""The event page's explanation (aiops.insight): shown escaped, "explain now" for operators only."""

from __future__ import annotations

from django.test import Client

from aiops.insight.models import Insight, InsightSource
from aiops.models import Incident, IncidentMember
from tests.console.conftest import Plant

HTML = {"Accept": "text/html"}


def test_an_operator_explains_an_event_now_and_sees_the_answer(plant: Plant, operator_client: Client) -> None:
    page = operator_client.get(f"/events/{plant.open_event.pk}/", headers=HTML)
    assert b"No explanation yet" in page.content
    assert b"Explain now</button>" in page.content
    response = operator_client.post(f"/events/{plant.open_event.pk}/explain/")
    assert response.status_code == 302
    insight = Insight.objects.get(event=plant.open_event)
    assert insight.source == InsightSource.RULES
    page = operator_client.get(f"/events/{plant.open_event.pk}/", headers=HTML)
    assert insight.answer["summary"].encode() in page.content


def test_an_events_incident_is_what_is_explained(plant: Plant, operator_client: Client) -> None:
    incident = Incident.objects.create(title="sensor 001", group_key="site:test", severity="warning",
                                       started_at=plant.open_event.started_at,
                                       last_event_at=plant.open_event.started_at)  # fmt: skip
    IncidentMember.objects.create(incident=incident, event=plant.open_event, matched_on="site")
    operator_client.post(f"/events/{plant.open_event.pk}/explain/", HTTP_HX_REQUEST="true")
    assert Insight.objects.filter(incident=incident, source=InsightSource.RULES).count() == 1


def test_the_answer_is_escaped(plant: Plant, viewer_client: Client) -> None:
    Insight.objects.create(event=plant.open_event, source=InsightSource.LLM, model="m",
                           answer={"summary": "<script>alert(1)</script>", "likely_cause": "x", "checks": [],
                                   "confidence": "low"})  # fmt: skip
    page = viewer_client.get(f"/events/{plant.open_event.pk}/", headers=HTML)
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.content


def test_a_viewer_may_not_explain(plant: Plant, viewer_client: Client) -> None:
    assert b"Explain now</button>" not in viewer_client.get(f"/events/{plant.open_event.pk}/", headers=HTML).content
    assert viewer_client.post(f"/events/{plant.open_event.pk}/explain/").status_code == 403
    assert not Insight.objects.exists()
