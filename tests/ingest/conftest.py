"""ingest fixtures: a real KIPRIS simulator over HTTP (in a thread of the test process, or as a process)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from django.conf import LazySettings

from ingest import services
from ingest.kipris.client import KiprisClient
from ingest.models import Organization
from ingest.simulator import SimOrganization, SimulatedKipris, make_server

API_KEY = "k3y+with/slash=and+plus=="


@dataclass
class Simulator:
    """A running simulator: its data (to compute expectations) and its control endpoints."""

    sim: SimulatedKipris
    url: str

    def control(self, **change: Any) -> None:
        requests.post(f"{self.url}/_sim/control", json=change, timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/_sim/stats", timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def org(self, lookup: str = "business", *, min_rows: int = 0, university: bool = False) -> SimOrganization:
        """The first simulated organisation of the given lookup type holding at least min_rows rows in total."""
        for org in self.sim.organizations:
            if org.lookup != lookup or (org.org_type == "university") != university:
                continue
            rows = sum(self.sim.count(a.number, k) for a in org.applicants for k in ("patent", "design", "trademark"))
            if rows >= min_rows:
                return org
        raise LookupError("no such simulated organisation")

    def holder_of(self, kind: str, min_rows: int) -> tuple[SimOrganization, str]:
        """An organisation found by business number and one of its applicants with >= min_rows of a kind."""
        for org in self.sim.organizations:
            for applicant in org.applicants:
                if org.lookup == "business" and self.sim.count(applicant.number, kind) >= min_rows:
                    return org, applicant.number
        raise LookupError("no such simulated applicant")

    def expected_rows(self, org: SimOrganization, kinds: tuple[str, ...] = ("patent", "design", "trademark")) -> int:
        return sum(self.sim.count(a.number, k) for a in org.applicants for k in kinds)


@pytest.fixture
def simulator(settings: LazySettings) -> Iterator[Simulator]:
    sim = SimulatedKipris(seed=7, organizations=300, api_key=API_KEY)
    server = make_server(sim)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.KIPRIS_BASE_URL = url
    settings.KIPRIS_API_KEY = API_KEY
    yield Simulator(sim, url)
    server.shutdown()
    server.server_close()


@pytest.fixture
def client_for(simulator: Simulator) -> Iterator[Callable[..., KiprisClient]]:
    """Unguarded clients on the simulator (the guards have their own tests)."""
    made: list[KiprisClient] = []

    def make(**kwargs: Any) -> KiprisClient:
        client = KiprisClient(simulator.url, kwargs.pop("api_key", API_KEY), timeout=(2, 5), **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def make_org(sim_org: SimOrganization, **overrides: Any) -> Organization:
    values = {
        "name": sim_org.name,
        "org_type": sim_org.org_type,
        "business_number": sim_org.business_number,
        "corporate_number": sim_org.corporate_number,
        **overrides,
    }
    return Organization.objects.create(**values)


def plan_run(run_id: int, client: KiprisClient) -> list[int]:
    """services.plan_runs for one run, its lookup error raised: how most tests start a harvest."""
    planned = services.plan_runs([run_id], client)[run_id]
    if isinstance(planned, BaseException):
        raise planned
    return planned


def harvest_batch(checkpoint_id: int, *, token: str, pages: int, client: KiprisClient) -> services.BatchOutcome:
    """services.harvest_checkpoints for one checkpoint, its error raised (as a task's batch of one does)."""
    outcome = services.harvest_checkpoints([checkpoint_id], token=token, pages=pages, client=client)[checkpoint_id]
    if outcome.error is not None:
        raise outcome.error
    return outcome
