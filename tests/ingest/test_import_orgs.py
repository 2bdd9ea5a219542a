"""`manage.py import_orgs`: good rows upserted, bad rows reported with line and reason, nothing lost."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ingest.models import Organization

pytestmark = pytest.mark.django_db

CSV = """name,org_type,business_number,corporate_number,ignored_extra
삼성카드 주식회사,company,2028145602,110111-0346901,x
서울대학교산학협력단,University,,1101115518240,
잘못된 회사,company,202-81-45603,,
번호없음,company,,,
학교,school,124-81-00998,,
,company,124-81-00998,,
한빛전자,company,124-81-00998,110111-0346901,
"""


def run(path: Path) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_orgs", str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_reports_rejected_rows(tmp_path: Path) -> None:
    path = tmp_path / "orgs.csv"
    path.write_text(CSV, encoding="utf-8")
    out, err = run(path)
    assert "2 created, 0 updated, 5 rejected" in out

    assert "line 4: rejected: business_number: business registration number '202-81-45603' fails its check digit" in err
    assert "line 5: rejected: business_number: give a business registration number or a corporate number" in err
    assert "line 6: rejected: org_type 'school' is not company or university" in err
    assert "line 7: rejected: name is empty" in err
    assert "line 8: rejected: conflicts with an existing organisation" in err  # line 2's corporate number
    card = Organization.objects.get(name="삼성카드 주식회사")
    assert (card.business_number, card.corporate_number) == ("202-81-45602", "110111-0346901")
    university = Organization.objects.get(name="서울대학교산학협력단")
    assert (university.org_type, university.corporate_number) == ("university", "110111-5518240")


def test_reimport_updates_instead_of_duplicating(tmp_path: Path) -> None:
    path = tmp_path / "orgs.csv"
    path.write_text("name,org_type,business_number,corporate_number\n한빛,company,124-81-00998,\n", encoding="utf-8")
    run(path)
    path.write_text(
        "name,org_type,business_number,corporate_number\n한빛전자,company,1248100998,\n", encoding="utf-8-sig"
    )
    out, _ = run(path)
    assert "0 created, 1 updated, 0 rejected" in out
    assert list(Organization.objects.values_list("name", flat=True)) == ["한빛전자"]


def test_bad_header_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "orgs.csv"
    path.write_text("company,number\nx,1\n", encoding="utf-8")
    with pytest.raises(CommandError, match="header lacks name, org_type, business_number, corporate_number"):
        run(path)
    with pytest.raises(CommandError, match="no such file"):
        run(tmp_path / "missing.csv")


def test_shipped_sample_file_imports_cleanly() -> None:
    out, err = run(Path(__file__).resolve().parents[2] / "ingest" / "fixtures" / "sample_orgs.csv")
    assert "0 rejected" in out
    assert err == ""
    assert Organization.objects.filter(org_type="university").exists()
