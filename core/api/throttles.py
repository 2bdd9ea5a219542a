"""DRF throttles whose rates are read from settings on every request (not frozen at import)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class AnonThrottle(AnonRateThrottle):
    def get_rate(self) -> str:
        return str(settings.API_THROTTLE_ANON)


class UserThrottle(UserRateThrottle):
    def get_rate(self) -> str:
        return str(settings.API_THROTTLE_USER)
