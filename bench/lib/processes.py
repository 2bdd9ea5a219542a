"""The processes a bench starts beside itself: Celery workers, gunicorn, simulators."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start argv from the project root with its output discarded (a bench prints only its JSON line), in
    a session of its own, so that `os.killpg(process.pid, …)` also stops the children it forks."""
    return subprocess.Popen(
        argv, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def celery_worker(
    queue: str, hostname: str, *, concurrency: int = 1, standalone: bool = True, extra: Sequence[str] = ()
) -> list[str]:
    """The argv of one project worker on one queue, under a hostname the bench can ping or tell apart.

    standalone: the bench's workers are the only ones, so they skip the start-up sync with their peers and
    the cluster chatter (mingle, gossip) that only costs CPU here, and log warnings only.
    """
    argv = [sys.executable, "-m", "celery", "-A", "core", "worker", "-Q", queue, "-c", str(concurrency)]
    argv += ["--hostname", hostname, *extra]
    if standalone:
        argv += ["--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
    return argv
