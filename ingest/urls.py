"""ingest's API routes, mounted under /api/v1/ (so: /api/v1/ipr/...)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
# Both `/organizations/7/harvest` (as the issue writes it) and `/organizations/7/harvest/`: a POST has no
# APPEND_SLASH redirect to fall back on.
router.trailing_slash = "/?"
router.register("organizations", api.OrganizationViewSet, basename="ipr-organization")
router.register("rights", api.IPRightViewSet, basename="ipr-right")
router.register("runs", api.HarvestRunViewSet, basename="ipr-run")

urlpatterns: list[URLPattern | URLResolver] = [path("ipr/", include(router.urls))]
