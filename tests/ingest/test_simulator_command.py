"""`manage.py kipris_simulator` as a real process, and the metrics a harvest leaves on /metrics."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from django.test import Client

from ingest import services
from ingest.kipris.client import Family, KiprisClient
from ingest.simulator import DEFAULT_KEY, SimulatedKipris

from ..conftest import ChildProcess, free_port, wait_for
from .conftest import API_KEY, Simulator, harvest_batch, make_org, plan_run


@pytest.mark.slow
def test_simulator_process_serves_both_families_and_stops_on_sigterm(
    start_process: Callable[..., ChildProcess],
) -> None:
    port = free_port()
    sim = start_process("sim", "manage.py", "kipris_simulator", "--port", str(port), "--organizations", "50")
    wait_for(lambda: "KIPRIS simulator on" in sim.output(), timeout=30, what="the simulator to listen")
    client = KiprisClient(f"http://127.0.0.1:{port}", DEFAULT_KEY)
    expected = SimulatedKipris(organizations=50).organizations[1]
    found = client.find_applicants(expected.business_number, "")
    assert [a.number for a in found] == [a.number for a in expected.applicants]
    for family in Family:
        page = client.search_page("design", found[0].number, page=1, fetched=0, family=family)
        assert page.total == SimulatedKipris(organizations=50).count(found[0].number, "design")
    stats = requests.get(f"http://127.0.0.1:{port}/_sim/stats", timeout=5).json()
    assert stats["requests"] == 3
    assert DEFAULT_KEY not in sim.output()
    sim.stop(signal.SIGTERM, timeout=10)
    assert sim.proc.returncode == 0


def test_export_orgs_matches_the_served_data(tmp_path: Path) -> None:
    target = tmp_path / "orgs.csv"
    subprocess.run(
        [sys.executable, "manage.py", "kipris_simulator", "--export-orgs", str(target), "--count", "3", "--seed", "5"],
        cwd=Path(__file__).resolve().parents[2],
        check=True,
        capture_output=True,
    )
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    orgs = SimulatedKipris(seed=5, organizations=3).organizations
    assert [r["business_number"] for r in rows] == [o.business_number for o in orgs]
    assert rows[0]["org_type"] == "university"


@pytest.mark.django_db
def test_simulator_is_deterministic_for_a_seed() -> None:
    first, again, other = (
        SimulatedKipris(seed=3, organizations=20),
        SimulatedKipris(seed=3, organizations=20),
        SimulatedKipris(seed=4, organizations=20),
    )
    assert first.organizations == again.organizations
    holder, applicant = next(
        (org, a) for org in first.organizations for a in org.applicants if first.count(a.number, "trademark")
    )
    assert first.count(applicant.number, "trademark") == again.count(applicant.number, "trademark")
    assert first.record(applicant, holder, "trademark", 0) == again.record(applicant, holder, "trademark", 0)
    assert [o.name for o in first.organizations] != [o.name for o in other.organizations]


@pytest.mark.django_db
def test_harvest_metrics_reach_the_metrics_endpoint(simulator: Simulator) -> None:
    org = make_org(simulator.org("business", min_rows=1))
    run = services.create_run(org.pk, ["patent"])
    kipris = KiprisClient(simulator.url, API_KEY, org_type=org.org_type)
    for checkpoint_id in plan_run(run.pk, kipris):
        harvest_batch(checkpoint_id, token="t", pages=10, client=kipris)
    body = Client().get("/metrics").content.decode()
    assert 'kipris_requests_total{ipr_mode="applicant",org_type="company",status="success"}' in body
    assert 'kipris_requests_total{ipr_mode="patent",org_type="company",status="success"}' in body
    for name in ("kipris_response_seconds_count", "kipris_worker_process_seconds_count", "kipris_queue_size"):
        assert name in body
