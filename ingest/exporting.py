"""Rights as CSV (admin action and API export): one row per right, lists joined with `|`."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from .models import IPRight, RightOwner

OWNER_COLUMNS = {"organizations", "applicants"}
EXPORT_CHUNK = 2000

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
    "organizations",
    "applicants",
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
    # Every owner, `|`-joined in the same order in both columns: organisation names and the applicant
    # number each one's search found the right under. One query per chunk of rights.
    rows: Iterable[dict[str, Any]] = rights.values("id", *[c for c in COLUMNS if c not in OWNER_COLUMNS]).iterator(
        chunk_size=EXPORT_CHUNK
    )
    for chunk in _chunks(rows, EXPORT_CHUNK):
        owners: dict[int, list[tuple[str, str]]] = {}
        for right_id, name, number in (
            RightOwner.objects.filter(right_id__in=[row["id"] for row in chunk])
            .order_by("right_id", "organization__name", "organization_id")
            .values_list("right_id", "organization__name", "applicant__number")
        ):
            owners.setdefault(right_id, []).append((name, number or ""))
        for row in chunk:
            held = owners.get(row["id"], [])
            row["organizations"], row["applicants"] = [name for name, _ in held], [number for _, number in held]
            yield writer.writerow([_cell(row[column]) for column in COLUMNS])


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def csv_response(rights: QuerySet[IPRight], filename: str = "ip-rights.csv") -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_lines(rights), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
