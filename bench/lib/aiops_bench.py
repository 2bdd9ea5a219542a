"""Shared set-up of the aiops benchmarks: a fresh database of their own, Django, a token client."""

from __future__ import annotations

import os
import platform
from typing import Any

from bench.lib.database import bench_url, recreate_database, setup_django


def setup(suffix: str) -> None:
    """Create `<DATABASE_URL's name>_bench_<suffix>` (dropped first), point Django at it, migrate."""
    url = bench_url(f"bench_{suffix}")
    recreate_database(url)
    setup_django(url)


def token_client() -> Any:
    """A DRF test client with a real token (requests go through the whole DRF stack, in process)."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = User.objects.create_user("bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def machine() -> dict[str, Any]:
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_1m": round(os.getloadavg()[0], 2)}  # fmt: skip
