"""sensors's API routes, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver
from rest_framework.routers import DefaultRouter

from .api import SensorViewSet

router = DefaultRouter(trailing_slash=True)
router.register("sensors", SensorViewSet, basename="sensor")

urlpatterns: list[URLPattern | URLResolver] = list(router.urls)
