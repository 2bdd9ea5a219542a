"""Rights as CSV (admin action and API export): one row per right, lists joined with `|`."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from .models import IPRight

COLUMNS = [
    "kind",
    "application_number",
    "design_number",
    "application_date",
    "title",
    "status",
    "registration_number",
    "registration_date",
    "publication_number",
    "publication_date",
    "open_number",
    "open_date",
    "ipc_codes",
    "nice_classes",
    "vienna_codes",
    "applicant_names",
    "agent",
    "organization",
    "applicant",
    "first_seen",
    "last_seen",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return "|".join(map(str, value))
    return "" if value is None else value


def csv_lines(rights: QuerySet[IPRight]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(COLUMNS)  # BOM: spreadsheet programs then read the Korean text as UTF-8
    rows: Iterable[dict[str, Any]] = rights.values(
        *[c for c in COLUMNS if c not in {"organization", "applicant"}],
        "organization__name",
        "applicant__number",
    ).iterator(chunk_size=2000)
    for row in rows:
        row["organization"], row["applicant"] = row.pop("organization__name"), row.pop("applicant__number")
        yield writer.writerow([_cell(row[column]) for column in COLUMNS])


def csv_response(rights: QuerySet[IPRight], filename: str = "ip-rights.csv") -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_lines(rights), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
