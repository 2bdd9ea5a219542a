"""/api/v1/ipr/: organisations CRUD with validation, rights filters and CSV, runs, the harvest action."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
import redis
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from ingest.models import HarvestRun, IPRight, Organization, RightOwner, RunStatus

pytestmark = pytest.mark.django_db


def make_right(org: Organization, number: str, kind: str = "patent", **fields: object) -> IPRight:
    now = timezone.now()
    right = IPRight.objects.create(
        kind=kind,
        application_number=number,
        raw={"applicationNumber": number},
        first_seen=now,
        last_seen=now,
        last_changed=now,
        **fields,
    )
    RightOwner.objects.create(right=right, organization=org, first_seen=now, last_seen=now)
    return right


def test_create_normalises_and_rejects_with_reasons(token_client: APIClient) -> None:
    response = token_client.post(
        "/api/v1/ipr/organizations/",
        {"name": "삼성카드", "org_type": "company", "business_number": "2028145602"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["business_number"] == "202-81-45602"

    bad = token_client.post(
        "/api/v1/ipr/organizations/",
        {"name": "x", "org_type": "company", "business_number": "202-81-45603"},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid"
    assert "fails its check digit" in bad.json()["message"]

    duplicate = token_client.post(
        "/api/v1/ipr/organizations/",
        {"name": "again", "org_type": "company", "business_number": "202-81-45602"},
        format="json",
    )
    assert duplicate.status_code == 400
    assert "already belongs to organisation" in duplicate.json()["message"]

    none = token_client.post("/api/v1/ipr/organizations/", {"name": "none", "org_type": "company"}, format="json")
    assert none.status_code == 400
    assert "give a business registration number or a corporate number" in none.json()["message"]


def test_writes_need_authentication() -> None:
    anonymous = APIClient()
    assert anonymous.post("/api/v1/ipr/organizations/", {"name": "x"}, format="json").status_code in {401, 403}
    with override_settings(API_PUBLIC_READ=False):
        assert anonymous.get("/api/v1/ipr/rights/").status_code == 401


def test_filter_and_search_organizations(token_client: APIClient) -> None:
    Organization.objects.create(name="한빛대학교", org_type="university", corporate_number="110111-5518240")
    Organization.objects.create(name="삼성카드", org_type="company", business_number="202-81-45602")
    universities = token_client.get("/api/v1/ipr/organizations/?org_type=university").json()["results"]
    assert [o["name"] for o in universities] == ["한빛대학교"]
    by_number = token_client.get("/api/v1/ipr/organizations/?search=45602").json()["results"]
    assert [o["name"] for o in by_number] == ["삼성카드"]
    patch = token_client.patch(
        f"/api/v1/ipr/organizations/{by_number[0]['id']}/", {"corporate_number": "bad"}, format="json"
    )
    assert patch.status_code == 400


def test_rights_filters_detail_and_csv(token_client: APIClient) -> None:
    org = Organization.objects.create(name="삼성카드", business_number="202-81-45602")
    other = Organization.objects.create(name="한빛", business_number="124-81-00998")
    make_right(
        org,
        "1020200000001",
        title="반도체 소자",
        status="등록",
        application_date=date(2020, 5, 1),
        ipc_codes=["H01L 21/02"],
    )
    make_right(org, "4020210000002", kind="trademark", title="NOVA", status="출원", application_date=date(2021, 1, 1))
    make_right(other, "1020220000003", title="반도체 패키지", application_date=date(2022, 1, 1))

    def numbers(query: str) -> list[str]:
        response = token_client.get(f"/api/v1/ipr/rights/?{query}")
        assert response.status_code == 200, response.content
        return sorted(r["application_number"] for r in response.json()["results"])

    assert numbers(f"organization={org.pk}") == ["1020200000001", "4020210000002"]
    assert numbers("kind=trademark") == ["4020210000002"]
    assert numbers("status=등록") == ["1020200000001"]
    assert numbers("applied_after=2021-01-01&applied_before=2021-12-31") == ["4020210000002"]
    assert numbers("search=반도체") == ["1020200000001", "1020220000003"]
    bad = token_client.get("/api/v1/ipr/rights/?applied_after=yesterday")
    assert bad.status_code == 400
    assert "applied_after" in bad.json()["message"]

    listed = token_client.get("/api/v1/ipr/rights/?kind=trademark").json()["results"][0]
    assert "raw" not in listed
    detail = token_client.get(f"/api/v1/ipr/rights/{listed['id']}/").json()
    assert detail["raw"] == {"applicationNumber": "4020210000002"}

    export = token_client.get(f"/api/v1/ipr/rights/export/?organization={org.pk}")
    assert export.status_code == 200
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.getvalue().decode("utf-8-sig"))))
    assert [r["application_number"] for r in rows] == ["4020210000002", "1020200000001"]
    assert rows[1]["ipc_codes"] == "H01L 21/02"
    assert rows[1]["organizations"] == "삼성카드"


def test_harvest_action_queues_a_run(
    token_client: APIClient, clean_redis: redis.Redis, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    org = Organization.objects.create(name="삼성카드", business_number="202-81-45602")
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client.post(
            f"/api/v1/ipr/organizations/{org.pk}/harvest/", {"kinds": ["patent", "design"]}, format="json"
        )
    assert response.status_code == 202, response.content
    run = HarvestRun.objects.get(pk=response.json()["id"])
    assert (run.status, run.kinds) == (RunStatus.QUEUED, ["patent", "design"])
    # The task message went to the ingest queue (sent on commit).
    messages = [json.loads(raw) for raw in clean_redis.lrange("ingest", 0, -1)]
    assert [m["headers"]["task"] for m in messages] == ["ingest.harvest_organization"]
    assert json.loads(base64.b64decode(messages[0]["body"]))[0] == [[run.pk]]  # a batch of one run

    again = token_client.post(f"/api/v1/ipr/organizations/{org.pk}/harvest", {}, format="json")  # no slash works too
    assert again.status_code == 400
    assert "already queued or running" in again.json()["message"]
    bad_kind = token_client.post(
        f"/api/v1/ipr/organizations/{org.pk}/harvest/", {"kinds": ["copyright"]}, format="json"
    )
    assert bad_kind.status_code == 400

    runs = token_client.get(f"/api/v1/ipr/runs/?organization={org.pk}").json()["results"]
    assert [r["id"] for r in runs] == [run.pk]
    assert runs[0]["totals"] == {"requests": 0, "errors": 0, "stats": {}}
