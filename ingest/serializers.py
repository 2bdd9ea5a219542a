"""ingest's API serializers: declarative; validation rules live in the models and identifiers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from .models import HarvestCheckpoint, HarvestRun, IPRight, Organization, RightOwner
from .services import ALL_KINDS, run_totals


class OrganizationSerializer(serializers.ModelSerializer):
    applicant_numbers: serializers.SlugRelatedField = serializers.SlugRelatedField(
        source="applicants", many=True, read_only=True, slug_field="number"
    )

    class Meta:
        model = Organization
        fields = [
            "id",
            "name",
            "org_type",
            "business_number",
            "corporate_number",
            "active",
            "applicant_numbers",
            "applicants_resolved_at",
            "created_at",
        ]
        read_only_fields = ["applicants_resolved_at", "created_at"]
        # Uniqueness is checked on the normalised numbers in validate(), not on the raw input.
        extra_kwargs: dict[str, dict[str, Any]] = {
            "business_number": {"validators": []},
            "corporate_number": {"validators": []},
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = Organization(**{**self._current(), **attrs})
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        for field in ("business_number", "corporate_number"):
            value = getattr(candidate, field)
            clash = Organization.objects.filter(**{field: value})
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if value and clash.exists():
                raise serializers.ValidationError({field: f"{value} already belongs to organisation {clash[0].pk}"})
            attrs[field] = value
        return attrs

    def _current(self) -> dict[str, Any]:
        if self.instance is None:
            return {}
        return {
            "name": self.instance.name,
            "org_type": self.instance.org_type,
            "business_number": self.instance.business_number,
            "corporate_number": self.instance.corporate_number,
        }


class RightOwnerSerializer(serializers.ModelSerializer):
    organization_name = serializers.CharField(source="organization.name", read_only=True)
    applicant_number = serializers.CharField(source="applicant.number", read_only=True, default=None)

    class Meta:
        model = RightOwner
        fields = ["organization", "organization_name", "applicant_number", "first_seen", "last_seen"]


class IPRightSerializer(serializers.ModelSerializer):
    owners = RightOwnerSerializer(many=True, read_only=True, help_text="every tracked organisation holding it")

    class Meta:
        model = IPRight
        exclude = ["raw", "organizations"]


class IPRightDetailSerializer(IPRightSerializer):
    class Meta(IPRightSerializer.Meta):
        exclude = []


class CheckpointSerializer(serializers.ModelSerializer):
    applicant_number = serializers.CharField(source="applicant.number", read_only=True)

    class Meta:
        model = HarvestCheckpoint
        fields = [
            "id",
            "applicant_number",
            "kind",
            "status",
            "next_page",
            "fetched",
            "total",
            "requests",
            "errors",
            "stats",
            "error",
            "updated_at",
        ]


class HarvestRunSerializer(serializers.ModelSerializer):
    checkpoints = CheckpointSerializer(many=True, read_only=True)
    totals = serializers.SerializerMethodField(
        help_text="KIPRIS calls (lookup and every page, failed ones too), errors, and records per kind:"
        ' {"requests": 12, "errors": 0, "stats": {"patent": {"new": 3, "updated": 1, "unchanged": 7}}}'
    )

    def get_totals(self, run: HarvestRun) -> dict[str, Any]:
        return asdict(run_totals(run))

    class Meta:
        model = HarvestRun
        fields = [
            "id",
            "organization",
            "kinds",
            "status",
            "error",
            "totals",
            "created_at",
            "started_at",
            "finished_at",
            "checkpoints",
        ]


class HarvestRequestSerializer(serializers.Serializer):
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_KINDS), required=False, allow_empty=False, default=list
    )
