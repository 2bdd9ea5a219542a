"""The API's one read-access policy (`API_PUBLIC_READ`), applied by default to every view."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


class PublicReadOrAuthenticated(BasePermission):
    """GET/HEAD/OPTIONS by anyone while `API_PUBLIC_READ` is on (dev default); writes always need a user.

    Read per request, so tests and operators can flip it without restarting a class cache.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.user and request.user.is_authenticated:
            return True
        return request.method in SAFE_METHODS and bool(settings.API_PUBLIC_READ)
