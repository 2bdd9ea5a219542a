"""Token authentication with the token lookup cached per process.

DRF's TokenAuthentication reads the token and its user from the database on every request: one query
that is most of the cost of a cheap endpoint (`/api/v1/metrics/current` answers from Redis otherwise).
The cache keeps a validated token for API_TOKEN_CACHE_SECONDS in each process. A token deleted in the
admin stops working at once in the process that deleted it and within that many seconds everywhere else;
a user deactivated likewise. Invalid tokens are never cached (each one is checked against the database).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

# Bounded: a process sees at most a few hundred distinct tokens; past this it starts over.
MAX_CACHED_TOKENS = 10_000

_cache: dict[str, tuple[float, tuple[Any, Token]]] = {}


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        now = time.monotonic()
        cached = _cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        user_and_token = super().authenticate_credentials(key)  # raises AuthenticationFailed when invalid
        if len(_cache) >= MAX_CACHED_TOKENS:
            _cache.clear()
        _cache[key] = (now + settings.API_TOKEN_CACHE_SECONDS, user_and_token)
        return user_and_token


@receiver(post_delete, sender=Token)
def _forget_deleted_token(sender: type[Token], instance: Token, **_: Any) -> None:
    _cache.pop(instance.key, None)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _forget_changed_user(sender: type, instance: Any, **_: Any) -> None:
    """A user deactivated (or edited) in this process is checked again on their next request."""
    for key, (_expires, (user, _token)) in list(_cache.items()):
        if user.pk == instance.pk:
            _cache.pop(key, None)
