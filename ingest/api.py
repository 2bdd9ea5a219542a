"""ingest's API under /api/v1/ipr/: organisations (CRUD + harvest), rights (filter, search, CSV), runs."""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch, Q, QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from . import services
from .exporting import csv_response
from .models import HarvestRun, IPRight, IPRKind, Organization, OrgType, RightOwner
from .serializers import (
    HarvestRequestSerializer,
    HarvestRunSerializer,
    IPRightDetailSerializer,
    IPRightSerializer,
    OrganizationSerializer,
)


class SearchFilter(django_filters.CharFilter):
    """Free-text search over the given fields (icontains on any)."""

    def __init__(self, *fields: str, **kwargs: object) -> None:
        super().__init__(method=self.search, **kwargs)
        self.search_fields = fields

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        query = Q()
        for field in self.search_fields:
            query |= Q(**{f"{field}__icontains": value})
        return queryset.filter(query)


class OrganizationFilter(django_filters.FilterSet):
    org_type = django_filters.ChoiceFilter(choices=OrgType.choices)
    search = SearchFilter("name", "business_number", "corporate_number", "applicants__number")

    class Meta:
        model = Organization
        fields = ["org_type", "active"]


class IPRightFilter(django_filters.FilterSet):
    # A right held jointly is listed under each of its organisations.
    organization = django_filters.NumberFilter(field_name="organizations")
    kind = django_filters.ChoiceFilter(choices=IPRKind.choices)
    status = django_filters.CharFilter()
    applied_after = django_filters.DateFilter(field_name="application_date", lookup_expr="gte")
    applied_before = django_filters.DateFilter(field_name="application_date", lookup_expr="lte")
    search = SearchFilter("title", "application_number", "registration_number", "abstract")

    class Meta:
        model = IPRight
        fields = ["kind", "status"]


class OrganizationViewSet(viewsets.ModelViewSet):
    """Tracked organisations; numbers are normalised and validated (malformed ones get a 400 saying why)."""

    queryset = Organization.objects.prefetch_related("applicants").order_by("name", "id")
    serializer_class = OrganizationSerializer
    filterset_class = OrganizationFilter

    @extend_schema(
        request=HarvestRequestSerializer,
        responses={202: HarvestRunSerializer},
        summary="Queue a KIPRIS harvest of this organisation",
    )
    @action(detail=True, methods=["post"])
    def harvest(self, request: Request, pk: str | None = None) -> Response:
        organization = self.get_object()
        options = HarvestRequestSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        run = services.start_harvest(organization.pk, options.validated_data["kinds"] or None)
        if run is None:
            raise ValidationError("a harvest of this organisation is already queued or running")
        return Response(HarvestRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class IPRightViewSet(viewsets.ReadOnlyModelViewSet):
    """Harvested rights: filter by organisation, kind, status and application date; search the text."""

    queryset = IPRight.objects.prefetch_related(
        Prefetch("owners", queryset=RightOwner.objects.select_related("organization", "applicant"))
    ).order_by("-application_date", "id")
    filterset_class = IPRightFilter

    def get_serializer_class(self) -> type[IPRightSerializer]:
        return IPRightDetailSerializer if self.action == "retrieve" else IPRightSerializer

    @extend_schema(responses={200: OpenApiResponse(description="CSV of the filtered rights")})
    @action(detail=False, methods=["get"], url_path="export")
    def export(self, request: Request) -> StreamingHttpResponse:
        return csv_response(self.filter_queryset(self.get_queryset()))


class HarvestRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = HarvestRun.objects.prefetch_related("checkpoints__applicant").order_by("-created_at", "-id")
    serializer_class = HarvestRunSerializer
    filterset_fields = ["organization", "status"]
