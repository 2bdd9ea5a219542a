"""A KIPRIS Plus stand-in: a real HTTP server answering both URL families with realistic XML.

Everything is generated from a seed, so the same organisation always has the same applicant numbers and
the same rights, for thousands of organisations, without storing anything. It follows
../shared/reference/kipris.md: key names per family, paging (page number vs row offset), casing, element
names and placement (`<count>` beside `<body>`, `TotalSearchCount` inside `<items>`), result codes, and
page-size caps. Faults are injected through `POST /_sim/control`; `GET /_sim/stats` returns every
request's arrival time so tests and benchmarks can check the global rate from the server's side.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from .identifiers import business_check_digit, corporate_check_digit

logger = logging.getLogger(__name__)

DEFAULT_KEY = "c2ltdWxhdGVkK2tpcHJpcy9rZXk9PT09PT09PT09PT0="
APPLICANT_OPS = {
    "corpBsApplicantInfoV3": "BusinessRegistrationNumber",
    "corpBsApplicantInfoV2": "CorporationNumber",
    "corpBsApplicantInfo": "ApplicantNumber",
}
# (service, family) -> (search kind, operation, applicant parameter, maximum page size)
SEARCH_ROUTES: dict[tuple[str, str, str], tuple[str, str, int]] = {
    ("kipo-api", "patUtiModInfoSearchSevice", "getAdvancedSearch"): ("patent", "applicant", 500),
    ("kipo-api", "designInfoSearchService", "getAdvancedSearch"): ("design", "applicantName", 100),
    ("kipo-api", "trademarkInfoSearchService", "getAdvancedSearch"): ("trademark", "applicantName", 500),
    ("openapi", "patUtiModInfoSearchSevice", "applicantNameSearchInfo"): ("patent", "applicant", 500),
    ("openapi", "designInfoSearchService", "applicantNameSearchInfo"): ("design", "applicantName", 100),
    ("openapi", "trademarkInfoSearchService", "applicantNamesearchInfo"): ("trademark", "applicantName", 500),
}
DEFAULT_ROWS = 20

COMPANY_STEMS = [
    "한빛",
    "대성",
    "미래",
    "세진",
    "동아",
    "우리",
    "새한",
    "청운",
    "태양",
    "금강",
    "한결",
    "나래",
    "두리",
    "서해",
]
COMPANY_TAILS = ["전자", "화학", "바이오", "정밀", "테크", "소재", "에너지", "로보틱스", "제약", "모빌리티"]
UNIVERSITY_STEMS = ["한국", "서라벌", "가람", "동해", "새빛", "중앙", "백두", "온누리", "한마음"]
TITLE_SUBJECTS = [
    "반도체 소자",
    "이차전지 전극",
    "디스플레이 패널",
    "무선 통신 장치",
    "의료용 영상 장치",
    "수처리 필터",
]
TITLE_TAILS = ["및 그 제조 방법", "를 포함하는 시스템", "의 제어 방법", "용 조성물", "및 이를 이용한 검사 장치"]
ARTICLES = ["휴대전화기", "의자", "조명기구", "포장용 용기", "자동차용 휠", "손목시계"]
MARK_WORDS = ["NOVA", "한빛", "ALPHA", "새봄", "ZENITH", "푸른숲", "LUMI"]
PATENT_STATUS = ["공개", "등록", "소멸", "거절", "취하"]
MARK_STATUS = ["출원", "공고", "등록", "소멸", "거절"]
IPC = ["H01L 21/02", "H01M 4/13", "G06F 3/041", "A61K 8/02", "C02F 1/44", "H04W 72/04", "B23Q 17/00"]
VIENNA = ["050501", "050520", "260101", "270501"]


@dataclass(frozen=True)
class SimApplicant:
    number: str
    name: str
    serial: int  # global index, makes application numbers unique across applicants


@dataclass(frozen=True)
class SimOrganization:
    index: int
    name: str
    org_type: str
    business_number: str
    corporate_number: str
    # "business": found by V3; "corporate": only V2 knows it; "none": no applicant numbers at all.
    lookup: str
    applicants: tuple[SimApplicant, ...]


def _business_number(index: int) -> str:
    first_nine = f"{101 + index // 10000:03d}{81 + index % 3 * 5:02d}{index % 10000:04d}"
    digits = first_nine + str(business_check_digit(first_nine))
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"


def _corporate_number(index: int) -> str:
    first_twelve = f"{110111 + index % 7 * 10000:06d}{index:06d}"
    digits = first_twelve + str(corporate_check_digit(first_twelve))
    return f"{digits[:6]}-{digits[6:]}"


def _date(rng: random.Random, year: int) -> date:
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


def _count(rng: random.Random, scale: float) -> int:
    """Heavy-tailed: most applicants hold a handful of rights, a few hold thousands."""
    bucket = rng.random()
    if bucket < 0.35:
        high = 5
    elif bucket < 0.8:
        high = 60
    elif bucket < 0.96:
        high = 700
    else:
        high = 2500
    return min(9999, int(rng.randrange(high + 1) * scale))


@dataclass
class Faults:
    """What the simulator does wrong right now (changed through POST /_sim/control)."""

    # {"kind": ..., "count": n, "path": substring, "page": n}; path and page (kipo-api pageNo) are optional
    queue: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: tuple[int, int] = (0, 0)
    rate_limit_per_sec: int = 0  # > 0: requests beyond this in one second are answered "Blocked users."
    epoch: int = 0  # bump to change some records' status (tests "updated" upserts)


class SimulatedKipris:
    """The data and the answers; `serve()` wraps it in an HTTP server."""

    def __init__(
        self, *, seed: int = 0, organizations: int = 2000, api_key: str = DEFAULT_KEY, scale: float = 1.0
    ) -> None:
        self.seed, self.api_key, self.scale = seed, api_key, scale
        self.organizations = [self._make_org(index) for index in range(organizations)]
        self.by_business = {org.business_number: org for org in self.organizations if org.lookup == "business"}
        self.by_corporate = {org.corporate_number: org for org in self.organizations if org.lookup != "none"}
        self.by_applicant = {a.number: (org, a) for org in self.organizations for a in org.applicants}
        self.faults = Faults()
        self.lock = threading.Lock()
        self.arrivals: list[float] = []
        self.paths: Counter[str] = Counter()

    # --- deterministic data --------------------------------------------------------------------------

    def _make_org(self, index: int) -> SimOrganization:
        rng = random.Random(f"{self.seed}:org:{index}")
        university = index % 8 == 0
        if university:
            name = f"{rng.choice(UNIVERSITY_STEMS)}{index}대학교"
        else:
            name = f"{rng.choice(COMPANY_STEMS)}{rng.choice(COMPANY_TAILS)}{index} 주식회사"
        lookup = {7: "corporate", 9: "none"}.get(index % 10, "business")
        count = 0 if lookup == "none" else rng.choice([1, 1, 2, 3] if not university else [1, 2])
        applicants = []
        for j in range(count):
            first = 2 if university and j == 0 else 1
            number = f"{first}{1998 + (index + j) % 25:04d}{index * 4 + j:07d}"
            label = f"{name.removesuffix('대학교')}대학교 산학협력단" if university and j == 0 else name
            applicants.append(SimApplicant(number=number, name=label, serial=index * 4 + j))
        return SimOrganization(
            index=index,
            name=name,
            org_type="university" if university else "company",
            business_number=_business_number(index),
            corporate_number=_corporate_number(index),
            lookup=lookup,
            applicants=tuple(applicants),
        )

    def count(self, applicant: str, kind: str) -> int:
        """Rows a search returns for this applicant (designs: one row per design of an application)."""
        return len(self._rows(applicant, kind))

    @lru_cache(maxsize=4096)  # noqa: B019 - the simulator lives as long as the process; bounded
    def _rows(self, applicant: str, kind: str) -> tuple[tuple[int, int], ...]:
        """(application index, design index) per row; every seventh design application has two designs."""
        rng = random.Random(f"{self.seed}:count:{applicant}:{kind}")
        applications = _count(rng, self.scale * (0.4 if kind == "design" else 1.0))
        rows = []
        for app in range(applications):
            rows.append((app, 1))
            if kind == "design" and app % 7 == 3:
                rows.append((app, 2))
        return tuple(rows[:9999])

    def record(self, applicant: SimApplicant, holder: SimOrganization, kind: str, row: int) -> dict[str, str]:
        """Family-neutral fields of one row (lowerCamel, the kipo-api names)."""
        app, design = self._rows(applicant.number, kind)[row]
        rng = random.Random(f"{self.seed}:rec:{applicant.number}:{kind}:{app}")
        year = 2000 + app % 25
        serial = applicant.serial * 400 + app // 25
        prefix = {"patent": "20" if app % 10 == 9 else "10", "design": "30", "trademark": "40"}[kind]
        applied = _date(rng, year)
        statuses = MARK_STATUS if kind == "trademark" else PATENT_STATUS
        status_index = rng.randrange(len(statuses)) + (self.faults.epoch if app % 5 == 0 else 0)
        registered = status_index % len(statuses) in {1, 2}
        fields = {
            "applicationNumber": f"{prefix}{year:04d}{serial:07d}",
            "applicationDate": applied.strftime("%Y%m%d"),
            "applicantName": holder.name if app % 6 else f"{holder.name} | 대한민국(관리부서:특허청)",
            "publicationNumber": f"{prefix}{year:04d}{serial:07d}"[:2] + f"{year + 1}{serial:07d}",
            "publicationDate": (applied + timedelta(days=540)).strftime("%Y%m%d"),
            "registerStatus" if kind == "patent" else "applicationStatus": statuses[status_index % len(statuses)],
            "drawing": f"http://plus.kipris.or.kr/kiprisplusws/fileToss.jsp?arg={rng.getrandbits(64):016x}",
        }
        number_tag, date_tag = (
            ("registerNumber", "registerDate")
            if kind == "patent"
            else (
                "registrationNumber",
                "registrationDate",
            )
        )
        fields[number_tag] = f"{prefix}{serial + 1000000:07d}0000" if registered else ""
        fields[date_tag] = (applied + timedelta(days=700)).strftime("%Y%m%d") if registered else ""
        if kind == "patent":
            fields["inventionTitle"] = f"{rng.choice(TITLE_SUBJECTS)} {rng.choice(TITLE_TAILS)}"
            fields["ipcNumber"] = "|".join(rng.sample(IPC, rng.randint(1, 3)))
            fields["openNumber"] = f"{prefix}{year:04d}{serial + 5000000:07d}"
            fields["openDate"] = (applied + timedelta(days=548)).strftime("%Y%m%d")
            fields["astrtCont"] = f"본 발명은 {fields['inventionTitle']}에 관한 것으로, 효율을 높이는 구성을 제공한다."
        elif kind == "design":
            fields["articleName"] = rng.choice(ARTICLES)
            fields["designNumber"] = f"M{design:03d}"
            fields["agentName"] = "특허법인 한결"
            fields["designMainClassification"] = f"{rng.randint(1, 32):02d}-0{rng.randint(1, 9)}"
        else:
            fields["title"] = "" if app % 11 == 0 else rng.choice(MARK_WORDS)  # figure-only marks have none
            fields["classificationCode"] = " ".join(f"{c:02d}" for c in sorted(rng.sample(range(1, 46), 2)))
            fields["viennaCode"] = "|".join(rng.sample(VIENNA, 2))
            fields["agentName"] = "특허법인 나래"
        return fields

    # --- request handling ----------------------------------------------------------------------------

    def note_arrival(self, path: str) -> int:
        """Log the request; return how many arrived in the current second (for rate-limit faults)."""
        now = time.time()
        with self.lock:
            self.arrivals.append(now)
            self.paths[path] += 1
            recent = 0
            for stamp in reversed(self.arrivals):
                if stamp < now - 1:
                    break
                recent += 1
        return recent

    def take_fault(self, path: str, page: str = "") -> str | None:
        with self.lock:
            for fault in self.faults.queue:
                if str(fault.get("page", page)) != page:
                    continue
                if fault.get("path", "") in path and fault.get("count", 1) > 0:
                    fault["count"] = fault.get("count", 1) - 1
                    kind = str(fault["kind"])
                    self.faults.queue = [f for f in self.faults.queue if f.get("count", 1) > 0]
                    return kind
        return None

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes]:  # noqa: PLR0911 - one per outcome
        """(HTTP status, body) for a KIPRIS path and its decoded query."""
        recent = self.note_arrival(path)
        low, high = self.faults.latency_ms
        if high > 0:
            time.sleep(random.uniform(low, high) / 1000)
        parts = [part for part in path.split("/") if part]
        if parts[:2] == ["kipo-api", "kipi"] and len(parts) == 4:
            family, service, operation = "kipo-api", parts[2], parts[3]
        elif parts[:2] == ["openapi", "rest"] and len(parts) == 4:
            family, service, operation = "openapi", parts[2], parts[3]
        else:
            return 404, b"<html><body>404 Not Found</body></html>"
        fault = self.take_fault(path, query.get("pageNo", [""])[0])
        if fault:
            return self.fault_answer(fault, family)
        if self.faults.rate_limit_per_sec and recent > self.faults.rate_limit_per_sec:
            return 200, error_xml(family, "10", "Blocked users.")
        key_param = "ServiceKey" if family == "kipo-api" else "accessKey"
        key = query.get(key_param, [""])[0]
        if not key:
            # Family A answers a wrong or missing key name with "bad parameter", not an auth error.
            return 200, error_xml(family, "10" if family == "kipo-api" else "30", "INVALID_REQUEST_PARAMETER_ERROR.")
        if key != self.api_key:
            return 200, error_xml(
                family, "30", "등록된 서비스키를 입력해 주십시오(Access key & Service key is not registerd error)"
            )
        if family == "openapi" and service == "CorpBsApplicantService" and operation in APPLICANT_OPS:
            return 200, self.applicant_answer(operation, query)
        route = SEARCH_ROUTES.get((family, service, operation))
        if route is None:
            return 200, error_xml(family, "10", "INVALID_REQUEST_PARAMETER_ERROR.")
        return 200, self.search_answer(family, route, query)

    def fault_answer(self, fault: str, family: str) -> tuple[int, bytes]:
        answers: dict[str, tuple[int, bytes]] = {
            "http500": (500, b"<html><body>500 Internal Server Error</body></html>"),
            "http503": (503, b"Service Unavailable"),
            "not_xml": (200, b"<html><body>\xec\xa0\x90\xea\xb2\x80 \xec\xa4\x91</body></html>"),
            "malformed": (200, b"<?xml version='1.0'?><response><header><resultCode>00</resultCode></head"),
            "truncated": (
                200,
                (
                    b"<?xml version='1.0'?><response><header><resultCode>00</resultCode>"
                    b"</header><body><items><item><applicationNumber>10200"
                ),
            ),
            "entity_bomb": (
                200,
                (
                    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
                    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                    b"<response><header><resultCode>00</resultCode></header><body>&c;</body></response>"
                ),
            ),
            "quota": (200, error_xml(family, "22", "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR.")),
            "blocked": (200, error_xml(family, "10", "Blocked users.")),
            "invalid_key": (200, error_xml(family, "30", "Access key & Service key is not registerd error")),
            "unsubscribed": (
                200,
                error_xml(family, "31", "DEADLINE_HAS_EXPIRED_ERROR.")
                if family == "kipo-api"
                else error_xml(family, "101", "AccessKey&ServiceID Is Not Registerd Error"),
            ),
            "bad_parameter": (200, error_xml(family, "10", "INVALID_REQUEST_PARAMETER_ERROR.")),
        }
        if fault == "slow":
            time.sleep(3)
            return 200, error_xml(family, "", "")
        return answers.get(fault, (500, b"unknown fault"))

    def applicant_answer(self, operation: str, query: dict[str, list[str]]) -> bytes:
        value = query.get(APPLICANT_OPS[operation], [""])[0]
        if operation == "corpBsApplicantInfoV3":
            org = self.by_business.get(value)
            holders = [(org, a) for a in org.applicants] if org else []
        elif operation == "corpBsApplicantInfoV2":
            org = self.by_corporate.get(value)
            holders = [(org, a) for a in org.applicants] if org else []
        else:
            holders = [self.by_applicant[value]] if value in self.by_applicant else []
        rows = "".join(
            "<corpBsApplicantInfo>"
            f"<ApplicantNumber>{a.number}</ApplicantNumber><ApplicantName>{escape(a.name)}</ApplicantName>"
            f"<CorporationNumber>{o.corporate_number}</CorporationNumber>"
            f"<BusinessRegistrationNumber>{o.business_number if o.lookup == 'business' else ''}"
            "</BusinessRegistrationNumber></corpBsApplicantInfo>"
            for o, a in holders
        )
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response><header><resultCode/><resultMsg/>'
            f"</header><body><items>{rows}</items></body></response>"
        ).encode()

    def search_answer(self, family: str, route: tuple[str, str, int], query: dict[str, list[str]]) -> bytes:
        kind, applicant_param, max_rows = route
        applicant = query.get(applicant_param, [""])[0]
        if not applicant:
            # e.g. `applicantName` sent to the patent search: KIPRIS says "bad parameter".
            return error_xml(family, "10", "INVALID_REQUEST_PARAMETER_ERROR.")
        holder = self.by_applicant.get(applicant)
        total = self.count(applicant, kind) if holder else 0
        if family == "kipo-api":
            size = _int(query, "numOfRows", DEFAULT_ROWS, max_rows)
            page = _int(query, "pageNo", 1, 10**6)
            start = (page - 1) * size
        else:
            size = _int(query, "docsCount", DEFAULT_ROWS, max_rows)
            start = _int(query, "docsStart", 1, 10**7) - 1  # a 1-based row offset, not a page number
            page = start // max(size, 1) + 1
        indexes = range(start, min(total, start + size))
        records = [self.record(holder[1], holder[0], kind, i) for i in indexes] if holder else []
        if family == "kipo-api":
            return kipo_api_xml(records, total=total, page=page, size=size)
        return openapi_xml(kind, records, total=total, start=start + 1)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            arrivals = list(self.arrivals)
            paths = dict(self.paths)
        per_second = Counter(int(stamp) for stamp in arrivals)
        return {
            "requests": len(arrivals),
            "arrivals": arrivals,
            "per_second": {str(second): count for second, count in sorted(per_second.items())},
            "max_in_any_1s_window": max_in_window(arrivals, 1.0),
            "paths": paths,
        }

    def control(self, change: dict[str, Any]) -> None:
        with self.lock:
            if change.get("reset"):
                self.arrivals.clear()
                self.paths.clear()
                self.faults = Faults()
            if "faults" in change:
                self.faults.queue.extend(dict(fault) for fault in change["faults"])
            if "latency_ms" in change:
                low, high = change["latency_ms"]
                self.faults.latency_ms = (int(low), int(high))
            if "rate_limit_per_sec" in change:
                self.faults.rate_limit_per_sec = int(change["rate_limit_per_sec"])
            if "epoch" in change:
                self.faults.epoch = int(change["epoch"])
                self._rows.cache_clear()


def max_in_window(arrivals: list[float], width: float) -> int:
    """The most arrivals inside any window [t, t + width) (two pointers over the sorted times)."""
    ordered = sorted(arrivals)
    best = start = 0
    for end, stamp in enumerate(ordered):
        while ordered[start] <= stamp - width:
            start += 1
        best = max(best, end - start + 1)
    return best


def _int(query: dict[str, list[str]], name: str, default: int, maximum: int) -> int:
    raw = query.get(name, [""])[0]
    value = int(raw) if raw.isdigit() and int(raw) > 0 else default
    return min(value, maximum)


def _elements(fields: dict[str, str]) -> str:
    return "".join(f"<{tag}>{escape(value)}</{tag}>" if value else f"<{tag}/>" for tag, value in fields.items())


def error_xml(family: str, code: str, message: str) -> bytes:
    success = "Y" if code in {"", "00"} else "N"
    header = f"<successYN>{success}</successYN>" if family == "kipo-api" else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><response><header>'
        f"{header}<resultCode>{code}</resultCode><resultMsg>{escape(message)}</resultMsg>"
        "</header><body><items/></body></response>"
    ).encode()


def kipo_api_xml(records: list[dict[str, str]], *, total: int, page: int, size: int) -> bytes:
    items = "".join(f"<item><indexNo>{n}</indexNo>{_elements(r)}</item>" for n, r in enumerate(records, 1))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S.0000")
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response><header><requestMsgID/>'
        f"<responseTime>{stamp}</responseTime><responseMsgID/><successYN>Y</successYN><resultCode>00</resultCode>"
        f"<resultMsg>NORMAL SERVICE.</resultMsg></header><body><items>{items}</items></body>"
        f"<count><numOfRows>{size}</numOfRows><pageNo>{page}</pageNo><totalCount>{total}</totalCount></count>"
        "</response>"
    ).encode()


# kipo-api names -> openapi PascalCase names (designs keep lowerCamel inside <DesignInfo>).
PATENT_B = {
    "applicantName": "Applicant",
    "applicationDate": "ApplicationDate",
    "applicationNumber": "ApplicationNumber",
    "astrtCont": "Abstract",
    "drawing": "DrawingPath",
    "inventionTitle": "InventionName",
    "ipcNumber": "InternationalpatentclassificationNumber",
    "openDate": "OpeningDate",
    "openNumber": "OpeningNumber",
    "publicationNumber": "PublicNumber",
    "publicationDate": "PublicDate",
    "registerDate": "RegistrationDate",
    "registerNumber": "RegistrationNumber",
    "registerStatus": "RegistrationStatus",
}
TRADEMARK_B = {
    "applicationNumber": "ApplicationNumber",
    "applicationDate": "ApplicationDate",
    "publicationNumber": "PublicNumber",
    "publicationDate": "PublicDate",
    "registrationNumber": "RegistrationNumber",
    "registrationDate": "RegistrationDate",
    "applicationStatus": "ApplicationStatus",
    "classificationCode": "GoodClassificationCode",
    "viennaCode": "ViennaCode",
    "applicantName": "ApplicantName",
    "agentName": "AgentName",
    "title": "Title",
    "drawing": "ImagePath",
}


def openapi_xml(kind: str, records: list[dict[str, str]], *, total: int, start: int) -> bytes:
    if kind == "patent":
        rows = "".join(
            f"<PatentUtilityInfo><SerialNumber>{n}</SerialNumber>"
            + _elements({PATENT_B[k]: v for k, v in r.items() if k in PATENT_B})
            + "</PatentUtilityInfo>"
            for n, r in enumerate(records, 1)
        )
        items = f"{rows}<TotalSearchCount>{total}</TotalSearchCount><SearchStartNumber>{start}</SearchStartNumber>"
    elif kind == "trademark":
        rows = "".join(
            f"<TradeMarkInfo><SerialNumber>{n}</SerialNumber>"
            + _elements({TRADEMARK_B[k]: v or " " for k, v in r.items() if k in TRADEMARK_B})
            + "</TradeMarkInfo>"
            for n, r in enumerate(records, 1)
        )
        items = f"<TotalSearchCount>{total}</TotalSearchCount>{rows}"
    else:
        rows = "".join(f"<DesignInfo><number>{n}</number>{_elements(r)}</DesignInfo>" for n, r in enumerate(records, 1))
        items = f"<totalCount>{total}</totalCount>{rows}"
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response><header><resultCode/><resultMsg/>'
        f"</header><body><items>{items}</items></body></response>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    simulator: SimulatedKipris
    protocol_version = "HTTP/1.1"

    def _reply(self, status: int, body: bytes, content_type: str = "application/xml;charset=UTF-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_sim/stats":
            self._reply(200, json.dumps(self.simulator.stats()).encode(), "application/json")
            return
        status, body = self.simulator.answer(url.path, parse_qs(url.query, keep_blank_values=True))
        self._reply(status, body)

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/_sim/control":
            self._reply(404, b"")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            change = json.loads(self.rfile.read(length) or b"{}")
            self.simulator.control(change)
        except (ValueError, TypeError, KeyError) as exc:
            self._reply(400, json.dumps({"error": str(exc)}).encode(), "application/json")
            return
        self._reply(200, b'{"ok": true}', "application/json")

    def log_message(self, format: str, *args: Any) -> None:
        # The query holds the key: log the path only.
        logger.debug("%s %s", self.command, urlsplit(self.path).path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a killed worker, a timeout) is normal here: one debug line, no traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("simulator client %s went away", client_address)
        else:
            super().handle_error(request, client_address)


def make_server(simulator: SimulatedKipris, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for `simulator` (port 0 picks a free one); call serve_forever() on it."""
    handler = type("SimHandler", (_Handler,), {"simulator": simulator})
    return _Server((host, port), handler)
