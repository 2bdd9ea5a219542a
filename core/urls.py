"""URLs: admin, the API (core's endpoints plus each app's router), schema/docs and /metrics."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from .api import views

router = DefaultRouter(trailing_slash=True)
router.register("schedules", views.ScheduleViewSet, basename="schedule")

# Each domain app exposes `urlpatterns` in <app>/urls.py, mounted under /api/v1/ (included by name:
# core does not import domain apps).
DOMAIN_APPS = ["sensors", "anomaly", "forecasting", "ingest", "monitoring"]

urlpatterns = [
    path("", views.index, name="index"),
    path("admin/", admin.site.urls),
    path("metrics", views.metrics_view, name="metrics"),
    path("api/v1/health", views.health_view, name="api-health"),
    path("api/v1/", include(router.urls)),
    *[path("api/v1/", include(f"{app}.urls")) for app in DOMAIN_APPS],
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api-auth/", include("rest_framework.urls")),
]

handler404 = "core.api.errors.not_found"
handler500 = "core.api.errors.server_error"
