"""gunicorn settings shared by `make run` and docker-compose."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def post_worker_init(worker: Any) -> None:
    """Freeze the loaded application's objects out of the garbage collector's reach.

    Django, DRF and the apps leave a few hundred thousand long-lived objects; every full collection walked
    them all, a pause of tens of milliseconds that set the API's p99 (measured: /api/v1/metrics/cpu?limit=1000
    at 50 requests/s, p99 ~80 ms -> ~20 ms; docs/BENCHMARKS.md, Monitoring). Objects created later are
    collected as usual.
    """
    import gc

    gc.freeze()


def post_fork(server: Any, worker: Any) -> None:
    """Make the kernel kill this worker when the master dies.

    A SIGKILLed master (a crash, the OOM killer, the supervisor test) otherwise leaves its workers
    serving on the port: the restarted master cannot bind it and crash-loops until the orphans notice
    their new parent and exit, seconds later, while health answers from old code (seen in CI: health
    200 from the orphans, then refused). Linux only; elsewhere gunicorn's own parent check remains.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        server.log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %s", ctypes.get_errno())
    if os.getppid() != worker.ppid:  # the master died before the request above took effect
        os._exit(1)


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus-client's multiprocess mode that this worker's live gauges are gone."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# Import the application once in the master and fork the workers from it: a (re)started web is serving in
# one Django start-up (~1.5 s of CPU) instead of one per worker, which matters most when the supervisor
# restarts it on a busy machine.
preload_app = True

# One listening socket per worker (SO_REUSEPORT): the kernel spreads new connections over the workers by
# their addresses. With the one shared socket, whichever worker was on a core when a burst of clients
# connected took most of them and kept them (keep-alive): 100 wrk connections split 72/25/3 over 3 workers,
# and the 72 waited on one process while another idled. Measured, /api/v1/metrics/current, wrk 100
# connections, 3 x 4, paired runs at load ~8: shared socket 1,123-1,213 req/s, p99 184-203 ms; one socket
# per worker 2,105-2,132 req/s, p99 90-100 ms, connections 38/31/31 (docs/BENCHMARKS.md, Monitoring).
# Two costs: connections still queued on a worker's socket when that worker exits are reset unless the
# host sets net.ipv4.tcp_migrate_req=1 (docker-compose does), and a second server started on the same port
# by the same user shares it instead of failing to bind.
reuse_port = True

# gunicorn 27's control socket defaults to one path per user: several gunicorns on a host (tests, make run)
# would fight over it, and nothing here uses it.
control_socket_disable = True
