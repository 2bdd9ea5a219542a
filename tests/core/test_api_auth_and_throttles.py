"""The API's cheap paths: cached token lookups (still refusing revoked tokens) and fixed-window throttles."""

from __future__ import annotations

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from core.api.authentication import CachedTokenAuthentication, _cache

pytestmark = pytest.mark.django_db


@pytest.fixture
def token() -> Token:
    _cache.clear()
    return Token.objects.create(user=User.objects.create_user("reader"))


def test_a_valid_token_is_read_from_the_database_once(token: Token, django_assert_num_queries: object) -> None:
    auth = CachedTokenAuthentication()
    user, _ = auth.authenticate_credentials(token.key)
    assert user.username == "reader"
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert auth.authenticate_credentials(token.key)[0] == user


def test_a_deleted_token_or_a_deactivated_user_is_refused_at_once(token: Token) -> None:
    auth = CachedTokenAuthentication()
    auth.authenticate_credentials(token.key)
    token.user.is_active = False
    token.user.save()
    with pytest.raises(AuthenticationFailed, match="inactive"):
        auth.authenticate_credentials(token.key)
    token.user.is_active = True
    token.user.save()
    auth.authenticate_credentials(token.key)
    token.delete()
    with pytest.raises(AuthenticationFailed, match="Invalid token"):
        auth.authenticate_credentials(token.key)


def test_an_invalid_token_is_never_cached() -> None:
    _cache.clear()
    with pytest.raises(AuthenticationFailed):
        CachedTokenAuthentication().authenticate_credentials("not-a-token")
    assert _cache == {}


def test_anonymous_clients_are_throttled_with_a_retry_after(clean_redis: redis.Redis) -> None:
    client = Client()
    with override_settings(API_THROTTLE_ANON="2/min"):
        responses = [client.get("/api/v1/sensors/") for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 429]
    assert 0 < int(responses[2]["Retry-After"]) <= 60
    assert responses[2].json()["error"] == "throttled"


def test_the_counter_is_one_key_per_client_and_window(token: Token, clean_redis: redis.Redis) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    for _ in range(3):
        client.get("/api/v1/sensors/")
    keys = clean_redis.keys("pipewatch:throttle:user:*")
    assert len(keys) == 1
    assert int(clean_redis.get(keys[0]) or 0) == 3
    assert 0 < clean_redis.ttl(keys[0]) <= 61
