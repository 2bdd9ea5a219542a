"""Insight end to end in one process: rules and LLM rows, the API, the command, the notification hook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from aiops.insight import hooks, service, tasks
from aiops.insight.llm_simulator import SimulatorState, start_server
from aiops.insight.models import Insight, InsightSource, InsightTrigger
from aiops.services.incidents import message

from .insight_helpers import alert, event, incident_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def llm(settings) -> Iterator[SimulatorState]:
    state = SimulatorState(flavour="ollama")
    httpd, url = start_server(state)
    settings.INSIGHT_LLM_URL, settings.INSIGHT_LLM_MODEL = url, "qwen2.5:0.5b"
    settings.INSIGHT_LLM_TIMEOUT_SECONDS, settings.INSIGHT_LLM_RETRIES = 2.0, 0
    yield state
    httpd.shutdown()
    httpd.server_close()


def account_incident():
    return incident_of(
        event("account", "kim.operator", "logins", "behaviour", evidence={"ip": "198.51.100.23"}),
    )


def test_rules_only_when_no_llm() -> None:
    incident = account_incident()
    rows = service.explain(incident=incident)
    assert [row.source for row in rows] == [InsightSource.RULES]
    assert rows[0].cause_code == "suspicious_account"
    assert rows[0].answer["checks"]


def test_llm_answer_restored_and_nothing_identifying_sent(llm: SimulatorState) -> None:
    incident = account_incident()
    rules_row, llm_row = service.explain(incident=incident)
    assert llm_row.source == InsightSource.LLM
    assert llm_row.error == ""
    assert llm_row.model == "qwen2.5:0.5b"
    assert llm_row.redactions == {"ACCOUNT": 1, "IP": 1}
    sent = json.dumps([r["body"] for r in llm.requests])
    assert "kim.operator" not in sent
    assert "198.51.100.23" not in sent
    assert "<ACCOUNT_1>" in sent
    # the simulator echoes the (redacted) first opinion; the stored answer has the name back
    assert "kim.operator" in llm_row.answer["summary"]
    assert llm_row.answer == rules_row.answer
    assert len(llm_row.prompt_hash) == 64
    assert llm_row.prompt_tokens > 0


def test_llm_failure_is_recorded_and_rules_stand(llm: SimulatorState) -> None:
    llm.script += ["nonconforming", "nonconforming"]
    rows = service.explain(incident=account_incident())
    assert rows[0].error == ""
    assert rows[1].error.startswith("rejected: answer rejected after one repair")
    assert rows[1].answer == {}


def test_automatic_run_is_idempotent(llm: SimulatorState) -> None:
    incident = account_incident()
    first = tasks.explain_incident(incident.pk)
    again = tasks.explain_incident(incident.pk)  # a redelivered message
    assert len(first) == 2
    assert again == []
    assert Insight.objects.filter(incident=incident, trigger=InsightTrigger.AUTO).count() == 2


def test_explain_endpoint(token_client: APIClient, llm: SimulatorState) -> None:
    incident = incident_of(alert("PipewatchWorkerDown"))
    response = token_client.post(f"/api/v1/aiops/incidents/{incident.pk}/explain")
    assert response.status_code == 201, response.content
    assert response.json()["insight"]["cause_code"] == "worker_or_broker_down"
    assert response.json()["llm"] == "queued"
    assert llm.requests == []  # the web request never waits for the model
    tasks.explain_llm(incident.pk, "operator")  # what the insight worker runs
    listed = token_client.get(f"/api/v1/aiops/incidents/{incident.pk}/insights/").json()
    assert [row["source"] for row in listed] == ["llm", "rules"]
    assert listed[0]["requested_by"] == "operator"


def test_explain_endpoint_errors(token_client: APIClient) -> None:
    incident = incident_of(alert("PipewatchWorkerDown"))
    assert APIClient().post(f"/api/v1/aiops/incidents/{incident.pk}/explain").status_code in {401, 403}
    missing = token_client.post("/api/v1/aiops/incidents/999999/explain")
    assert missing.status_code == 404
    assert "message" in missing.json()
    rules_only = token_client.post(f"/api/v1/aiops/incidents/{incident.pk}/explain")
    assert rules_only.json()["llm"] == "disabled"


def test_command() -> None:
    incident = incident_of(event("sensor", "011", "flow", "system", state="stuck", evidence={"flat_minutes": 30}))
    out = StringIO()
    call_command("explain_incident", str(incident.pk), stdout=out)
    assert "Likely cause: A frozen transmitter" in out.getvalue()
    out = StringIO()
    call_command("explain_incident", str(incident.memberships.get().event_id), "--event", "--json", stdout=out)
    assert json.loads(out.getvalue())["answer"]["cause_code"] == "sensor_stuck"


def test_notification_carries_the_insight_escaped() -> None:
    incident = incident_of(alert("PipewatchWorkerDown"))
    text = message(incident, "firing").text
    assert "Insight (rules): Background processing stopped" in text
    Insight.objects.create(
        incident=incident,
        source=InsightSource.LLM,
        model="m",
        answer={
            "summary": "<script>x</script> <http://evil|click>",
            "likely_cause": "a & b",
            "checks": ["<!channel>"],
            "confidence": "low",
        },
    )
    text = message(incident, "firing").text
    assert "Insight (m): &lt;script&gt;x&lt;/script&gt; &lt;http://evil|click&gt;" in text
    assert "<!channel>" not in text


def test_first_message_waits_for_the_llm_only_when_one_is_configured(llm: SimulatorState, settings) -> None:
    settings.INSIGHT_NOTIFY_WAIT_SECONDS = 20
    incident = incident_of(alert("PipewatchWorkerDown"))
    soon = incident.created_at + timedelta(seconds=5)
    assert not hooks.ready_to_notify(incident, soon, group_wait=0)
    assert hooks.ready_to_notify(incident, incident.created_at + timedelta(seconds=21), group_wait=0)
    tasks.explain_incident(incident.pk)
    assert hooks.ready_to_notify(incident, soon, group_wait=0)
    settings.INSIGHT_LLM_URL = ""
    assert hooks.ready_to_notify(incident_of(alert("KiprisCircuitOpen", minutes=300)), soon, group_wait=0)


def test_admin_shows_the_answer_escaped(admin_client) -> None:
    incident = incident_of(alert("PipewatchWorkerDown"))
    row = Insight.objects.create(
        incident=incident,
        source=InsightSource.LLM,
        answer={"summary": "<script>alert(1)</script>", "likely_cause": "x", "checks": ["y"], "confidence": "low"},
    )
    page = admin_client.get(f"/admin/aiops/insight/{row.pk}/change/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert admin_client.get("/admin/aiops/insight/").status_code == 200


def test_outcomes_are_counted(llm: SimulatorState) -> None:
    from prometheus_client import REGISTRY

    def count(source: str, outcome: str) -> float:
        return REGISTRY.get_sample_value("pipewatch_insights_total", {"source": source, "outcome": outcome}) or 0.0

    before = count("rules", "answered"), count("llm", "rejected")
    llm.script += ["not_json", "nonconforming"]
    service.explain(incident=account_incident())
    assert count("rules", "answered") == before[0] + 1
    assert count("llm", "rejected") == before[1] + 1


def test_a_broken_insight_never_stops_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    incident = incident_of(alert("PipewatchWorkerDown"))

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug in a rule")

    monkeypatch.setattr(service, "explain", broken)
    text = message(incident, "firing").text
    assert "PipewatchWorkerDown" in text
    assert "Insight" not in text
