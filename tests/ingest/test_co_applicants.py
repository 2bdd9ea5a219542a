"""A right filed jointly by two tracked organisations belongs to both (issue 16): storage, API, export, migration."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from rest_framework.test import APIClient

from ingest import services
from ingest.kipris.parsing import to_record
from ingest.models import Applicant, IPRight, Organization, RightOwner


def joint_holders() -> tuple[Applicant, Applicant]:
    company = Organization.objects.create(name="한빛전자", business_number="124-81-00998")
    university = Organization.objects.create(
        name="서울대학교산학협력단", org_type="university", corporate_number="110111-0346901"
    )
    return (
        Applicant.objects.create(number="119981042713", organization=company),
        Applicant.objects.create(number="120070509242", organization=university),
    )


@pytest.mark.django_db
def test_both_organisations_keep_a_jointly_filed_right(token_client: APIClient) -> None:
    company, university = joint_holders()
    record = to_record(
        "patent", {"applicationNumber": "1020200000001", "applicantName": "한빛전자|서울대학교산학협력단"}
    )
    assert record is not None
    assert services.upsert_records(company.organization, company, [record])[("patent", "new")] == 1
    # The university's search finds it later: it is added as an owner, the company keeps it.
    assert services.upsert_records(university.organization, university, [record])[("patent", "unchanged")] == 1
    right = IPRight.objects.get()
    owners = set(right.owners.values_list("organization__name", "applicant__number"))
    assert owners == {("한빛전자", "119981042713"), ("서울대학교산학협력단", "120070509242")}
    for applicant in (company, university):
        listed = token_client.get("/api/v1/ipr/rights/", {"organization": applicant.organization_id}).json()
        assert [row["application_number"] for row in listed["results"]] == ["1020200000001"]
    detail = token_client.get(f"/api/v1/ipr/rights/{right.pk}/").json()
    assert sorted((o["organization_name"], o["applicant_number"]) for o in detail["owners"]) == sorted(owners)
    export = token_client.get("/api/v1/ipr/rights/export/").getvalue().decode("utf-8-sig")
    (row,) = csv.DictReader(io.StringIO(export))
    assert row["organizations"] == "서울대학교산학협력단|한빛전자"
    assert row["applicants"] == "120070509242|119981042713"
    # Harvesting the company again changes nothing about the university's ownership.
    services.upsert_records(company.organization, company, [record])
    assert RightOwner.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_every_existing_right_its_owner() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("ingest", "0002_checkpoint_counters")])
    old = executor.loader.project_state([("ingest", "0002_checkpoint_counters")]).apps
    org = old.get_model("ingest", "Organization").objects.create(name="한빛전자", business_number="124-81-00998")
    applicant = old.get_model("ingest", "Applicant").objects.create(number="119981042713", organization=org)
    now = timezone.now()
    rights = old.get_model("ingest", "IPRight")
    for number, holder in (("1020200000001", applicant), ("1020200000002", None)):
        rights.objects.create(
            kind="patent", application_number=number, raw={}, organization=org, applicant=holder,
            first_seen=now, last_seen=now, last_changed=now,
        )  # fmt: skip
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    owners = RightOwner.objects.order_by("right__application_number")
    assert [(o.right.application_number, o.organization_id, o.applicant_id) for o in owners] == [
        ("1020200000001", org.pk, applicant.pk),
        ("1020200000002", org.pk, None),
    ]
