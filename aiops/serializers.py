"""aiops' API representations (declarative; rules live in aiops.services)."""

from __future__ import annotations

from rest_framework import serializers

from anomaly.serializers import AnomalyEventSerializer

from .models import Incident, IncidentMember, MetricSeries


class IncidentMemberSerializer(serializers.ModelSerializer):
    event = AnomalyEventSerializer(read_only=True)

    class Meta:
        model = IncidentMember
        fields = ["event", "matched_on", "added_at"]
        read_only_fields = fields


class IncidentSerializer(serializers.ModelSerializer):
    acknowledged_by: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id", "title", "group_key", "attributes", "severity", "status", "started_at", "last_event_at",
            "resolved_at", "acknowledged_at", "acknowledged_by", "resolved_by", "first_notified_at",
            "last_notified_at", "notification_count", "member_count", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class IncidentDetailSerializer(IncidentSerializer):
    memberships = IncidentMemberSerializer(many=True, read_only=True)

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "memberships"]
        read_only_fields = fields


class MetricSeriesSerializer(serializers.ModelSerializer):
    # Null until the minute scoring first saw the series (list it with select_related("state")).
    scored_until = serializers.DateTimeField(source="state.scored_until", read_only=True, allow_null=True)

    class Meta:
        model = MetricSeries
        fields = ["id", "name", "labels", "limit", "first_ts", "last_ts", "scored_until"]
        read_only_fields = fields
