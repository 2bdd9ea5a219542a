"""eventlogs' API: the collector (POST) and typed rows (GET) per kind, failed events, stats. Thin views."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from .auth import CachedTokenAuthentication, CollectorThrottle
from .models import TABLES, FailedEvent, Kind
from .serializers import (
    ROW_SERIALIZERS,
    AcceptedSerializer,
    EventQuerySerializer,
    FailedEventSerializer,
    FailedQuerySerializer,
    StatsQuerySerializer,
    StatsSerializer,
)
from .services import collector, queries


class CollectorError(APIException):
    """A PayloadError as an API error with its own status (400, 413, 415)."""

    def __init__(self, error: collector.PayloadError) -> None:
        self.status_code = error.status
        super().__init__(error.message, code={400: "bad_request", 413: "too_large", 415: "unsupported"}[error.status])


def _validated(serializer_class: type, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class EventsView(generics.ListAPIView):
    """POST: collect a batch of raw records (the collector). GET: the kind's enriched rows, filtered."""

    kind: ClassVar[str]
    authentication_classes = [CachedTokenAuthentication, SessionAuthentication]

    def get_throttles(self) -> list[BaseThrottle]:
        return [CollectorThrottle()] if self.request.method == "POST" else super().get_throttles()

    def get_queryset(self) -> QuerySet[Any]:
        try:
            return queries.events(self.kind, _validated(EventQuerySerializer, self.request))
        except queries.QueryError as exc:
            raise ValidationError({"session": str(exc)}) from exc

    @extend_schema(parameters=[EventQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request={"application/x-ndjson": OpenApiTypes.BINARY, "application/json": OpenApiTypes.OBJECT},
        responses={
            202: AcceptedSerializer,
            400: OpenApiResponse(description="bad gzip, empty body"),
            413: OpenApiResponse(description="body above EVENTLOG_MAX_BODY_BYTES"),
            415: OpenApiResponse(description="content type or encoding not accepted"),
        },
        summary="Collect raw records: NDJSON, a JSON array or one object; Content-Encoding gzip optional",
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        limit = settings.EVENTLOG_MAX_BODY_BYTES
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > limit:
            raise CollectorError(
                collector.PayloadError(413, f"a body of {declared} bytes is above the {limit}-byte limit")
            )
        stream = request.stream
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise CollectorError(collector.PayloadError(413, f"the body is above the {limit}-byte limit"))
        try:
            accepted = collector.collect(
                self.kind,
                body,
                request.META.get("CONTENT_TYPE", ""),
                request.META.get("HTTP_CONTENT_ENCODING", ""),
                request.user.get_username(),
            )
        except collector.PayloadError as exc:
            raise CollectorError(exc) from exc
        return Response(
            {"accepted": accepted.accepted, "failed": accepted.failed, "batch": accepted.batch},
            status=status.HTTP_202_ACCEPTED,
        )


def events_view(kind: str) -> type[EventsView]:
    return type(
        f"{kind.capitalize()}EventsView",
        (EventsView,),
        {"kind": kind, "serializer_class": ROW_SERIALIZERS[kind], "__doc__": EventsView.__doc__},
    )


class UnknownKindView(APIView):
    """Any other kind: 404 naming the kinds there are."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request, kind: str) -> Response:
        raise NotFound(f"unknown event kind {kind!r}: the kinds are {', '.join(Kind.values)}")

    @extend_schema(exclude=True)
    def post(self, request: Request, kind: str) -> Response:
        return self.get(request, kind)


class FailedEventsView(generics.ListAPIView):
    """Failed events (records that could not be used), newest first; `manage.py recover_failed_events` re-runs them."""

    serializer_class = FailedEventSerializer

    def get_queryset(self) -> QuerySet[FailedEvent]:
        query = _validated(FailedQuerySerializer, self.request)
        rows = FailedEvent.objects.order_by("-created_at", "-id")
        if query.get("kind"):
            rows = rows.filter(kind=query["kind"])
        if query.get("reason"):
            rows = rows.filter(reason=query["reason"])
        if query.get("recovered") is not None:
            rows = rows.filter(recovered_at__isnull=not query["recovered"])
        return rows

    @extend_schema(parameters=[FailedQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class StatsView(APIView):
    """Batches, records, enriched and failed counts per kind and hour; failed events by reason; lag."""

    @extend_schema(parameters=[StatsQuerySerializer], responses=StatsSerializer)
    def get(self, request: Request) -> Response:
        query = _validated(StatsQuerySerializer, request)
        end = query.get("end") or timezone.now()
        start = query.get("start") or end - timedelta(hours=24)
        return Response(StatsSerializer(queries.stats(start, end)).data)


KIND_VIEWS = {kind: events_view(kind) for kind in TABLES}
