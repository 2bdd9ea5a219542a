"""`make run` smoke test: the whole system comes up healthy on embedded defaults and Ctrl-C leaves nothing.

It runs the real Makefile target (the install step is a no-op once the venv is current) with an
unset REDIS_URL (so a private Redis starts), SQLite in a temporary var dir, and free ports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import BASE_DIR, free_port, wait_for

pytestmark = pytest.mark.slow


def processes_with_marker(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("PIPEWATCH_SMOKE_ID") == marker:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def health(url: str) -> int | None:
    try:
        return requests.get(url, timeout=10).status_code
    except requests.RequestException:  # not listening yet, or too busy starting to answer in time
        return None


def test_make_run_comes_up_healthy_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR"}}
    env.update(
        {
            "PIPEWATCH_SMOKE_ID": marker,
            "PIPEWATCH_VAR_DIR": str(tmp_path / "var"),
            "PORT": str(port),
            "FLOWER_PORT": str(flower_port),
            "REDIS_PORT": str(free_port()),
        }
    )
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            ["make", "run"], cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: health(f"{base}/api/v1/health") == 200, timeout=240, interval=1, what="health 200")
        wait_for(lambda: "up and healthy" in log.read_text(), timeout=30, what="the URL banner")
        banner = log.read_text()
        for url in (f"{base}/admin/", f"{base}/api/docs/", f"{base}/metrics", f"http://127.0.0.1:{flower_port}/"):
            assert url in banner
        assert requests.get(f"{base}/api/docs/", timeout=10).status_code == 200
        assert requests.get(f"http://127.0.0.1:{flower_port}/api/workers", timeout=10).status_code == 200
        assert "created admin user 'admin' with password: " in banner
        assert processes_with_marker(marker)
    finally:
        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(run.pid, signal.SIGINT)
        run.wait(timeout=60)
    deadline = time.monotonic() + 30
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    leftovers = [f"{p.pid} {p.name()}" for p in processes_with_marker(marker)]
    for proc in processes_with_marker(marker):
        proc.kill()
    assert leftovers == [], f"left behind: {leftovers}\n{log.read_text()[-3000:]}"
