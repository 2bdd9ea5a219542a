"""The KIPRIS Plus client: one requests Session, the right key name per URL family, typed errors.

Two families serve the same key under different names and paging (see docs/kipris.md):
- kipo-api  `/kipo-api/kipi/{service}/{operation}`   key `ServiceKey`, `pageNo` + `numOfRows`
- openapi   `/openapi/rest/{service}/{operation}`    key `accessKey`,  `docsStart` (row offset) + `docsCount`
The key never appears in a log line or an exception message: URLs are not logged and errors are redacted.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from .. import metrics
from .errors import KiprisError, PermanentError, TooManyResultsError, TransientError
from .guards import RequestGuard
from .parsing import Envelope, Record, parse_envelope, text, to_record

logger = logging.getLogger(__name__)

PUBLIC_BASE_URL = "http://plus.kipris.or.kr"


class Family(StrEnum):
    KIPO_API = "kipo-api"
    OPENAPI = "openapi"


FAMILY_PATH = {Family.KIPO_API: "kipo-api/kipi", Family.OPENAPI: "openapi/rest"}
FAMILY_KEY_PARAM = {Family.KIPO_API: "ServiceKey", Family.OPENAPI: "accessKey"}
APPLICANT_SERVICE = "CorpBsApplicantService"

DESIGN_FLAGS = ("open", "rejection", "destroy", "cancle", "notice", "registration", "invalid", "abandonment")
DESIGN_TYPES = ("simi", "part", "etc")
TRADEMARK_FLAGS = (
    *("application", "registration", "refused", "expiration", "withdrawal", "publication", "cancel", "abandonment"),
    *("trademark", "serviceMark", "trademarkServiceMark", "businessEmblem", "collectiveMark", "geoOrgMark"),
    *("internationalMark", "certMark", "geoCertMark"),
    *("character", "figure", "compositionCharacter", "figureComposition", "sound", "fragrance", "color"),
    *("dimension", "colorMixed", "hologram", "motion", "visual", "invisible"),
)


@dataclass(frozen=True)
class Search:
    """One per-applicant search: where it lives in each family and how it is asked."""

    kind: str
    service: str
    operations: dict[Family, str]
    applicant_param: str
    page_size: int
    flags: tuple[str, ...] = ()


# Page sizes: 500 is the confirmed maximum for patents and used for trademarks; designs are reported
# capped at 100 by one codebase, so 100 is the safe choice there.
SEARCHES: dict[str, Search] = {
    "patent": Search(
        "patent",
        "patUtiModInfoSearchSevice",  # sic: "Sevice" is the published name
        {Family.KIPO_API: "getAdvancedSearch", Family.OPENAPI: "applicantNameSearchInfo"},
        "applicant",
        500,
        ("patent", "utility"),
    ),
    "design": Search(
        "design",
        "designInfoSearchService",
        {Family.KIPO_API: "getAdvancedSearch", Family.OPENAPI: "applicantNameSearchInfo"},
        "applicantName",
        100,
        DESIGN_FLAGS + DESIGN_TYPES,
    ),
    "trademark": Search(
        "trademark",
        "trademarkInfoSearchService",
        {Family.KIPO_API: "getAdvancedSearch", Family.OPENAPI: "applicantNamesearchInfo"},  # sic: lower-case s
        "applicantName",
        500,
        TRADEMARK_FLAGS,
    ),
}


@dataclass(frozen=True)
class ApplicantInfo:
    number: str
    name: str
    corporate_number: str
    business_number: str


@dataclass
class Page:
    """One page of one search: normalised records, rows skipped as malformed, and the paging facts."""

    records: list[Record]
    skipped: int
    rows: int
    total: int | None
    page_size: int


_shared_clients: dict[tuple[object, ...], KiprisClient] = {}
KEY_IN_URL = re.compile(r"((?:ServiceKey|accessKey)=)[^&\s\"']+", re.IGNORECASE)


class RedactKeyFilter(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string included: hide the key in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = KEY_IN_URL.sub(r"\1***", record.getMessage())
            record.args = None
        elif isinstance(record.msg, str):
            record.msg = KEY_IN_URL.sub(r"\1***", record.msg)
        return True


def install_log_redaction() -> None:
    """Called once at start-up (IngestConfig.ready): the loggers that may print request URLs."""
    for name in ("urllib3.connectionpool", "requests"):
        target = logging.getLogger(name)
        if not any(isinstance(existing, RedactKeyFilter) for existing in target.filters):
            target.addFilter(RedactKeyFilter())


class KiprisClient:
    """Synchronous client. Pass a RequestGuard to share rate, budget and circuit with every process."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        guard: RequestGuard | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        org_type: str = "",
        max_total: int = 300_000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Stored decoded: a key copied already percent-encoded from the portal is not encoded twice.
        self.api_key = unquote(api_key.strip())
        self.guard, self.timeout, self.org_type, self.max_total = guard, timeout, org_type, max_total
        self.session = requests.Session()
        # At most KIPRIS_CONCURRENCY (5, the old harvester's figure) connections per client: a request
        # beyond that waits for a free connection (pool_block) instead of opening another. A task's pool
        # (kipris/inflight.py) has that many threads, so a process has no more requests in flight.
        for scheme in ("http://", "https://"):
            self.session.mount(
                scheme, HTTPAdapter(pool_connections=1, pool_maxsize=settings.KIPRIS_CONCURRENCY, pool_block=True)
            )
        self.session.headers["User-Agent"] = "pipewatch-ingest/1"
        self._sent = threading.local()

    @classmethod
    def from_settings(cls, *, org_type: str = "", guarded: bool = True) -> KiprisClient:
        return cls(
            settings.KIPRIS_BASE_URL,
            settings.KIPRIS_API_KEY,
            guard=RequestGuard.from_settings() if guarded else None,
            timeout=(settings.KIPRIS_CONNECT_TIMEOUT, settings.KIPRIS_READ_TIMEOUT),
            org_type=org_type,
            max_total=settings.KIPRIS_MAX_TOTAL_PER_APPLICANT,
        )

    def close(self) -> None:
        self.session.close()

    @property
    def requests_sent(self) -> int:
        """Calls that reached KIPRIS from the calling thread (a harvest's pool threads share one client)."""
        return int(getattr(self._sent, "count", 0))

    @classmethod
    def shared(cls, *, org_type: str = "") -> KiprisClient:
        """This process's client for the current settings: HTTP connections stay alive between tasks."""
        names = [name for name in dir(settings) if name.startswith("KIPRIS_")]
        key = (os.getpid(), org_type, settings.REDIS_URL, *(repr(getattr(settings, name)) for name in sorted(names)))
        client = _shared_clients.get(key)
        if client is None:
            for stale in [k for k in _shared_clients if k[0] != key[0] or k[2:] != key[2:]]:
                _shared_clients.pop(stale)  # another process's (after a fork) or older settings
            client = _shared_clients[key] = cls.from_settings(org_type=org_type)
        return client

    def _redact(self, message: str) -> str:
        if not self.api_key:
            return message
        for form in {self.api_key, quote(self.api_key, safe=""), quote_plus(self.api_key)}:
            message = message.replace(form, "***")
        return message

    def request(self, family: Family, service: str, operation: str, params: dict[str, Any], *, mode: str) -> Envelope:
        """One call: guard, send, judge by resultCode. `mode` labels the metrics (search kind or applicant)."""
        if self.guard is not None:
            self.guard.before_request()
        url = f"{self.base_url}/{FAMILY_PATH[family]}/{service}/{operation}"
        query = {**params, FAMILY_KEY_PARAM[family]: self.api_key}
        labels = {"ipr_mode": mode, "org_type": self.org_type or "unknown"}
        started = time.perf_counter()
        metrics.ACTIVE_REQUESTS.inc()
        status = "success"
        try:
            envelope = self._send(url, query)
        except KiprisError as exc:
            status = "failure"
            metrics.ERRORS.labels(**labels, error_type=exc.error_type).inc()
            if self.guard is not None and isinstance(exc, TransientError):
                self.guard.circuit.record_failure(exc.error_type)
            logger.warning("KIPRIS %s/%s failed: %s", service, operation, exc)
            raise
        finally:
            metrics.ACTIVE_REQUESTS.dec()
            metrics.RESPONSE_SECONDS.labels(**labels).observe(time.perf_counter() - started)
            metrics.REQUESTS.labels(**labels, status=status).inc()
            self._sent.count = self.requests_sent + 1
        if self.guard is not None:
            self.guard.circuit.record_success()
        return envelope

    def _send(self, url: str, query: dict[str, Any]) -> Envelope:
        try:
            response = self.session.get(url, params=query, timeout=self.timeout)
        except requests.Timeout:
            raise TransientError("KIPRIS timed out") from None
        except requests.RequestException as exc:
            # requests' messages contain the URL with the key: keep only a redacted summary, no chain.
            raise TransientError(self._redact(f"KIPRIS unreachable: {type(exc).__name__}: {exc}")) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"KIPRIS answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise PermanentError(f"KIPRIS answered HTTP {response.status_code}")
        return parse_envelope(response.content)

    # --- applicant numbers -------------------------------------------------------------------------

    def _applicants(self, operation: str, param: str, value: str) -> list[ApplicantInfo]:
        envelope = self.request(Family.OPENAPI, APPLICANT_SERVICE, operation, {param: value}, mode="applicant")
        found: dict[str, ApplicantInfo] = {}
        for row in envelope.rows:
            number = text(row.get("ApplicantNumber"))
            if len(number) != 12 or not number.isdigit():
                logger.warning("applicant lookup row without a valid ApplicantNumber skipped")
                continue
            found[number] = ApplicantInfo(
                number=number,
                name=text(row.get("ApplicantName")),
                corporate_number=text(row.get("CorporationNumber")),
                business_number=text(row.get("BusinessRegistrationNumber")),
            )
        return list(found.values())

    def applicants_by_business_number(self, business_number: str) -> list[ApplicantInfo]:
        return self._applicants("corpBsApplicantInfoV3", "BusinessRegistrationNumber", business_number)

    def applicants_by_corporate_number(self, corporate_number: str) -> list[ApplicantInfo]:
        return self._applicants("corpBsApplicantInfoV2", "CorporationNumber", corporate_number)

    def find_applicants(self, business_number: str, corporate_number: str) -> list[ApplicantInfo]:
        """V3 by business number; if it finds nothing and a corporate number is known, V2 by that."""
        found = self.applicants_by_business_number(business_number) if business_number else []
        if not found and corporate_number:
            found = self.applicants_by_corporate_number(corporate_number)
        return found

    # --- per-applicant searches --------------------------------------------------------------------

    def search_page(
        self, kind: str, applicant_number: str, *, page: int, fetched: int, family: Family = Family.KIPO_API
    ) -> Page:
        """Page `page` (1-based) of a search. kipo-api pages by number; openapi by row offset (`fetched` + 1)."""
        search = SEARCHES[kind]
        params: dict[str, Any] = {search.applicant_param: applicant_number}
        params.update(dict.fromkeys(search.flags, "true"))
        if family is Family.KIPO_API:
            params.update(pageNo=page, numOfRows=search.page_size)
        else:
            params.update(docsStart=fetched + 1, docsCount=search.page_size)
        envelope = self.request(family, search.service, search.operations[family], params, mode=kind)
        if envelope.total is not None and envelope.total > self.max_total:
            metrics.ERRORS.labels(
                ipr_mode=kind, org_type=self.org_type or "unknown", error_type=TooManyResultsError.error_type
            ).inc()
            raise TooManyResultsError(
                f"totalCount {envelope.total} for one applicant number exceeds {self.max_total}:"
                " a search parameter was probably ignored upstream"
            )
        records = [record for row in envelope.rows if (record := to_record(kind, row)) is not None]
        return Page(
            records=records,
            skipped=len(envelope.rows) - len(records),
            rows=len(envelope.rows),
            total=envelope.total,
            page_size=search.page_size,
        )
