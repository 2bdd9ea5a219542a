"""core/gunicorn_conf.py under a real gunicorn: a SIGKILLed master takes its workers with it."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import psutil

from tests.conftest import ChildProcess, free_port, get_or_none, wait_for


def test_killed_master_leaves_no_worker_holding_the_port(start_process: Callable[..., ChildProcess]) -> None:
    """Without the post_fork hook the orphans kept serving, so a restarted master could not bind (CI, `make run`)."""
    port = free_port()
    web = start_process(
        "web", "-m", "gunicorn", "core.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
        "--config", "python:core.gunicorn_conf",
    )  # fmt: skip
    wait_for(lambda: get_or_none(f"http://127.0.0.1:{port}/api/v1/health") is not None, timeout=60, what="gunicorn")
    workers = wait_for(lambda: len(web.children()) == 2 and web.children(), timeout=30, what="two workers")
    assert isinstance(workers, list)

    os.kill(web.proc.pid, signal.SIGKILL)

    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived their master: {alive}"
    assert not get_or_none(f"http://127.0.0.1:{port}/api/v1/health") is not None
