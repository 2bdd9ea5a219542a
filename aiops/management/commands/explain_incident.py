"""`manage.py explain_incident ID [--event] [--no-llm] [--json]`: explain an incident (or one event) now."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aiops.insight import service
from aiops.insight.models import InsightTrigger
from aiops.models import Incident
from anomaly.models import AnomalyEvent


class Command(BaseCommand):
    help = "Explain an incident (or, with --event, one anomaly event): the rules' insight, then the LLM's."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", type=int)
        parser.add_argument("--event", action="store_true", help="ID is an anomaly event, not an incident")
        parser.add_argument("--no-llm", action="store_true", help="rules only, even when an LLM is configured")
        parser.add_argument("--json", action="store_true", help="print the Insight rows as JSON lines")

    def handle(self, *args: Any, **options: Any) -> None:
        target: dict[str, Any]
        if options["event"]:
            event = AnomalyEvent.objects.filter(pk=options["id"]).first()
            if event is None:
                raise CommandError(f"no anomaly event {options['id']}")
            target = {"event": event}
        else:
            incident = Incident.objects.filter(pk=options["id"]).first()
            if incident is None:
                raise CommandError(f"no incident {options['id']}")
            target = {"incident": incident}
        rows = service.explain(**target, trigger=InsightTrigger.COMMAND, use_llm=not options["no_llm"])
        for row in rows:
            if options["json"]:
                data = {"id": row.pk, "source": row.source, "model": row.model, "latency_ms": round(row.latency_ms, 1),
                        "calls": row.calls, "answer": row.answer, "error": row.error}  # fmt: skip
                self.stdout.write(json.dumps(data, ensure_ascii=False))
                continue
            self.stdout.write(f"[{row.source} {row.model}, {row.latency_ms:.0f} ms]")
            if row.error:
                self.stdout.write(f"  no answer: {row.error}")
                continue
            answer = row.answer
            self.stdout.write(f"  {answer['summary']}")
            self.stdout.write(f"  Likely cause: {answer['likely_cause']} ({answer['confidence']} confidence)")
            for number, check in enumerate(answer["checks"], start=1):
                self.stdout.write(f"  {number}. {check}")
