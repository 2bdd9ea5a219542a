"""console's one table: what an operator did to an anomaly event and the note they left.

anomaly's events keep their state (who acknowledged or resolved, when); the note and the audit trail of
console actions live here, so the console needs no column in another app's table. The model also
carries the console's two permissions, which the "viewer" and "operator" groups hold.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from anomaly.models import AnomalyEvent


class EventAction(models.TextChoices):
    ACKNOWLEDGE = "acknowledge", "acknowledged"
    RESOLVE = "resolve", "resolved"


class EventNote(models.Model):
    """One operator action on one event, with the note typed beside the button."""

    event = models.ForeignKey(AnomalyEvent, on_delete=models.CASCADE, related_name="console_notes")
    action = models.CharField(max_length=16, choices=EventAction.choices)
    note = models.TextField(blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("view_console", "Can open the operator console"),
            ("operate_console", "Can acknowledge and resolve events, train models and start harvests"),
        ]

    def __str__(self) -> str:
        return f"{self.action} event {self.event_id} by {self.user_id}"
