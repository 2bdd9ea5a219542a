"""Forecasts, the model registry (one row per trained model version) and training runs."""

from __future__ import annotations

from django.db import models

from sensors.models import Metric, Sensor


class ModelVersion(models.Model):
    """One trained model for one metric, with how it scored against seasonal naive on the same windows.

    At most one version per metric is ACTIVE; prediction serves it, or the seasonal-naive baseline when
    there is none (or its artifact cannot be loaded).
    """

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "candidate (being evaluated)"
        ACTIVE = "active", "active (serving)"
        REJECTED = "rejected", "rejected (did not beat the baseline)"
        RETIRED = "retired", "retired (replaced or deactivated)"

    metric = models.CharField(max_length=16, choices=Metric.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    run = models.ForeignKey("TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="versions")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    data_start = models.DateTimeField(help_text="first hour of training data")
    data_end = models.DateTimeField(help_text="last hour of data (validation included)")
    validation_start = models.DateTimeField(help_text="first origin of the validation windows")
    sensors = models.PositiveIntegerField(default=0)
    rows = models.BigIntegerField(default=0, help_text="minute readings read")
    windows = models.PositiveIntegerField(default=0, help_text="training windows seen")
    epochs = models.PositiveIntegerField(default=0, help_text="epochs run (early stopping may end sooner)")
    training_seconds = models.FloatField(default=0.0, help_text="read + resample + train + validate, wall")
    mae = models.FloatField(null=True, blank=True, help_text="model MAE over the 168-hour horizon")
    mape = models.FloatField(null=True, blank=True)
    mae_24h = models.FloatField(null=True, blank=True)
    baseline_mae = models.FloatField(null=True, blank=True, help_text="seasonal naive (same hour last week)")
    baseline_mape = models.FloatField(null=True, blank=True)
    baseline_mae_24h = models.FloatField(null=True, blank=True)
    artifact_dir = models.CharField(max_length=300, blank=True, help_text="relative to the model directory")
    params = models.JSONField(default=dict, blank=True, help_text="hyper-parameters and shapes")
    reason = models.TextField(blank=True, help_text="why it was activated or rejected")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["metric"], condition=models.Q(status="active"), name="modelversion_one_active_per_metric"
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric} v{self.pk} ({self.status})"


class TrainingRun(models.Model):
    """One request to train: queued, running (with a heartbeat), then succeeded or failed with the error.

    Training is not acks_late (see tasks.py), so this row is what survives a worker that dies mid-run:
    the watchdog notices the stale heartbeat and queues the run again.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    metrics = models.JSONField(default=list, help_text='metrics to train, e.g. ["flow", "pressure"]')
    since = models.DateTimeField(null=True, blank=True, help_text="train on readings from here on")
    epochs = models.PositiveIntegerField(null=True, blank=True, help_text="empty: the configured default")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.CharField(max_length=150, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid running it")
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-queued_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="trainingrun_status_heartbeat")]

    def __str__(self) -> str:
        return f"run {self.pk} {','.join(self.metrics)} ({self.status})"


class HourlyMean(models.Model):
    """Hourly means of the readings, rolled up incrementally by the hourly run.

    The hourly run reads two weeks for every sensor; from minute readings that is 20 M rows for 1,000
    sensors, from this table 336 k. A metric whose minutes were all non-finite is NULL for the hour.
    """

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    flow = models.FloatField(null=True)
    pressure = models.FloatField(null=True)
    rows = models.PositiveIntegerField(help_text="readings behind the means")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sensor", "hour"], name="hourlymean_unique_sensor_hour")]
        indexes = [models.Index(fields=["hour"], name="hourlymean_hour_idx")]

    def __str__(self) -> str:
        return f"{self.sensor_id}@{self.hour:%Y-%m-%d %H}"


class Forecast(models.Model):
    """One predicted hourly value: issued at `issued_at` (an hour) for the hour starting at `target`."""

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="forecasts")
    metric = models.CharField(max_length=16, choices=Metric.choices)
    issued_at = models.DateTimeField()
    target = models.DateTimeField()
    value = models.FloatField()
    lower = models.FloatField(null=True, blank=True, help_text="10 % bound (calibrated on validation); empty: none")
    upper = models.FloatField(null=True, blank=True, help_text="90 % bound (calibrated on validation); empty: none")
    degraded = models.BooleanField(default=False, help_text="issued through a gap in the last day of inputs")
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="forecasts",
        help_text="empty: the seasonal-naive baseline produced it",
    )

    class Meta:
        ordering = ["sensor", "metric", "issued_at", "target"]
        constraints = [
            models.UniqueConstraint(
                fields=["sensor", "metric", "issued_at", "target"], name="forecast_unique_issue_target"
            )
        ]
        indexes = [
            models.Index(fields=["metric", "target"], name="forecast_metric_target_idx"),
            models.Index(fields=["issued_at"], name="forecast_issued_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sensor_id} {self.metric} {self.target:%Y-%m-%d %H:%M}"
