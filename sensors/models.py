"""Field sensors and their minute readings."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models


class Metric(models.TextChoices):
    FLOW = "flow", "flow rate"
    PRESSURE = "pressure", "pressure"


class Sensor(models.Model):
    """One field sensor, addressed on the serial line by a 3-digit code.

    Physical ranges bound what the sensor can report: a value outside them is a sensor fault, not water.
    """

    code = models.CharField(max_length=3, unique=True, help_text="3-digit code used on the serial line")
    name = models.CharField(max_length=200, blank=True)
    location = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)
    flow_min = models.FloatField(default=0.0, help_text="lowest physically possible flow (m³/h)")
    flow_max = models.FloatField(default=1000.0, help_text="highest physically possible flow (m³/h)")
    pressure_min = models.FloatField(default=0.0, help_text="lowest physically possible pressure (bar)")
    pressure_max = models.FloatField(default=16.0, help_text="highest physically possible pressure (bar)")
    auto_registered = models.BooleanField(default=False, help_text="created from its first frame")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        # An empty range would reject every reading; the database refuses one whatever path wrote it.
        constraints = [
            models.CheckConstraint(condition=models.Q(flow_min__lt=models.F("flow_max")), name="sensor_flow_range"),
            models.CheckConstraint(
                condition=models.Q(pressure_min__lt=models.F("pressure_max")), name="sensor_pressure_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip()

    def clean(self) -> None:
        """The same rule as the check constraints, with a message naming the fields (admin, API)."""
        errors = {}
        if self.flow_min >= self.flow_max:
            errors["flow_max"] = f"flow_min ({self.flow_min}) must be below flow_max ({self.flow_max})"
        if self.pressure_min >= self.pressure_max:
            errors["pressure_max"] = (
                f"pressure_min ({self.pressure_min}) must be below pressure_max ({self.pressure_max})"
            )
        if errors:
            raise ValidationError(errors)


class Reading(models.Model):
    """One minute of one sensor. (sensor, ts) is unique: a repeated frame for a minute is a no-op."""

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="readings")
    ts = models.DateTimeField(help_text="the minute the device measured (timezone-aware, seconds = 0)")
    flow = models.FloatField()
    pressure = models.FloatField()
    status = models.PositiveSmallIntegerField(default=0, help_text="device status code (00 = healthy)")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sensor", "ts"]
        constraints = [models.UniqueConstraint(fields=["sensor", "ts"], name="reading_unique_sensor_minute")]
        # (sensor, ts) is served by the unique constraint's index; ts alone serves "every sensor, this minute".
        indexes = [models.Index(fields=["ts"], name="reading_ts_idx")]

    def __str__(self) -> str:
        return f"{self.sensor_id}@{self.ts:%Y-%m-%d %H:%M}"


class HourlyPrediction(models.Model):
    """Predicted flow and pressure for one sensor and hour, handed over by forecasting for the server frame.

    sensors imports no other domain app: forecasting pushes its values here (sensors.predictions).
    """

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="hourly_predictions")
    hour = models.DateTimeField(help_text="the hour the prediction is for (timezone-aware, minutes = 0)")
    flow = models.FloatField()
    pressure = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sensor", "hour"]
        constraints = [models.UniqueConstraint(fields=["sensor", "hour"], name="hourly_prediction_unique")]

    def __str__(self) -> str:
        return f"{self.sensor_id}@{self.hour:%Y-%m-%d %H}h"


class DailyForecast(models.Model):
    """One of a sensor's 7 daily forecast rows (device layout), handed over by forecasting every hour.

    Sent to the device after the server frame at the full hour (docs/serial-protocol.md).
    """

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="daily_forecasts")
    code = models.PositiveSmallIntegerField(help_text="day of the forecast, 1 (the next 24 h) to 7")
    start = models.DateField(help_text="local date of the day's first hour")
    end = models.DateField(help_text="local date of the day's last hour")
    flow = models.FloatField()
    pressure = models.FloatField()
    issued_at = models.DateTimeField()

    class Meta:
        ordering = ["sensor", "code"]
        constraints = [models.UniqueConstraint(fields=["sensor", "code"], name="daily_forecast_unique")]

    def __str__(self) -> str:
        return f"{self.sensor_id} day {self.code}"
