"""gunicorn settings shared by `make run` and docker-compose."""

from __future__ import annotations

from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus-client's multiprocess mode that this worker's live gauges are gone."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
