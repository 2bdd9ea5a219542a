"""Insight's API: explain an incident on demand, and list its insights.

`POST /api/v1/aiops/incidents/{id}/explain` answers at once with the rules' insight (milliseconds); when
an LLM is configured its answer is queued on the insight queue (`"llm": "queued"`) and appears under
`GET /api/v1/aiops/incidents/{id}/insights/` when ready: a web worker never waits on a model.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aiops.models import Incident

from . import service
from .models import Insight


class InsightSerializer(serializers.ModelSerializer):
    class Meta:
        model = Insight
        fields = [
            "id", "incident", "event", "source", "trigger", "model", "prompt_hash", "context_chars", "redactions",
            "latency_ms", "calls", "prompt_tokens", "completion_tokens", "answer", "cause_code", "error",
            "requested_by", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class IncidentInsightList(generics.ListAPIView):
    """Every insight of one incident, newest first. The answer is untrusted text: show it escaped."""

    serializer_class = InsightSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[Insight]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reads the model without a request
            return Insight.objects.none()
        generics.get_object_or_404(Incident, pk=self.kwargs["pk"])
        return Insight.objects.filter(incident_id=self.kwargs["pk"]).order_by("-created_at", "-id")


class ExplainIncident(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer("ExplainAnswer", {"insight": InsightSerializer(), "llm": serializers.CharField()})
        },
        summary="Explain the incident now (rules at once; the LLM's answer queued when one is configured)",
    )
    def post(self, request: Request, pk: int) -> Response:
        incident = generics.get_object_or_404(Incident, pk=pk)
        row, llm = service.explain_on_demand(incident=incident, requested_by=request.user.get_username())
        return Response({"insight": InsightSerializer(row).data, "llm": llm}, status=status.HTTP_201_CREATED)
