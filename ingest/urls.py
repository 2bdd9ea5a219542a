"""ingest's API routes, mounted under /api/v1/ (so: /api/v1/ipr/...)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter(trailing_slash=True)
router.register("organizations", api.OrganizationViewSet, basename="ipr-organization")
router.register("rights", api.IPRightViewSet, basename="ipr-right")
router.register("runs", api.HarvestRunViewSet, basename="ipr-run")

urlpatterns: list[URLPattern | URLResolver] = [path("ipr/", include(router.urls))]
