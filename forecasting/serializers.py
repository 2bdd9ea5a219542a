from __future__ import annotations

from rest_framework import serializers

from sensors.models import Metric

from .models import Forecast, ModelVersion, TrainingRun


class ForecastSerializer(serializers.ModelSerializer):
    sensor = serializers.CharField(source="sensor.code", read_only=True)
    produced_by = serializers.SerializerMethodField(help_text="model or seasonal_naive")

    class Meta:
        model = Forecast
        fields = [
            "sensor",
            "metric",
            "issued_at",
            "target",
            "value",
            "lower",
            "upper",
            "degraded",
            "model_version",
            "produced_by",
        ]

    def get_produced_by(self, forecast: Forecast) -> str:
        return "model" if forecast.model_version_id else "seasonal_naive"


class ModelVersionSerializer(serializers.ModelSerializer):
    ratio = serializers.SerializerMethodField(help_text="model MAE / seasonal-naive MAE on the validation windows")

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "metric",
            "status",
            "run",
            "created_at",
            "activated_at",
            "data_start",
            "data_end",
            "validation_start",
            "sensors",
            "rows",
            "windows",
            "epochs",
            "training_seconds",
            "mae",
            "mape",
            "mae_24h",
            "baseline_mae",
            "baseline_mape",
            "baseline_mae_24h",
            "ratio",
            "artifact_dir",
            "params",
            "reason",
        ]

    def get_ratio(self, version: ModelVersion) -> float | None:
        if version.mae is None or not version.baseline_mae:
            return None
        return round(version.mae / version.baseline_mae, 4)


class TrainingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "metrics",
            "since",
            "epochs",
            "status",
            "requested_by",
            "attempts",
            "task_id",
            "worker",
            "queued_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
            "error",
            "summary",
        ]


class TrainRequestSerializer(serializers.Serializer):
    metrics = serializers.ListField(
        child=serializers.ChoiceField(choices=Metric.choices), required=False, allow_empty=False
    )
    since = serializers.DateTimeField(required=False, help_text="train on readings from here on")
    epochs = serializers.IntegerField(required=False, min_value=1, max_value=500)
