"""Collector authentication and throttling.

The collector must keep archiving while the database is down, so valid tokens are remembered in the
process for TOKEN_CACHE_SECONDS (a revoked token keeps working that long in a process that saw it).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from drf_spectacular.authentication import TokenScheme
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import APIException
from rest_framework.throttling import UserRateThrottle

TOKEN_CACHE_SECONDS = 60.0
_known: dict[str, tuple[float, Any, Any]] = {}


class DatabaseUnavailable(APIException):
    status_code = 503
    default_detail = "The database is unavailable and this token is not known yet; retry shortly."
    default_code = "database_unavailable"


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        hit = _known.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2]
        try:
            user, token = super().authenticate_credentials(key)
        except DatabaseError:
            raise DatabaseUnavailable from None
        _known[key] = (time.monotonic() + TOKEN_CACHE_SECONDS, user, token)
        return user, token


class CollectorThrottle(UserRateThrottle):
    """Per client (token user): EVENTLOG_THROTTLE_RATE, read on every request."""

    scope = "eventlogs"

    def get_rate(self) -> str:
        return str(settings.EVENTLOG_THROTTLE_RATE)


class CachedTokenScheme(TokenScheme):
    """The OpenAPI security scheme of the collector's token auth: DRF's header, a component of its own."""

    target_class = "eventlogs.auth.CachedTokenAuthentication"
    name = "collectorTokenAuth"
    priority = 0
