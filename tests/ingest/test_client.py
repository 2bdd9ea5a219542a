"""The KIPRIS client against the simulator over real HTTP: families, paging, lookup fallback, errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ingest.kipris.client import Family, KiprisClient
from ingest.kipris.errors import (
    BlockedError,
    PermanentError,
    PoisonedResponseError,
    QuotaExceededError,
    TooManyResultsError,
    TransientError,
)

from .conftest import Simulator


def harvest_all_pages(client: KiprisClient, kind: str, applicant: str, family: Family) -> tuple[list[str], int]:
    """Page the way the harvester does; return the keys seen and the number of requests."""
    keys: list[str] = []
    page, fetched, requests_made = 1, 0, 0
    while True:
        result = client.search_page(kind, applicant, page=page, fetched=fetched, family=family)
        requests_made += 1
        keys += [f"{r.application_number}{r.fields['design_number']}" for r in result.records]
        fetched += result.rows
        page += 1
        if (result.total is not None and fetched >= result.total) or result.rows < result.page_size:
            return keys, requests_made


def test_applicant_lookup_by_business_number(simulator: Simulator, client_for: Callable[..., KiprisClient]) -> None:
    org = simulator.org("business", min_rows=1)
    found = client_for().find_applicants(org.business_number, org.corporate_number)
    assert [a.number for a in found] == [a.number for a in org.applicants]
    assert found[0].name == org.applicants[0].name
    assert simulator.sim.paths["/openapi/rest/CorpBsApplicantService/corpBsApplicantInfoV3"] == 1
    assert simulator.sim.paths["/openapi/rest/CorpBsApplicantService/corpBsApplicantInfoV2"] == 0


def test_applicant_lookup_falls_back_to_corporate_number(
    simulator: Simulator, client_for: Callable[..., KiprisClient]
) -> None:
    org = simulator.org("corporate")
    client = client_for()
    assert client.applicants_by_business_number(org.business_number) == []
    found = client.find_applicants(org.business_number, org.corporate_number)
    assert {a.number for a in found} == {a.number for a in org.applicants}
    assert simulator.sim.paths["/openapi/rest/CorpBsApplicantService/corpBsApplicantInfoV2"] == 1


def test_applicant_lookup_without_corporate_number_finds_nothing(
    simulator: Simulator, client_for: Callable[..., KiprisClient]
) -> None:
    org = simulator.org("corporate")
    assert client_for().find_applicants(org.business_number, "") == []


@pytest.mark.parametrize("family", [Family.KIPO_API, Family.OPENAPI])
@pytest.mark.parametrize("kind", ["patent", "design", "trademark"])
def test_paging_fetches_every_row_once(
    simulator: Simulator, client_for: Callable[..., KiprisClient], family: Family, kind: str
) -> None:
    """kipo-api pages by number, openapi by row offset; both must cover every row exactly once."""
    applicant = next(
        a.number
        for org in simulator.sim.organizations
        for a in org.applicants
        if simulator.sim.count(a.number, kind) > (100 if kind == "design" else 500) * 2
    )
    keys, requests_made = harvest_all_pages(client_for(), kind, applicant, family)
    total = simulator.sim.count(applicant, kind)
    page_size = 100 if kind == "design" else 500
    assert len(keys) == total
    assert len(set(keys)) == total
    assert requests_made == max(1, -(-total // page_size))


def test_openapi_row_offset_is_not_a_page_number(simulator: Simulator, client_for: Callable[..., KiprisClient]) -> None:
    """docsStart=2 starts one row later (the neojune bug would ask for docsStart=page)."""
    applicant = next(
        a.number
        for o in simulator.sim.organizations
        for a in o.applicants
        if simulator.sim.count(a.number, "patent") > 3
    )
    client = client_for()
    first = client.search_page("patent", applicant, page=1, fetched=0, family=Family.OPENAPI)
    shifted = client.search_page("patent", applicant, page=2, fetched=1, family=Family.OPENAPI)
    assert shifted.records[0].application_number == first.records[1].application_number


def test_records_are_normalised(simulator: Simulator, client_for: Callable[..., KiprisClient]) -> None:
    org, applicant = next(
        (o, a.number)
        for o in simulator.sim.organizations
        for a in o.applicants
        if simulator.sim.count(a.number, "patent") >= 10
    )
    page = client_for().search_page("patent", applicant, page=1, fetched=0)
    kinds = {r.kind for r in page.records}
    assert kinds == {"patent", "utility"}  # the 20-prefix rows are utility models
    record = page.records[0]
    assert record.fields["ipc_codes"]
    assert all(" " in code for code in record.fields["ipc_codes"])  # "H01L 21/02": not split on spaces
    assert record.fields["application_date"] is not None
    assert record.fields["applicant_names"][0] == org.name
    joint = next(r for r in page.records if len(r.fields["applicant_names"]) > 1)
    assert joint.fields["applicant_names"] == [org.name, "대한민국(관리부서:특허청)"]
    assert record.raw["applicationNumber"] == record.application_number


def test_key_with_plus_slash_equals_is_encoded_exactly_once(
    simulator: Simulator, client_for: Callable[..., KiprisClient]
) -> None:
    org = simulator.org("business", min_rows=1)
    # A key pasted already percent-encoded from the portal works too (decoded once, encoded once).
    for key in ("k3y+with/slash=and+plus==", "k3y%2Bwith%2Fslash%3Dand%2Bplus%3D%3D"):
        assert client_for(api_key=key).find_applicants(org.business_number, "")


def test_wrong_key_is_permanent(simulator: Simulator, client_for: Callable[..., KiprisClient]) -> None:
    with pytest.raises(PermanentError) as raised:
        client_for(api_key="wrong").search_page("patent", "119990000004", page=1, fetched=0)
    assert raised.value.result_code == "30"


@pytest.mark.parametrize(
    ("fault", "family", "error", "code"),
    [
        ("bad_parameter", Family.KIPO_API, PermanentError, "10"),
        ("invalid_key", Family.OPENAPI, PermanentError, "30"),
        ("unsubscribed", Family.KIPO_API, PermanentError, "31"),
        ("unsubscribed", Family.OPENAPI, PermanentError, "101"),
        ("blocked", Family.KIPO_API, BlockedError, "10"),
        ("quota", Family.KIPO_API, QuotaExceededError, "22"),
        ("http500", Family.KIPO_API, TransientError, ""),
        ("http503", Family.OPENAPI, TransientError, ""),
        ("not_xml", Family.KIPO_API, TransientError, ""),
        ("malformed", Family.KIPO_API, TransientError, ""),
        ("truncated", Family.OPENAPI, TransientError, ""),
        ("entity_bomb", Family.KIPO_API, PoisonedResponseError, ""),
    ],
)
def test_error_classes(
    simulator: Simulator,
    client_for: Callable[..., KiprisClient],
    fault: str,
    family: Family,
    error: type[Exception],
    code: str,
) -> None:
    simulator.control(faults=[{"kind": fault, "count": 1}])
    with pytest.raises(error) as raised:
        client_for().search_page("trademark", "119990000004", page=1, fetched=0, family=family)
    assert getattr(raised.value, "result_code", "") == code
    if error is BlockedError:
        assert "Blocked users." in str(raised.value)


def test_timeout_is_transient(simulator: Simulator, client_for: Callable[..., KiprisClient]) -> None:
    simulator.control(faults=[{"kind": "slow", "count": 1}])
    client = KiprisClient(simulator.url, "k3y+with/slash=and+plus==", timeout=(1, 0.5))
    with pytest.raises(TransientError, match="timed out"):
        client.search_page("patent", "119990000004", page=1, fetched=0)


def test_wrong_parameter_name_is_a_bad_parameter(simulator: Simulator) -> None:
    """Sending `applicantName` to the patent search (it wants `applicant`) gets code 10, as upstream."""
    client = KiprisClient(simulator.url, "k3y+with/slash=and+plus==")
    with pytest.raises(PermanentError) as raised:
        client.request(
            Family.KIPO_API,
            "patUtiModInfoSearchSevice",
            "getAdvancedSearch",
            {"applicantName": "119990000004"},
            mode="patent",
        )
    assert raised.value.result_code == "10"


def test_total_count_guard(simulator: Simulator, client_for: Callable[..., KiprisClient]) -> None:
    applicant = next(
        a.number
        for o in simulator.sim.organizations
        for a in o.applicants
        if simulator.sim.count(a.number, "patent") > 50
    )
    with pytest.raises(TooManyResultsError, match="ignored upstream"):
        client_for(max_total=50).search_page("patent", applicant, page=1, fetched=0)


def test_unreachable_host_error_never_contains_the_key(caplog: pytest.LogCaptureFixture) -> None:
    key = "s3cr3t+key/with=signs"
    client = KiprisClient("http://127.0.0.1:9", key, timeout=(0.5, 0.5))
    with pytest.raises(TransientError) as raised:
        client.search_page("patent", "119990000004", page=1, fetched=0)
    rendered = f"{raised.value!s} {raised.value!r} {raised.value.__cause__!r} {caplog.text}"
    for form in (key, "s3cr3t%2Bkey%2Fwith%3Dsigns", "s3cr3t"):
        assert form not in rendered
    assert raised.value.__suppress_context__


def test_debug_logs_of_http_libraries_never_contain_the_key(
    simulator: Simulator, client_for: Callable[..., KiprisClient], caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs each request line with its query at DEBUG; the key must come out as ***."""
    import logging

    org = simulator.org("business", min_rows=1)
    with caplog.at_level(logging.DEBUG):
        client_for().find_applicants(org.business_number, "")
        client_for().search_page("patent", org.applicants[0].number, page=1, fetched=0)
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("urllib3")]
    assert any("accessKey=***" in line for line in lines)
    assert any("ServiceKey=***" in line for line in lines)
    for form in ("k3y+with/slash=and+plus==", "k3y%2Bwith%2Fslash%3Dand%2Bplus%3D%3D", "k3y"):
        assert form not in caplog.text
