"""gunicorn settings shared by `make run` and docker-compose."""

from __future__ import annotations

from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus-client's multiprocess mode that this worker's live gauges are gone."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# gunicorn 27's control socket defaults to one path per user: several gunicorns on a host (tests, make run)
# would fight over it, and nothing here uses it.
control_socket_disable = True
