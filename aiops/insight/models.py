"""Insight rows: one explanation of an incident (or of one event), by the rules or by an LLM."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from anomaly.models import AnomalyEvent


class InsightSource(models.TextChoices):
    RULES = "rules", "rules"
    LLM = "llm", "LLM"


class InsightTrigger(models.TextChoices):
    AUTO = "auto", "automatic (incident opened)"
    API = "api", "on demand (API or console)"
    COMMAND = "command", "on demand (manage.py explain_incident)"


class Insight(models.Model):
    """What the explainer answered, or why it could not (`error`), with what it cost.

    `answer` holds the restored text (identifiers put back after redaction): it is shown to operators
    only, always escaped. `prompt_hash` identifies the redacted prompt, so two insights from the same
    evidence can be compared without keeping the prompt. The automatic run writes at most one row per
    incident and source (a partial unique constraint: a redelivered task cannot add a second).
    """

    incident = models.ForeignKey(
        "aiops.Incident", null=True, blank=True, on_delete=models.CASCADE, related_name="insights"
    )
    event = models.ForeignKey(AnomalyEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="insights")
    source = models.CharField(max_length=8, choices=InsightSource.choices)
    trigger = models.CharField(max_length=8, choices=InsightTrigger.choices, default=InsightTrigger.API)
    model = models.CharField(max_length=200, blank=True, help_text="the LLM's model, or the rules' version")
    prompt_hash = models.CharField(max_length=64, blank=True, help_text="sha256 of the redacted prompt")
    context_chars = models.PositiveIntegerField(default=0)
    redactions = models.JSONField(default=dict, blank=True, help_text="identifiers redacted, per kind")
    latency_ms = models.FloatField(default=0.0)
    calls = models.PositiveSmallIntegerField(default=0, help_text="HTTP calls made (retries and repair included)")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    answer = models.JSONField(default=dict, blank=True)
    cause_code = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "source"], condition=Q(trigger="auto"), name="insight_one_auto_per_source"
            )
        ]
        indexes = [models.Index(fields=["incident", "created_at"], name="insight_incident_idx")]

    def __str__(self) -> str:
        target = f"incident {self.incident_id}" if self.incident_id else f"event {self.event_id}"
        return f"{self.source} insight on {target} ({'error' if self.error else self.cause_code})"
