"""anomaly's API routes, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("anomalies", api.AnomalyEventViewSet, basename="anomaly")
router.register("criteria", api.CriteriaViewSet, basename="criteria")
router.register("criteria-versions", api.CriteriaVersionViewSet, basename="criteria-version")
router.register("detection-results", api.DetectionResultViewSet, basename="detection-result")

urlpatterns: list[URLPattern | URLResolver] = [path("", include(router.urls))]
