"""monitoring's API serializers: query parameters (validated, with readable errors) and responses."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from .services.queries import AGGREGATES, STEPS

MAX_SERIES_LIMIT = 1000
MAX_PROCESS_LIMIT = 100


class QueryDateTimeField(serializers.DateTimeField):
    """ISO 8601; an unencoded `+09:00` offset arrives as ` 09:00` in a query string, so it is repaired."""

    def to_internal_value(self, value: Any) -> Any:
        if isinstance(value, str):
            value = re.sub(r" (\d\d:?\d\d)$", r"+\1", value.strip())
        return super().to_internal_value(value)


def _limit(default: int, maximum: int) -> serializers.IntegerField:
    message = f"limit must be an integer between 1 and {maximum}"
    return serializers.IntegerField(
        default=default,
        min_value=1,
        max_value=maximum,
        error_messages={"invalid": message, "min_value": message, "max_value": message},
        help_text=f"how many points (default {default}, at most {maximum})",
    )


class SeriesQuerySerializer(serializers.Serializer):
    host = serializers.CharField(required=False, help_text="host name (default: every host)")
    start = QueryDateTimeField(required=False, help_text="ISO 8601, inclusive; naive times are in TIME_ZONE")
    end = QueryDateTimeField(required=False, help_text="ISO 8601, inclusive (default: now)")
    limit = _limit(100, MAX_SERIES_LIMIT)
    step = serializers.ChoiceField(
        choices=list(STEPS),
        required=False,
        error_messages={"invalid_choice": f"step must be one of {', '.join(STEPS)}"},
        help_text="downsample in the database to one point per bucket and host",
    )
    agg = serializers.ChoiceField(
        choices=list(AGGREGATES),
        default="avg",
        error_messages={"invalid_choice": f"agg must be one of {', '.join(AGGREGATES)}"},
        help_text="how a bucket's samples are combined (with step)",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and end < start:
            raise serializers.ValidationError({"end": f"end ({end.isoformat()}) is before start ({start.isoformat()})"})
        return attrs


class ProcessQuerySerializer(serializers.Serializer):
    host = serializers.CharField(required=False, help_text="host name (default: the host that reported last)")
    limit = _limit(10, MAX_PROCESS_LIMIT)
    sort_by = serializers.ChoiceField(
        choices=["cpu", "memory"],
        default="cpu",
        error_messages={"invalid_choice": "sort_by must be cpu or memory"},
    )


class HostQuerySerializer(serializers.Serializer):
    host = serializers.CharField(required=False, help_text="host name (default: the host that reported last)")


class SeriesResponseSerializer(serializers.Serializer):
    series = serializers.CharField()
    step = serializers.CharField(allow_null=True)
    agg = serializers.CharField(allow_null=True)
    count = serializers.IntegerField()
    results = serializers.ListField(child=serializers.DictField(), help_text="points, oldest first")


class ProcessSerializer(serializers.Serializer):
    pid = serializers.IntegerField()
    name = serializers.CharField()
    username = serializers.CharField()
    status = serializers.CharField()
    threads = serializers.IntegerField()
    cpu_percent = serializers.FloatField(help_text="percent of one CPU since the previous read")
    memory_percent = serializers.FloatField()
    memory_rss_bytes = serializers.IntegerField()


class ProcessesResponseSerializer(serializers.Serializer):
    host = serializers.CharField()
    timestamp = serializers.DateTimeField()
    sort_by = serializers.CharField()
    processes = ProcessSerializer(many=True)


class HostSerializer(serializers.Serializer):
    name = serializers.CharField()
    active = serializers.BooleanField()
    cpu_count = serializers.IntegerField()
    memory_total_bytes = serializers.IntegerField()
    platform = serializers.CharField()
    boot_time = serializers.DateTimeField(allow_null=True)
    interval_seconds = serializers.FloatField()
    first_seen_at = serializers.DateTimeField()
    last_report_at = serializers.DateTimeField(allow_null=True)
    reporting = serializers.BooleanField()
