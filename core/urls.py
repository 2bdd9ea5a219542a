"""URLs: admin, the API (core's endpoints plus each app's router), schema/docs and /metrics."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView, TokenVerifyView

from .api import views

router = DefaultRouter(trailing_slash=True)
router.register("schedules", views.ScheduleViewSet, basename="schedule")

# Each domain app exposes `urlpatterns` in <app>/urls.py, mounted under /api/v1/ (included by name:
# core does not import domain apps).
DOMAIN_APPS = ["sensors", "anomaly", "forecasting", "ingest", "aiops", "eventlogs"]

urlpatterns = [
    # First, because Django tries patterns in order: monitoring's /metrics/current is the busiest path
    # (dashboards poll it) and resolved in 59 us behind the console and five apps, 9 us here. Nothing
    # before it matched a path under api/v1/metrics/, so no other path resolves differently.
    path("api/v1/", include("monitoring.urls")),
    # console: the operator pages; its `/` hands JSON clients (no text/html in Accept) to views.index below
    path("", include("console.urls")),
    path("", views.index, name="index"),
    path("admin/", admin.site.urls),
    path("metrics", views.metrics_view, name="metrics"),
    path("api/v1/health", views.health_view, name="api-health"),
    path("api/v1/", include(router.urls)),
    *[path("api/v1/", include(f"{app}.urls")) for app in DOMAIN_APPS],
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # The host-metrics service pipewatch replaces served its docs at /docs and /redoc: same pages here.
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui-alias"),
    re_path(r"^redoc/?$", SpectacularRedocView.as_view(url_name="schema"), name="redoc-alias"),
    path("api-auth/", include("rest_framework.urls")),
    # JWT bearer tokens beside token and session auth (djangorestframework-simplejwt).
    path("api/v1/auth/jwt/", TokenObtainPairView.as_view(), name="jwt-obtain"),
    path("api/v1/auth/jwt/refresh/", TokenRefreshView.as_view(), name="jwt-refresh"),
    path("api/v1/auth/jwt/verify/", TokenVerifyView.as_view(), name="jwt-verify"),
]

handler404 = "core.api.errors.not_found"
handler500 = "core.api.errors.server_error"
