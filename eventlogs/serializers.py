"""eventlogs' API serializers: typed rows per kind, failed events, queries, collector and stats answers."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import TABLES, AdEvent, FailedEvent, HotelEvent, Kind, LolEvent, RaidEvent


class LolEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = LolEvent
        fields = "__all__"


class HotelEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = HotelEvent
        fields = "__all__"


class RaidEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = RaidEvent
        fields = "__all__"


class AdEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AdEvent
        fields = "__all__"


ROW_SERIALIZERS: dict[str, type[serializers.ModelSerializer]] = {
    Kind.LOL: LolEventSerializer,
    Kind.HOTEL: HotelEventSerializer,
    Kind.RAID: RaidEventSerializer,
    Kind.AD: AdEventSerializer,
}
assert set(ROW_SERIALIZERS) == set(TABLES)


class FailedEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = FailedEvent
        fields = "__all__"


class EventQuerySerializer(serializers.Serializer):
    account = serializers.CharField(required=False, max_length=64)
    session = serializers.UUIDField(required=False, help_text="raid only: the room (sessionID)")
    start = serializers.DateTimeField(required=False, help_text="ISO 8601, inclusive, on the event time `ts`")
    end = serializers.DateTimeField(required=False, help_text="ISO 8601, exclusive")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("start") and attrs.get("end") and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": "end must be after start"})
        return attrs


class FailedQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices, required=False)
    reason = serializers.ChoiceField(choices=FailedEvent.Reason.choices, required=False)
    recovered = serializers.BooleanField(required=False, allow_null=True, default=None)


class StatsQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False, help_text="default: 24 hours before end")
    end = serializers.DateTimeField(required=False, help_text="default: now")


class AcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="records that parsed (schema checks follow in enrichment)")
    failed = serializers.IntegerField(help_text="records that did not parse: failed events of the batch")
    batch = serializers.UUIDField()


class HourStatsSerializer(serializers.Serializer):
    kind = serializers.CharField()
    hour = serializers.DateTimeField()
    batches = serializers.IntegerField()
    records = serializers.IntegerField()
    enriched = serializers.IntegerField()
    failed = serializers.IntegerField()


class FailedStatsSerializer(serializers.Serializer):
    kind = serializers.CharField()
    reason = serializers.CharField()
    count = serializers.IntegerField()
    unrecovered = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    hours = HourStatsSerializer(many=True)
    failed = FailedStatsSerializer(many=True)
    pending_batches = serializers.IntegerField(help_text="archived, not enriched yet")
    lag_seconds = serializers.FloatField(help_text="age of the oldest pending batch")
