"""anomaly's API representations (declarative; rules live in anomaly.events and anomaly.criteria)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import AnomalyEvent, Criteria, CriteriaVersion, DetectionResult
from .services.results import method_view


class AnomalyEventSerializer(serializers.ModelSerializer):
    sensor: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="code", read_only=True)
    acknowledged_by: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AnomalyEvent
        fields = [
            "id", "source", "sensor", "subject", "metric", "method", "severity", "status", "started_at",
            "last_fired_at", "ended_at", "peak_score", "fired_count", "evidence", "acknowledged_at",
            "acknowledged_by", "resolved_by", "replayed",
        ]  # fmt: skip
        read_only_fields = fields


class CriteriaVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CriteriaVersion
        fields = ["id", "created_at", "source", "source_detail", "data_start", "data_end", "readings", "sensors",
                  "parameters"]  # fmt: skip
        read_only_fields = fields


class CriteriaSerializer(serializers.ModelSerializer):
    sensor: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="code", read_only=True)
    version_created_at = serializers.DateTimeField(source="version.created_at", read_only=True)
    version_source = serializers.CharField(source="version.source", read_only=True)

    class Meta:
        model = Criteria
        fields = [
            "id", "version", "version_created_at", "version_source", "sensor", "metric", "hour", "weekend",
            "samples", "median", "mad", "q1", "q3", "lower", "upper", "residual_lower", "residual_upper",
            "max_flat_run", "night_baseline", "cadence_minutes",
        ]  # fmt: skip
        read_only_fields = fields


class DetectionResultSerializer(serializers.ModelSerializer):
    sensor: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="code", read_only=True)
    methods = serializers.SerializerMethodField(help_text="per metric and method: ran, fired, score, state")

    class Meta:
        model = DetectionResult
        fields = ["minute", "sensor", "flow_fired", "pressure_fired", "methods"]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.DictField(child=serializers.DictField())))
    def get_methods(self, result: DetectionResult) -> dict[str, dict[str, dict[str, object]]]:
        return method_view(result)
