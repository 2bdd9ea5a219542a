"""Harvest log lines: `time | level | org_type | ipr_mode | message`, split per org type and IPR mode."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from ingest.logs import HarvestContextFilter, SplitByHarvestFileHandler, harvest_context
from tests.conftest import BASE_DIR

from .conftest import API_KEY, Simulator, make_org

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \| (\w+) \| (\S+) \| (\S+) \| (.+)$")
HARVEST = """
from ingest import services
from ingest.kipris.client import KiprisClient
client = KiprisClient("{url}", "{key}", org_type="{org_type}")
run = services.create_run({org}, ["patent", "design"])
checkpoints = services.plan_runs([run.pk], client)[run.pk]
for attempt in range(2):  # both searches' first pages fail (HTTP 500) at once; the second batch retries them
    services.harvest_checkpoints(checkpoints, token="t", pages=50, client=client)
"""
SEARCH_SERVICE = {"patent": "patUtiModInfoSearchSevice", "design": "designInfoSearchService"}


def test_a_harvest_logs_its_org_type_and_ipr_mode_to_console_and_split_files(
    simulator: Simulator, child_env: dict[str, str], tmp_path: Path
) -> None:
    """The searches' requests run in pool threads, two at once: each line still names its own search."""
    org = make_org(simulator.org("business", min_rows=1))
    simulator.control(
        faults=[{"kind": "http500", "count": 1, "path": service} for service in SEARCH_SERVICE.values()],
        latency_ms=[200, 200],
    )
    script = HARVEST.format(url=simulator.url, key=API_KEY, org_type=org.org_type, org=org.pk)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=BASE_DIR,
        env={**child_env, "LOG_DIR": str(tmp_path), "PIPEWATCH_PROCESS": "harvest-test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    parsed = [match.groups() for line in result.stderr.splitlines() if (match := LINE.match(line))]
    assert {("WARNING", "company", "patent"), ("WARNING", "company", "design")} <= {g[:3] for g in parsed}
    assert any(groups[:3] == ("INFO", "company", "applicant") and "applicant number" in groups[3] for groups in parsed)

    files = {path.name: path.read_text().splitlines() for path in tmp_path.glob("kipris-*.log")}
    assert set(files) == {"kipris-company-applicant.log", "kipris-company-patent.log", "kipris-company-design.log"}
    for name, lines in files.items():
        mode = name.removeprefix("kipris-company-").removesuffix(".log")
        assert lines
        fields = [match.groups()[1:3] if (match := LINE.match(line)) else None for line in lines]
        assert set(fields) == {("company", mode)}
    for mode, service in SEARCH_SERVICE.items():
        failed = [line for line in files[f"kipris-company-{mode}.log"] if "failed: KIPRIS answered HTTP 500" in line]
        assert len(failed) == 1
        assert service in failed[0]
    searches = files["kipris-company-patent.log"] + files["kipris-company-design.log"]
    assert any("harvest run" in line and "done" in line for line in searches)


def test_split_files_rotate_at_midnight_and_keep_seven(tmp_path: Path) -> None:
    logger = logging.getLogger("ingest.test_rotation")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False) as clock:
        handler = SplitByHarvestFileHandler(str(tmp_path))
        handler.addFilter(HarvestContextFilter())
        handler.setFormatter(logging.Formatter("%(org_type)s %(ipr_mode)s %(message)s"))
        logger.addHandler(handler)
        try:
            for day in range(10):
                with harvest_context("university", "design"):
                    logger.info("day %d", day)
                clock.shift(timedelta(days=1))
            logger.info("outside a harvest")
        finally:
            logger.removeHandler(handler)
            handler.close()
    rotated = sorted(path.name for path in tmp_path.glob("kipris-university-design.log.*"))
    assert len(rotated) == 7
    assert rotated[-1] == "kipris-university-design.log.2026-03-09"
    assert (tmp_path / "kipris-university-design.log").read_text() == "university design day 9\n"
    assert (tmp_path / "kipris-none-none.log").read_text() == "- - outside a harvest\n"


@pytest.mark.parametrize(("org_type", "mode"), [("company", "trademark"), ("", "")])
def test_the_filter_reads_the_context_of_the_current_unit_of_work(org_type: str, mode: str) -> None:
    record = logging.LogRecord("ingest.services", logging.INFO, __file__, 1, "x", None, None)
    with harvest_context(org_type, mode):
        HarvestContextFilter().filter(record)
    assert (record.org_type, record.ipr_mode) == (org_type or "-", mode or "-")  # type: ignore[attr-defined]
    HarvestContextFilter().filter(record)
    assert (record.org_type, record.ipr_mode) == ("-", "-")  # type: ignore[attr-defined]
