from __future__ import annotations

from django_celery_beat.models import PeriodicTask
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class CrontabSerializer(serializers.Serializer):
    """The crontab as its five fields and zone (the old scheduler's contract), not Python's repr."""

    minute = serializers.CharField()
    hour = serializers.CharField()
    day_of_week = serializers.CharField()
    day_of_month = serializers.CharField()
    month_of_year = serializers.CharField()
    timezone = serializers.CharField()


class ScheduleSerializer(serializers.ModelSerializer):
    """A beat entry as operators see it; only `enabled` may be changed through the API."""

    schedule = serializers.SerializerMethodField(help_text="human-readable, e.g. 'At 02:30 AM Asia/Seoul'")
    crontab = serializers.SerializerMethodField()

    class Meta:
        model = PeriodicTask
        fields = [
            "id",
            "name",
            "task",
            "enabled",
            "schedule",
            "crontab",
            "queue",
            "expire_seconds",
            "last_run_at",
            "total_run_count",
            "description",
        ]
        read_only_fields = [field for field in fields if field != "enabled"]

    def get_schedule(self, task: PeriodicTask) -> str:
        if task.crontab_id:
            return str(task.crontab.human_readable)  # names the zone too, e.g. "At 02:30 AM Asia/Seoul"
        if task.interval_id:
            return f"every {task.interval.every} {task.interval.period}"
        return str(task.clocked or task.solar)

    @extend_schema_field(CrontabSerializer(allow_null=True))
    def get_crontab(self, task: PeriodicTask) -> dict[str, str] | None:
        if not task.crontab_id:
            return None
        crontab = task.crontab
        fields = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
        return {**{name: str(getattr(crontab, name)) for name in fields}, "timezone": str(crontab.timezone)}


class HealthCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()
    ms = serializers.FloatField()
    cached = serializers.BooleanField(required=False)


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "failing"])
    failing = serializers.ListField(child=serializers.CharField())
    checks = serializers.DictField(child=HealthCheckSerializer())
