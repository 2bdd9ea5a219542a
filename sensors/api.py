"""sensors' API: the sensor registry and each sensor's readings (raw or resampled in the database)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .models import Sensor
from .serializers import ReadingSerializer, ReadingsQuerySerializer, ResampledReadingSerializer, SensorSerializer
from .services.queries import readings_query


class SensorFilter(django_filters.FilterSet):
    location = django_filters.CharFilter(lookup_expr="icontains")
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Sensor
        fields = ["active", "auto_registered", "location", "name"]


class SensorViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Sensors by their 3-digit code: reads follow API_PUBLIC_READ; creating and editing need a user."""

    queryset = Sensor.objects.all()
    serializer_class = SensorSerializer
    filterset_class = SensorFilter
    lookup_field = "code"
    lookup_value_regex = r"\d{3}"

    @extend_schema(
        summary="A sensor's readings, oldest first (without `start`: the most recent `limit`)",
        parameters=[ReadingsQuerySerializer],
        responses={200: ResampledReadingSerializer(many=True), 400: OpenApiResponse(description="bad query")},
    )
    @action(detail=True, methods=["get"])
    def readings(self, request: Request, code: str | None = None) -> Response:
        query = ReadingsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        sensor = self.get_object()
        rows = readings_query(
            sensor,
            start=params.get("start"),
            end=params.get("end"),
            limit=params["limit"],
            resample=params.get("resample") or "",
        )
        serializer = ResampledReadingSerializer if params.get("resample") else ReadingSerializer
        return Response(
            {
                "sensor": sensor.code,
                "resample": params.get("resample") or None,
                "count": len(rows),
                "results": serializer(rows, many=True).data,
            }
        )
