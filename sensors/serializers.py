"""sensors' API serializers: fields only; the range rule lives in the model (Sensor.clean)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as ModelValidationError
from django.core.validators import RegexValidator
from rest_framework import serializers

from .models import Sensor
from .services.queries import READINGS_LIMIT_DEFAULT, READINGS_LIMIT_MAX, RESAMPLE_RULES


class SensorSerializer(serializers.ModelSerializer[Sensor]):
    code = serializers.CharField(
        max_length=3, validators=[RegexValidator(r"^\d{3}$", "a sensor code is 3 digits, e.g. 007")]
    )

    class Meta:
        model = Sensor
        fields = [
            "code",
            "name",
            "location",
            "active",
            "flow_min",
            "flow_max",
            "pressure_min",
            "pressure_max",
            "auto_registered",
            "created_at",
        ]
        read_only_fields = ["auto_registered", "created_at"]

    def validate_code(self, value: str) -> str:
        others = Sensor.objects.filter(code=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(f"sensor {value} already exists")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Run the model's own rule on the stored values merged with the changes."""
        candidate = (
            Sensor(**{name: getattr(self.instance, name) for name in RANGE_FIELDS}) if self.instance else Sensor()
        )
        for name in RANGE_FIELDS:
            if name in attrs:
                setattr(candidate, name, attrs[name])
        try:
            candidate.clean()
        except ModelValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs


RANGE_FIELDS = ("flow_min", "flow_max", "pressure_min", "pressure_max")


class ReadingSerializer(serializers.Serializer[Any]):
    ts = serializers.DateTimeField(help_text="the minute the device measured")
    flow = serializers.FloatField()
    pressure = serializers.FloatField()
    status = serializers.IntegerField()
    received_at = serializers.DateTimeField()


class ResampledReadingSerializer(serializers.Serializer[Any]):
    ts = serializers.DateTimeField(help_text="start of the bucket")
    flow = serializers.FloatField(help_text="mean flow over the bucket")
    pressure = serializers.FloatField(help_text="mean pressure over the bucket")
    flow_min = serializers.FloatField()
    flow_max = serializers.FloatField()
    pressure_min = serializers.FloatField()
    pressure_max = serializers.FloatField()
    status = serializers.IntegerField(help_text="highest status code in the bucket")
    count = serializers.IntegerField(help_text="readings in the bucket")


class ReadingsQuerySerializer(serializers.Serializer[dict[str, Any]]):
    """The query string of /sensors/{code}/readings/."""

    start = serializers.DateTimeField(required=False, help_text="inclusive, ISO 8601")
    end = serializers.DateTimeField(required=False, help_text="exclusive, ISO 8601")
    limit = serializers.IntegerField(
        required=False, default=READINGS_LIMIT_DEFAULT, min_value=1, max_value=READINGS_LIMIT_MAX
    )
    resample = serializers.ChoiceField(choices=sorted(RESAMPLE_RULES), required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("start") and attrs.get("end") and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError("start must be before end")
        return attrs
