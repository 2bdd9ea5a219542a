"""Behaviour detection's API: accounts by score (latest window) and one account's feature timeline."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from . import services
from .models import AccountState, AccountWindow
from .scoring import SPECS

TIMELINE_LIMIT = 1440  # a day of minutes


class AccountStateSerializer(serializers.ModelSerializer):
    window = serializers.DateTimeField(source="window_start")

    class Meta:
        model = AccountState
        fields = ["kind", "account", "group", "window", "score", "flagged", "reasons", "first_flagged_at"]


class AccountWindowSerializer(serializers.ModelSerializer):
    """One minute of the timeline: a stored window, or a quiet one (`quiet`, score null)."""

    window = serializers.DateTimeField()
    quiet = serializers.BooleanField()
    score = serializers.FloatField(allow_null=True)

    class Meta:
        model = AccountWindow
        fields = ["window", "quiet", "score", "flagged", "features", "reasons", "evidence"]


def _kind(value: str | None) -> str | None:
    if value is not None and value not in SPECS:
        raise ValidationError({"kind": f"unknown kind {value!r}; one of {', '.join(sorted(SPECS))}"})
    return value


@extend_schema(
    parameters=[
        OpenApiParameter("kind", OpenApiTypes.STR, enum=sorted(SPECS)),
        OpenApiParameter("flagged", OpenApiTypes.BOOL, description="true: flagged in the latest window"),
    ]
)
class AccountListView(generics.ListAPIView):
    """Accounts by score, highest first: each with its latest notable window's score, reasons and window.
    Only accounts that scored REASON_SCORE (2) or more at some point are listed (see AccountState)."""

    serializer_class = AccountStateSerializer

    def get_queryset(self) -> QuerySet[AccountState]:
        rows = AccountState.objects.order_by("-score", "kind", "account")
        if kind := _kind(self.request.query_params.get("kind")):
            rows = rows.filter(kind=kind)
        flagged = self.request.query_params.get("flagged")
        if flagged is not None:
            if flagged.lower() not in {"true", "false", "1", "0"}:
                raise ValidationError({"flagged": "true or false"})
            rows = rows.filter(flagged=flagged.lower() in {"true", "1"})
        return rows


class AccountDetailView(generics.GenericAPIView):
    """One account: its latest notable state (null if it never scored REASON_SCORE) and the timeline of its
    scored minutes, oldest first. A minute that carried information (a hit, or a score of 2 or more) is
    shown as scored; a quiet minute as `quiet` with its counts from the enriched table and score null."""

    serializer_class = AccountWindowSerializer

    @extend_schema(
        parameters=[OpenApiParameter("limit", OpenApiTypes.INT, description=f"latest windows (max {TIMELINE_LIMIT})")]
    )
    def get(self, request: Request, kind: str, account: str) -> Response:
        _kind(kind)
        try:
            limit = min(int(request.query_params.get("limit", TIMELINE_LIMIT)), TIMELINE_LIMIT)
        except ValueError as exc:
            raise ValidationError({"limit": "an integer"}) from exc
        state = AccountState.objects.filter(kind=kind, account=account).first()
        timeline = services.timeline(kind, account, max(limit, 1))
        if state is None and not timeline:
            raise Http404(f"no scored window of {kind} account {account!r}")
        body: dict[str, Any] = {
            **(AccountStateSerializer(state).data if state else {"kind": kind, "account": account, "score": None}),
            "timeline": AccountWindowSerializer(timeline, many=True).data,
        }
        return Response(body)
