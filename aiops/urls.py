"""aiops' API routes, mounted under /api/v1/ (everything under aiops/)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("incidents", api.IncidentViewSet, basename="incident")

urlpatterns: list[URLPattern | URLResolver] = [
    path("aiops/analyze", api.AnalyzeView.as_view(), name="aiops-analyze"),
    path("aiops/alerts", api.AlertsView.as_view(), name="aiops-alerts"),
    path("aiops/metrics/", api.MetricsView.as_view(), name="aiops-metrics"),
    path("aiops/metrics", api.MetricsWithoutSlashView.as_view()),
    path("aiops/metrics/<str:name>/", api.MetricReadView.as_view(), name="aiops-metric"),
    path("aiops/", include(router.urls)),
    path("aiops/", include("aiops.insight.urls")),  # insight: explain an incident, list its insights
]
