"""anomaly's tables: events, versioned criteria, per-sensor method settings, night flow and detection runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from sensors.models import Metric, Sensor


class Source(models.TextChoices):
    SENSOR = "sensor", "sensor"
    HOST = "host", "host"
    METRIC = "metric", "custom metric"
    ACCOUNT = "account", "event-log account"
    ALERT = "alert", "Prometheus alert"


class Severity(models.TextChoices):
    INFO = "info", "info"
    WARNING = "warning", "warning"
    CRITICAL = "critical", "critical"


class EventStatus(models.TextChoices):
    OPEN = "open", "open"
    ACKNOWLEDGED = "acknowledged", "acknowledged"
    RESOLVED = "resolved", "resolved"


class AnomalyEvent(models.Model):
    """One anomalous episode of one (subject, metric, method): opened on the first firing minute, extended
    while it keeps firing, closed after a number of clean minutes (or by an operator).

    At most one unresolved event exists per (source, subject, metric, method) — a partial unique constraint,
    so concurrent detectors can never open two. Replayed events (`replayed`, from `replay_detection` over
    history) have their own slot in it, so a replay in progress never blocks or extends a live event.
    """

    source = models.CharField(max_length=8, choices=Source.choices)
    sensor = models.ForeignKey(Sensor, null=True, blank=True, on_delete=models.CASCADE, related_name="anomaly_events")
    subject = models.CharField(max_length=200, help_text="sensor code, host name, metric series, account or alert")
    metric = models.CharField(max_length=64)
    method = models.CharField(max_length=32)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    status = models.CharField(max_length=16, choices=EventStatus.choices, default=EventStatus.OPEN)
    started_at = models.DateTimeField(help_text="first minute the method fired")
    last_fired_at = models.DateTimeField(help_text="latest minute the method fired")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="when the event was resolved")
    peak_score = models.FloatField(default=0.0)
    fired_count = models.PositiveIntegerField(default=1, help_text="minutes the method fired during the event")
    evidence = models.JSONField(default=dict, blank=True, help_text="values and criteria at the peak")
    replayed = models.BooleanField(
        default=False, db_default=False, help_text="found by replay_detection over history: never notified"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "subject", "metric", "method", "replayed"],
                condition=~Q(status="resolved"),
                name="anomaly_one_unresolved_event",
            )
        ]
        indexes = [
            models.Index(fields=["started_at"], name="anomaly_event_started_idx"),
            models.Index(fields=["sensor", "metric", "method"], name="anomaly_event_sensor_idx"),
            models.Index(fields=["status"], name="anomaly_event_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.metric} {self.method} {self.status} from {self.started_at:%Y-%m-%d %H:%M}"


class CriteriaSource(models.TextChoices):
    FILE = "file", "initial data file"
    DATABASE = "database", "readings in the database"
    REPLAY = "replay", "history before a replayed period (replay_detection only)"


class CriteriaVersion(models.Model):
    """One build of the criteria: which data (source, range) and which parameters. Detection uses the newest."""

    created_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=16, choices=CriteriaSource.choices)
    source_detail = models.CharField(max_length=500, blank=True, help_text="file path or query description")
    data_start = models.DateTimeField()
    data_end = models.DateTimeField()
    readings = models.PositiveBigIntegerField(default=0, help_text="readings the criteria were computed from")
    sensors = models.PositiveIntegerField(default=0)
    parameters = models.JSONField(default=dict)

    class Meta:
        ordering = ["-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"criteria v{self.pk} ({self.source}, {self.data_start:%Y-%m-%d}..{self.data_end:%Y-%m-%d})"


class Criteria(models.Model):
    """Normal behaviour of one sensor's metric in one hour of the day (local time) on weekdays or weekends.

    `lower`/`upper` is the value band (the wider of median +- k robust sigma and the IQR fences), `residual_lower`/
    `residual_upper` the band of reading - hourly forecast, `max_flat_run` the longest run of identical
    consecutive readings seen in normal data (readings at `cadence_minutes`), `night_baseline` the typical
    night-minimum flow (flow rows only), `cadence_minutes` the sensor's interval between readings in the
    data (the same on every row of a sensor and version).
    """

    version = models.ForeignKey(CriteriaVersion, on_delete=models.CASCADE, related_name="rows")
    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="criteria")
    metric = models.CharField(max_length=16, choices=Metric.choices)
    hour = models.PositiveSmallIntegerField(help_text="hour of day, local time (0-23)")
    weekend = models.BooleanField(default=False, help_text="Saturday/Sunday (demand peaks later and lower)")
    samples = models.PositiveIntegerField(default=0)
    median = models.FloatField()
    mad = models.FloatField()
    q1 = models.FloatField()
    q3 = models.FloatField()
    lower = models.FloatField()
    upper = models.FloatField()
    residual_lower = models.FloatField()
    residual_upper = models.FloatField()
    max_flat_run = models.PositiveIntegerField(default=0)
    night_baseline = models.FloatField(null=True, blank=True)
    cadence_minutes = models.PositiveSmallIntegerField(
        default=1, db_default=1, help_text="median minutes between the sensor's latest readings in the data"
    )

    class Meta:
        ordering = ["version", "sensor", "metric", "weekend", "hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "sensor", "metric", "hour", "weekend"], name="criteria_unique_slot"
            )
        ]
        indexes = [models.Index(fields=["hour", "weekend"], name="criteria_slot_idx")]

    def __str__(self) -> str:
        return (
            f"v{self.version_id} {self.sensor_id} {self.metric} {'weekend' if self.weekend else 'weekday'} h{self.hour}"
        )


class SensorMethodSettings(models.Model):
    """Per-sensor overrides of the detection settings; an empty field means the global default."""

    sensor = models.OneToOneField(Sensor, on_delete=models.CASCADE, related_name="method_settings")
    system_enabled = models.BooleanField(default=True)
    value_enabled = models.BooleanField(default=True)
    predict_enabled = models.BooleanField(default=True)
    night_enabled = models.BooleanField(default=True)
    value_k = models.FloatField(null=True, blank=True, help_text="band half-width in robust sigma")
    gap_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="missing minutes before a gap fires")
    stuck_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="identical minutes before stuck")
    night_margin = models.FloatField(null=True, blank=True, help_text="relative rise over the night baseline")
    night_nights = models.PositiveSmallIntegerField(null=True, blank=True, help_text="consecutive nights")
    severity = models.CharField(max_length=16, choices=Severity.choices, blank=True)

    class Meta:
        verbose_name = "sensor method settings"
        verbose_name_plural = "sensor method settings"

    def __str__(self) -> str:
        return f"settings for {self.sensor}"


class NightFlow(models.Model):
    """The mean flow of one sensor over one 10-minute block of the night (22:00-05:00 local)."""

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="night_flows")
    start = models.DateTimeField(help_text="start of the 10-minute block")
    night = models.DateField(help_text="the evening the night began")
    mean_flow = models.FloatField()
    samples = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["sensor", "start"]
        constraints = [models.UniqueConstraint(fields=["sensor", "start"], name="nightflow_unique_block")]
        indexes = [models.Index(fields=["night"], name="nightflow_night_idx")]

    def __str__(self) -> str:
        return f"{self.sensor_id} {self.start:%Y-%m-%d %H:%M} {self.mean_flow:.3f}"


class NightMinimum(models.Model):
    """One sensor's night: its minimum 10-minute mean, the baseline it was compared with and the streak
    of consecutive nights above baseline·(1 + margin) ending with it (the night method reads this)."""

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="night_minima")
    night = models.DateField()
    min_flow = models.FloatField()
    baseline = models.FloatField(null=True, blank=True)
    exceeded = models.BooleanField(default=False)
    streak = models.PositiveSmallIntegerField(default=0)
    blocks = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sensor", "night"]
        constraints = [models.UniqueConstraint(fields=["sensor", "night"], name="nightminimum_unique_night")]
        indexes = [models.Index(fields=["night"], name="nightminimum_night_idx")]

    def __str__(self) -> str:
        return f"{self.sensor_id} night of {self.night} min {self.min_flow:.3f}"


class DetectionRun(models.Model):
    """One evaluated minute. Its existence is what makes detection exactly-once per minute: the run row is
    written in the same transaction as the events it caused, and a minute with a row is never evaluated again."""

    minute = models.DateTimeField(unique=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    sensors = models.PositiveIntegerField(default=0)
    fired = models.JSONField(default=dict, help_text="sensors fired per metric/method")
    no_forecast = models.PositiveIntegerField(default=0)
    no_criteria = models.PositiveIntegerField(default=0)
    duration_ms = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-minute"]

    def __str__(self) -> str:
        return f"detection {self.minute:%Y-%m-%d %H:%M}"


class DetectionResult(models.Model):
    """What detection decided for one sensor and minute, so an operator can see why it was or was not flagged.

    Per metric, in FLAG_METHODS order (flow: system, value, predict, night; pressure: system, value,
    predict): `*_ran` has a 1 where the method could judge (its state is not no_data / no_criteria /
    no_forecast), `*_fired` a 1 where it fired (the alert frame's digits); `scores` and `states` list
    each method's score and state, flow's then pressure's. Kept ANOMALY_RESULTS_RETENTION_DAYS (30).
    """

    minute = models.DateTimeField()
    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="detection_results")
    flow_ran = models.CharField(max_length=4)
    flow_fired = models.CharField(max_length=4)
    pressure_ran = models.CharField(max_length=3)
    pressure_fired = models.CharField(max_length=3)
    scores = models.JSONField(default=list)
    states = models.JSONField(default=list)

    class Meta:
        ordering = ["sensor", "minute"]
        constraints = [models.UniqueConstraint(fields=["sensor", "minute"], name="detection_result_unique")]
        indexes = [models.Index(fields=["minute"], name="detection_result_minute_idx")]

    def __str__(self) -> str:
        return f"{self.sensor_id}@{self.minute:%Y-%m-%d %H:%M} {self.flow_fired}/{self.pressure_fired}"
