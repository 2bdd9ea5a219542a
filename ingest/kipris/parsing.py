"""KIPRIS XML -> plain records, for both URL families, on a parser that refuses entities.

Nothing here trusts the shape: a missing or unknown element gives an empty value, never an exception,
and every record keeps the row exactly as sent (`raw`). Success is judged by `resultCode` alone
(`00` or empty); `successYN` is unreliable upstream.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from .errors import (
    BlockedError,
    KiprisError,
    PermanentError,
    PoisonedResponseError,
    QuotaExceededError,
    TransientError,
)

logger = logging.getLogger(__name__)

TOTAL_TAGS = ("totalCount", "TotalSearchCount")
PAGING_TAGS = {*TOTAL_TAGS, "SearchStartNumber", "numOfRows", "pageNo"}
PERMANENT_CODES = {"10", "11", "30", "31", "101"}


@dataclass
class Envelope:
    """A parsed successful response: the rows (raw dicts) and the total count if KIPRIS sent one."""

    rows: list[dict[str, Any]]
    total: int | None
    result_code: str = ""
    result_msg: str = ""


def text(value: Any) -> str:
    """An element's text: '' for missing, empty, a lone space, or an element with attributes only."""
    if isinstance(value, dict):
        value = value.get("#text")
    if isinstance(value, list):
        value = value[0] if value else None
    return "" if value is None else str(value).strip()


def _find(node: Any, names: tuple[str, ...]) -> Any:
    """The shallowest value of any of `names` under node, like XPath `.//name`.

    Breadth-first: the count sits at depth 2 or 3 (`<count>` beside `<body>`, or inside `<items>`),
    so it is found before the search would descend into hundreds of rows.
    """
    level = [node]
    while level:
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
            if isinstance(item, dict):
                for name in names:
                    if name in item:
                        return item[name]
            below.extend(child for child in children if isinstance(child, dict | list))
        level = below
    return None


def raise_for_result(code: str, message: str) -> None:
    """Map KIPRIS's resultCode to a typed error; `00` and empty mean success."""
    if code in {"", "00"}:
        return
    described = f"KIPRIS resultCode {code}: {message or 'no message'}"
    if code == "22":
        raise QuotaExceededError(described, result_code=code)
    if "blocked" in message.lower():
        raise BlockedError(described, result_code=code)
    if code in PERMANENT_CODES:
        raise PermanentError(described, result_code=code)
    # An unknown code is not something a retry is known to fix: surface it instead of looping.
    raise KiprisError(described, result_code=code)


def parse_envelope(body: bytes) -> Envelope:
    """Parse a response body; raise a typed error for error codes, entity declarations and broken XML."""
    try:
        document = xmltodict.parse(body, disable_entities=True)
    except ValueError as exc:
        if "entities" in str(exc):
            raise PoisonedResponseError("response declares XML entities; refused") from None
        raise TransientError(f"unreadable XML: {exc}") from None
    except ExpatError as exc:
        raise TransientError(f"malformed or truncated XML: {exc}") from None
    response = document.get("response") if isinstance(document, dict) else None
    if not isinstance(response, dict):
        raise TransientError("XML without a <response> element")
    header = response.get("header")
    if not isinstance(header, dict):
        header = {}
    code, message = text(header.get("resultCode")), text(header.get("resultMsg"))
    raise_for_result(code, message)
    body_node = response.get("body")
    items = body_node.get("items") if isinstance(body_node, dict) else None
    rows: list[dict[str, Any]] = []
    if isinstance(items, dict):
        for tag, value in items.items():
            if tag in PAGING_TAGS:
                continue
            for row in value if isinstance(value, list) else [value]:
                if isinstance(row, dict):
                    rows.append(row)
                else:
                    logger.warning("KIPRIS row <%s> without fields skipped", tag)
    total_text = text(_find(response, TOTAL_TAGS))
    total = int(total_text) if total_text.isdigit() else None
    return Envelope(rows=rows, total=total, result_code=code, result_msg=message)


DATE_FORMATS = ("%Y%m%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d", "%Y-%m-%d", "%Y.%m.%d")


