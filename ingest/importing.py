"""Organisations from CSV (`name,org_type,business_number,corporate_number`): validate every row, keep going.

A row is rejected with its line number and reason (bad type, malformed number, no number at all);
good rows are upserted on their business number, else corporate number, so re-importing is harmless.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from .models import Organization, OrgType

REQUIRED_COLUMNS = ("name", "org_type", "business_number", "corporate_number")


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


class BadHeaderError(ValueError):
    pass


def _reason(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
    return " ".join(exc.messages)


def import_rows(lines: Iterable[str]) -> ImportReport:
    reader = csv.DictReader(lines)
    missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise BadHeaderError(f"CSV header lacks {', '.join(missing)} (need {','.join(REQUIRED_COLUMNS)})")
    report = ImportReport()
    for row in reader:
        line = reader.line_num
        name = (row.get("name") or "").strip()
        org_type = (row.get("org_type") or "").strip().lower()
        if not name:
            report.rejected.append((line, "name is empty"))
            continue
        if org_type not in OrgType.values:
            report.rejected.append((line, f"org_type {org_type!r} is not company or university"))
            continue
        candidate = Organization(
            name=name,
            org_type=org_type,
            business_number=(row.get("business_number") or "").strip(),
            corporate_number=(row.get("corporate_number") or "").strip(),
        )
        try:
            candidate.clean()
        except ValidationError as exc:
            report.rejected.append((line, _reason(exc)))
            continue
        defaults = {
            "name": name,
            "org_type": org_type,
            "business_number": candidate.business_number,
            "corporate_number": candidate.corporate_number,
        }
        try:
            with transaction.atomic():
                if candidate.business_number:
                    _, created = Organization.objects.update_or_create(
                        business_number=candidate.business_number, defaults=defaults
                    )
                else:
                    _, created = Organization.objects.update_or_create(
                        corporate_number=candidate.corporate_number, defaults=defaults
                    )
        except (IntegrityError, ValidationError) as exc:
            report.rejected.append((line, f"conflicts with an existing organisation: {exc}"))
            continue
        if created:
            report.created += 1
        else:
            report.updated += 1
    return report
