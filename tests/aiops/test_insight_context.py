"""The context builder: bounded size, the facts it gathers, redaction that round-trips, runbook retrieval."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from aiops.insight import context, runbooks
from aiops.insight.redaction import Redactor
from aiops.insight.rules import explain
from aiops.insight.service import prompt_for
from sensors.models import Reading

from .insight_helpers import T0, alert, event, incident_of, sensor

pytestmark = pytest.mark.django_db


def members(incident):
    return [m.event for m in incident.memberships.select_related("event__sensor")]


def test_a_storm_renders_within_the_token_budget() -> None:
    storm = [event("sensor", f"{n:03d}", "flow", "system", state="gap", minutes=n % 5) for n in range(1, 121)]
    storm.append(alert("PipewatchBridgeNoFrames"))
    built = context.build(members(incident_of(*storm)))
    assert built.total_events == 121
    assert len(built.events) == context.MAX_EVENTS
    for tokens in (200, 500, 1500):
        text = context.render(built, tokens)
        assert len(text) <= tokens * context.CHARS_PER_TOKEN
        assert text.startswith("Incident:")
        assert "more" in text  # what did not fit is counted, not silently dropped
    assert "# Runbooks" in context.render(built, 4000)


def test_series_summary_and_site_facts() -> None:
    meter = sensor("021", "East")
    sensor("022", "East")
    for minute in range(-30, 6):
        flow = 100.0 if minute < 0 else 260.0
        Reading.objects.create(sensor=meter, ts=T0 + timedelta(minutes=minute), flow=flow, pressure=4.0)
    built = context.build(members(incident_of(event("sensor", "021", "flow", "value", site="East"))))
    (summary,) = built.series
    assert (summary.before, summary.latest, summary.high) == (100.0, 260.0, 260.0)
    assert summary.change == pytest.approx(1.6)
    assert built.sites["East"] == {"sensors": 2, "silent": 1, "in_incident": 1}
    assert "change +160%" in context.render(built)
    assert built.queues["broker"] == "reachable"
    assert built.kipris["circuit"] == "closed"


def test_redaction_round_trip() -> None:
    redactor = Redactor(accounts=["kim.operator", "ops"], secrets=["KIPRIS+key/with=chars"])
    text = (
        "kim.operator logged in from 203.0.113.7 and 2001:db8::42, mail kim@example.co.kr, "
        "token=ghp_abcdefghijklmnopqrstuvwxyz0123 key KIPRIS+key/with=chars; ops at 03:00:00 (v2.1.0); "
        "kim.operator again from 203.0.113.7"
    )
    redacted = redactor.redact(text)
    for secret in ("kim.operator", "203.0.113.7", "2001:db8::42", "kim@example.co.kr", "ghp_abc", "KIPRIS+key"):
        assert secret not in redacted
    assert redacted.count("<ACCOUNT_1>") == 2
    assert redacted.count("<IP_1>") == 2
    assert "03:00:00" in redacted
    assert "v2.1.0" in redacted
    assert redactor.restore(redacted) == text
    assert redactor.restore("<IP_9> unknown stays") == "<IP_9> unknown stays"


def test_prompt_carries_no_identifier() -> None:
    incident = incident_of(
        event(
            "account", "kim.operator", "logins", "behaviour", evidence={"ip": "198.51.100.23", "email": "kim@corp.kr"}
        ),
        alert("PipewatchWorkerDown", instance="10.1.2.3:9100"),
    )
    built = context.build(members(incident))
    redactor = Redactor(accounts=built.accounts)
    system, user = prompt_for(built, explain(built), redactor)
    for secret in ("kim.operator", "198.51.100.23", "kim@corp.kr", "10.1.2.3"):
        assert secret not in user
        assert secret not in system
    assert "<<FIRST_OPINION>>" in user


def test_runbooks_found_by_keyword(tmp_path: Path) -> None:
    best = runbooks.search("alert PipewatchWorkerDown prometheus")[0]
    assert best.runbook.name == "worker-or-broker-down"
    assert runbooks.search("sensor flow night fired")[0].runbook.name == "leak-suspected"
    assert runbooks.search("host disk_percent ensemble")[0].runbook.name == "host-resource-exhaustion"
    assert runbooks.search("zebra quasar") == []
    (tmp_path / "custom.md").write_text("# Valve 9 sticks\nKeywords: valve, sticks\nOpen it by hand.\n")
    assert runbooks.search("valve sticks", directory=tmp_path)[0].runbook.title == "Valve 9 sticks"


def test_schedule_edits_are_changes_not_beats_runs() -> None:
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    from core.models import ScheduleChange

    for name in ("anomaly: detect every minute", "eventlogs: score account behaviour"):
        next(ModelEntry(PeriodicTask.objects.get(name=name))).save()  # beat's bookkeeping after each run
    paused = PeriodicTask.objects.get(name="forecasting: hourly 7-day forecasts")
    paused.enabled = False
    paused.save()
    ScheduleChange.objects.update(changed_at=T0 - timedelta(hours=2))
    PeriodicTask.objects.update(date_changed=T0 - timedelta(minutes=5))

    built = context.build(members(incident_of(event("sensor", "031", "flow", "value"))))
    changed = timezone.localtime(T0 - timedelta(hours=2))
    assert built.schedule_edits == [f"forecasting: hourly 7-day forecasts: DISABLED, changed {changed:%Y-%m-%d %H:%M}"]
