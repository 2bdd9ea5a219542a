from __future__ import annotations

from django_celery_beat.models import PeriodicTask
from rest_framework import serializers


class ScheduleSerializer(serializers.ModelSerializer):
    """A beat entry as operators see it; only `enabled` may be changed through the API."""

    schedule = serializers.SerializerMethodField()

    class Meta:
        model = PeriodicTask
        fields = [
            "id",
            "name",
            "task",
            "enabled",
            "schedule",
            "queue",
            "expire_seconds",
            "last_run_at",
            "total_run_count",
            "description",
        ]
        read_only_fields = [field for field in fields if field != "enabled"]

    def get_schedule(self, task: PeriodicTask) -> str:
        return str(task.schedule) if task.crontab_id or task.interval_id else str(task.clocked or task.solar)


class HealthCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()
    ms = serializers.FloatField()
    cached = serializers.BooleanField(required=False)


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "failing"])
    failing = serializers.ListField(child=serializers.CharField())
    checks = serializers.DictField(child=HealthCheckSerializer())
