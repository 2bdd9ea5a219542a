"""gunicorn settings shared by `make run` and docker-compose."""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    """Freeze the loaded application's objects out of the garbage collector's reach.

    Django, DRF and the apps leave a few hundred thousand long-lived objects; every full collection walked
    them all, a pause of tens of milliseconds that set the API's p99 (measured: /api/v1/metrics/cpu?limit=1000
    at 50 requests/s, p99 ~80 ms -> ~20 ms; docs/BENCHMARKS.md, Monitoring). Objects created later are
    collected as usual.
    """
    import gc

    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus-client's multiprocess mode that this worker's live gauges are gone."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# gunicorn 27's control socket defaults to one path per user: several gunicorns on a host (tests, make run)
# would fight over it, and nothing here uses it.
control_socket_disable = True
