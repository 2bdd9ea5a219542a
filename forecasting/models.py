"""Forecasts (and, with the forecasting issue, the model registry)."""

from __future__ import annotations

from django.db import models

from sensors.models import Metric, Sensor


class Forecast(models.Model):
    """One predicted hourly value: issued at `issued_at` (an hour) for the hour starting at `target`."""

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="forecasts")
    metric = models.CharField(max_length=16, choices=Metric.choices)
    issued_at = models.DateTimeField()
    target = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        ordering = ["sensor", "metric", "issued_at", "target"]
        constraints = [
            models.UniqueConstraint(
                fields=["sensor", "metric", "issued_at", "target"], name="forecast_unique_issue_target"
            )
        ]
        indexes = [models.Index(fields=["metric", "target"], name="forecast_metric_target_idx")]

    def __str__(self) -> str:
        return f"{self.sensor_id} {self.metric} {self.target:%Y-%m-%d %H:%M}"
