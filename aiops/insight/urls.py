"""Insight's routes, under /api/v1/aiops/ beside the incidents they explain."""

from __future__ import annotations

from django.urls import path

from . import api

urlpatterns = [
    path("incidents/<int:pk>/explain", api.ExplainIncident.as_view(), name="incident-explain"),
    path("incidents/<int:pk>/insights/", api.IncidentInsightList.as_view(), name="incident-insights"),
]
