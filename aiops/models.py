"""aiops' tables: incidents grouping anomaly events, custom metrics (series + compact points), capacity
forecasts and the archive of Alertmanager webhook payloads."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from anomaly.models import AnomalyEvent, Severity


class IncidentStatus(models.TextChoices):
    OPEN = "open", "open"
    ACKNOWLEDGED = "acknowledged", "acknowledged"
    RESOLVED = "resolved", "resolved"


class Incident(models.Model):
    """Concurrent anomaly events of any source that belong to one outage, notified as one message.

    `group_key` says why the members belong together: a shared attribute (`host=web-1`, `site=North`,
    `org=ACME`, `alertname=…`) or `time` when they only share the moment they started. `attributes` is the
    union of the members' attributes (name -> sorted values). Notification bookkeeping follows
    Alertmanager: the first message after `group_wait`, updates for new members at most every
    `group_interval`, a reminder every `repeat_interval` while unresolved.
    """

    title = models.CharField(max_length=300)
    group_key = models.CharField(max_length=200, help_text="what the members share: attr=value, or 'time'")
    attributes = models.JSONField(default=dict, blank=True, help_text="attribute -> values over the members")
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    status = models.CharField(max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    started_at = models.DateTimeField(help_text="start of the earliest member")
    last_event_at = models.DateTimeField(help_text="start of the newest member")
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_notified_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notified_members = models.PositiveIntegerField(default=0, help_text="members listed in the last message")
    notification_count = models.PositiveIntegerField(default=0)
    resolved_notified = models.BooleanField(default=False)
    members: models.ManyToManyField[AnomalyEvent, IncidentMember] = models.ManyToManyField(
        AnomalyEvent, through="IncidentMember", related_name="incidents"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["status", "last_event_at"], name="aiops_incident_status_idx"),
            models.Index(fields=["started_at"], name="aiops_incident_started_idx"),
            # retention: resolved incidents are purged by resolved_at (aiops.services.retention)
            models.Index(fields=["resolved_at"], name="aiops_incident_resolved_idx"),
        ]

    def __str__(self) -> str:
        return f"incident {self.pk} {self.title} ({self.status})"


class IncidentMember(models.Model):
    """One event in one incident; an event belongs to at most one incident."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="memberships")
    event = models.OneToOneField(AnomalyEvent, on_delete=models.CASCADE, related_name="incident_membership")
    matched_on = models.CharField(max_length=200, help_text="the shared attribute (or 'time') that joined it")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["incident", "added_at", "id"]

    def __str__(self) -> str:
        return f"event {self.event_id} in incident {self.incident_id}"


class MetricSeries(models.Model):
    """One custom metric series: a name and its labels. Its streaming detector lives in MetricState."""

    name = models.CharField(max_length=200)
    labels = models.JSONField(default=dict, blank=True)
    labels_key = models.CharField(max_length=1000, help_text="canonical k=v,… of the labels (sorted keys)")
    limit = models.FloatField(null=True, blank=True, help_text="capacity limit: warn before the trend crosses it")
    first_ts = models.DateTimeField(null=True, blank=True)
    last_ts = models.DateTimeField(null=True, blank=True, help_text="newest point stored")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "labels_key"]
        verbose_name_plural = "metric series"
        constraints = [models.UniqueConstraint(fields=["name", "labels_key"], name="aiops_series_unique")]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels_key}}}"


class MetricState(models.Model):
    """The streaming detector of one series as the minute scoring left it, so a run reads only the points
    after `scored_until`.

    Its own narrow table, rewritten for every scored series each minute: the series row (which ingest
    updates on every batch) does not carry ~2.6 KB of state into each of its versions, and the state is
    raw bytes (the detector's pickle; no base64 in JSON) kept inside the row rather than in TOAST (the
    migration raises toast_tuple_target), so a rewrite is one heap tuple. docs/BENCHMARKS.md has the
    before and after.
    """

    series = models.OneToOneField(MetricSeries, on_delete=models.CASCADE, primary_key=True, related_name="state")
    detector = models.CharField(max_length=32, blank=True, help_text="AIOPS_METRICS_DETECTOR that wrote it")
    state = models.BinaryField(default=b"", blank=True, help_text="the detector's pickle (written by scoring only)")
    scored_until = models.DateTimeField(help_text="newest point the detector has seen")

    def __str__(self) -> str:
        return f"state of series {self.series_id} until {self.scored_until.isoformat()}"


class MetricPoint(models.Model):
    """One point of one custom series: (series, ts) is the primary key, no surrogate id, so a row is
    int8 + timestamptz + float8 (48 bytes with its tuple header) plus its one index entry.

    The primary key is the only index: every read is one series over a time range (its leading column
    serves the foreign key too), and retention deletes per series. A second index on ts and the foreign
    key's own index made COPY maintain three b-trees per row (docs/BENCHMARKS.md).
    """

    pk = models.CompositePrimaryKey("series", "ts")
    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="+", db_index=False)
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        ordering = ["series", "ts"]

    def __str__(self) -> str:
        return f"{self.series_id}@{self.ts.isoformat()}={self.value}"


class CapacityKind(models.TextChoices):
    HOST_DISK = "host_disk", "host disk (fullest mount)"
    HOST_MEMORY = "host_memory", "host memory"
    METRIC = "metric", "custom metric with a limit"


class CapacityForecast(models.Model):
    """The latest time-to-limit estimate of one series over one trend window."""

    kind = models.CharField(max_length=16, choices=CapacityKind.choices)
    subject = models.CharField(max_length=200, help_text="host name or custom series")
    window = models.CharField(max_length=16, help_text="trend window, e.g. 6h or 7d")
    limit = models.FloatField()
    current = models.FloatField(help_text="the trend line's value now")
    slope_per_second = models.FloatField()
    seconds_to_limit = models.FloatField(null=True, blank=True, help_text="empty when the trend never reaches it")
    points = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "subject", "window"]
        constraints = [models.UniqueConstraint(fields=["kind", "subject", "window"], name="aiops_capacity_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} {self.window}: {self.seconds_to_limit}"


class AlertPayload(models.Model):
    """Every Alertmanager webhook body as received, stored before it is processed (replayable)."""

    received_at = models.DateTimeField(auto_now_add=True)
    receiver = models.CharField(max_length=200, blank=True)
    group_key = models.CharField(max_length=1000, blank=True)
    status = models.CharField(max_length=16, blank=True)
    payload = models.JSONField()
    alerts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        # retention: payloads are purged by received_at (aiops.services.retention)
        indexes = [models.Index(fields=["received_at"], name="aiops_payload_received_idx")]

    def __str__(self) -> str:
        return f"alertmanager payload {self.pk} ({self.status}, {self.alerts} alerts)"


# insight (aiops/insight): explanations of incidents
from .insight.models import Insight, InsightSource, InsightTrigger  # noqa: E402, F401
