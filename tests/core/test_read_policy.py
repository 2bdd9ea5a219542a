"""API_PUBLIC_READ: every GET path of the OpenAPI schema, anonymously, under both settings; JWT beside tokens."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

# Public whatever the setting: the index, health (probes) and the schema the /docs pages load.
ALWAYS_PUBLIC = {"/", "/api/v1/health", "/api/schema/"}
PATH_VALUES = {"code": "042", "sensor_code": "042"}


def schema_get_paths() -> list[str]:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = [path for path, operations in schema["paths"].items() if "get" in operations]
    return [re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "1"), path) for path in sorted(paths)]


def test_the_walk_covers_every_app() -> None:
    paths = schema_get_paths()
    for prefix in ("/api/v1/sensors/", "/api/v1/anomalies/", "/api/v1/forecasts/", "/api/v1/ipr/", "/api/v1/metrics/"):
        assert any(path.startswith(prefix) for path in paths), prefix
    assert len(paths) >= 20


@pytest.mark.parametrize("public_read", [True, False])
def test_every_get_path_follows_the_read_policy_anonymously(public_read: bool) -> None:
    paths = schema_get_paths()
    client = APIClient()
    refused: list[str] = []
    answered: list[str] = []
    with override_settings(API_PUBLIC_READ=public_read, API_THROTTLE_ANON="100000/min"):
        for path in paths:
            status = client.get(path).status_code
            # health answers 503 while a component it checks (workers, bridge) is not running here
            assert status < 500 or (path == "/api/v1/health" and status == 503), (path, status)
            (refused if status in {401, 403} else answered).append(path)
        errors = {client.get(path).json()["error"] for path in refused}
    if public_read:
        assert refused == []
    else:
        assert set(answered) == ALWAYS_PUBLIC & set(paths)
        assert errors == {"not_authenticated"}


@pytest.mark.parametrize("public_read", [True, False])
def test_anonymous_writes_are_refused_under_both_settings(public_read: bool) -> None:
    with override_settings(API_PUBLIC_READ=public_read):
        response = APIClient().post("/api/v1/sensors/", {"code": "051"}, format="json")
    assert response.status_code == 401


@override_settings(API_PUBLIC_READ=False)
def test_jwt_obtain_refresh_and_verify() -> None:
    User.objects.create_user("operator", password="correct horse")
    client = APIClient()
    bad = client.post("/api/v1/auth/jwt/", {"username": "operator", "password": "wrong"}, format="json")
    assert bad.status_code == 401
    assert bad.json()["message"]
    pair = client.post("/api/v1/auth/jwt/", {"username": "operator", "password": "correct horse"}, format="json")
    assert pair.status_code == 200
    access, refresh = pair.json()["access"], pair.json()["refresh"]
    assert client.post("/api/v1/auth/jwt/verify/", {"token": access}, format="json").status_code == 200
    assert client.post("/api/v1/auth/jwt/verify/", {"token": access + "x"}, format="json").status_code == 401
    renewed = client.post("/api/v1/auth/jwt/refresh/", {"refresh": refresh}, format="json")
    assert renewed.status_code == 200
    assert client.get("/api/v1/ipr/organizations/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {renewed.json()['access']}")
    assert client.get("/api/v1/ipr/organizations/").status_code == 200
    assert client.post("/api/v1/sensors/", {"code": "051"}, format="json").status_code == 201
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert client.get("/api/v1/ipr/organizations/").status_code == 401
