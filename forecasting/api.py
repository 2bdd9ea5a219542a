"""forecasting's API: forecasts (latest issue by default), model versions, training runs, train on demand."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Max, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from sensors.models import Metric, Sensor

from .models import Forecast, ModelVersion, TrainingRun
from .serializers import (
    ForecastSerializer,
    ModelVersionSerializer,
    TrainingRunSerializer,
    TrainRequestSerializer,
)
from .services import ForecastError, runs
from .services.prediction import daily_rows


class ForecastFilter(django_filters.FilterSet):
    sensor = django_filters.CharFilter(field_name="sensor__code", help_text="sensor code, e.g. 001")
    metric = django_filters.ChoiceFilter(choices=Metric.choices)
    issued_after = django_filters.IsoDateTimeFilter(
        field_name="issued_at", lookup_expr="gte", help_text="every issue since then (default: the latest only)"
    )

    class Meta:
        model = Forecast
        fields = ["sensor", "metric", "issued_after"]


class ForecastViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Hourly forecasts. Without `issued_after`, only the latest issue (per the other filters)."""

    queryset = Forecast.objects.select_related("sensor").order_by("sensor__code", "metric", "issued_at", "target")
    serializer_class = ForecastSerializer
    filterset_class = ForecastFilter

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        filtered = super().filter_queryset(queryset)
        if "issued_after" in self.request.query_params:
            return filtered
        latest = filtered.aggregate(latest=Max("issued_at"))["latest"]
        return filtered.filter(issued_at=latest) if latest else filtered.none()

    @extend_schema(summary="The latest 7-day forecast of one sensor as daily rows in the seed layout")
    @action(detail=False, methods=["get"])
    def daily(self, request: Request) -> Response:
        code = request.query_params.get("sensor")
        if not code:
            raise ValidationError({"sensor": "give the sensor code, e.g. ?sensor=001"})
        sensor = Sensor.objects.filter(code=code).first()
        if sensor is None:
            raise ValidationError({"sensor": f"no sensor with code {code!r}"})
        latest = Forecast.objects.filter(sensor=sensor).aggregate(latest=Max("issued_at"))["latest"]
        lines = daily_rows(sensor, latest) if latest else []
        return Response({"sensor": code, "issued_at": latest, "rows": lines})


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Model versions with their validation errors and the seasonal-naive baseline's; POST train to queue one."""

    queryset = ModelVersion.objects.order_by("-created_at")
    serializer_class = ModelVersionSerializer
    filterset_fields = ["metric", "status"]

    @extend_schema(request=TrainRequestSerializer, responses={202: TrainingRunSerializer}, summary="Queue training")
    @action(detail=False, methods=["post"], permission_classes=[permissions.IsAuthenticated])
    def train(self, request: Request) -> Response:
        body = TrainRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = runs.request_training(
                body.validated_data.get("metrics"),
                since=body.validated_data.get("since"),
                epochs=body.validated_data.get("epochs"),
                requested_by=str(request.user),
            )
        except ForecastError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Training runs: queued, running (heartbeat), succeeded or failed with the error."""

    queryset = TrainingRun.objects.order_by("-queued_at")
    serializer_class = TrainingRunSerializer
    filterset_fields = ["status"]