def parse_date(value: str) -> date | None:
    """`YYYYMMDD` (kipo-api) or `YYYY/MM/DD 00:00:00` (word search); anything else is None (raw keeps it)."""
    if not value:
        return None
    if len(value) == 8 and value.isdigit():  # the common case, without strptime's cost
        try:
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            return None
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar date, no time zone
        except ValueError:
            continue
    return None


def split_pipe(value: str) -> list[str]:
    return [part.strip() for part in value.split("|") if part.strip()]


def split_classes(value: str) -> list[str]:
    """Trademark classes: `16 09 41` or `16|09`."""
    return [part for part in re.split(r"[\s|,]+", value) if part]


# Canonical field -> the element names it has in the two families and three right types.
ALIASES: dict[str, tuple[str, ...]] = {
    "application_number": ("applicationNumber", "ApplicationNumber"),
    "application_date": ("applicationDate", "ApplicationDate"),
    "design_number": ("designNumber",),
    "title": ("inventionTitle", "InventionName", "articleName", "title", "Title"),
    "status": ("registerStatus", "RegistrationStatus", "applicationStatus", "ApplicationStatus"),
    "registration_number": ("registerNumber", "registrationNumber", "RegistrationNumber"),
    "registration_date": ("registerDate", "registrationDate", "RegistrationDate"),
    "publication_number": ("publicationNumber", "PublicNumber"),
    "publication_date": ("publicationDate", "PublicDate"),
    "open_number": ("openNumber", "OpeningNumber"),
    "open_date": ("openDate", "OpeningDate"),
    "ipc": ("ipcNumber", "InternationalpatentclassificationNumber"),
    "nice": ("classificationCode", "GoodClassificationCode"),
    "vienna": ("viennaCode", "ViennaCode"),
    "applicants": ("applicantName", "ApplicantName", "Applicant"),
    "agent": ("agentName", "AgentName"),
    "abstract": ("astrtCont", "Abstract"),
    "image_url": ("bigDrawing", "imagePathLarge", "drawing", "imagePath", "DrawingPath", "ImagePath"),
}


def _pick(row: dict[str, Any], field_name: str) -> str:
    for name in ALIASES[field_name]:
        if value := text(row.get(name)):
            return value
    return ""


@dataclass
class Record:
    """One right, normalised; `kind` is patent/utility/design/trademark."""

    kind: str
    application_number: str
    fields: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def to_record(search_kind: str, row: dict[str, Any]) -> Record | None:
    """Normalise one row; None (logged) when it has no application number to key it by."""
    number = re.sub(r"\D", "", _pick(row, "application_number"))
    if not number:
        logger.warning("KIPRIS %s row without an application number skipped", search_kind)
        return None
    kind = search_kind
    if search_kind == "patent" and number.startswith("20"):
        kind = "utility"  # patents and utility models come from one search; the prefix tells them apart
    image = _pick(row, "image_url")
    fields: dict[str, Any] = {
        "design_number": _pick(row, "design_number") if kind == "design" else "",
        "application_date": parse_date(_pick(row, "application_date")),
        "title": _pick(row, "title"),
        "status": _pick(row, "status")[:40],
        "registration_number": _pick(row, "registration_number")[:20],
        "registration_date": parse_date(_pick(row, "registration_date")),
        "publication_number": _pick(row, "publication_number")[:20],
        "publication_date": parse_date(_pick(row, "publication_date")),
        "open_number": _pick(row, "open_number")[:20],
        "open_date": parse_date(_pick(row, "open_date")),
        "ipc_codes": split_pipe(_pick(row, "ipc")),
        "nice_classes": split_classes(_pick(row, "nice")),
        "vienna_codes": split_pipe(_pick(row, "vienna")),
        "applicant_names": split_pipe(_pick(row, "applicants")),
        "agent": _pick(row, "agent")[:200],
        "abstract": _pick(row, "abstract"),
        "image_url": image if image.startswith(("http://", "https://")) and len(image) <= 500 else "",
    }
    return Record(kind=kind, application_number=number[:20], fields=fields, raw=row)
