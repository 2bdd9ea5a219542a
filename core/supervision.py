"""Supervision under `make run`: supervisord restarts a crashed process, this module counts and judges it.

supervisord (scripts/run.py writes its configuration from the Procfile) restarts any process that exits
and leaves the others running. A process that dies within `startsecs` of starting is retried after 1, 2,
3, ... s (supervisord's linear backoff) and given up after `startretries` tries (FATAL). A process that
was up is restarted at once, and supervisord never gives up on one that dies a little later each time, so
the event listener (`manage.py supervise_events`, an eventlistener of supervisord) adds both: a capped
exponential backoff (the delay it writes to delay/<name>, which the program's shell sleeps before exec)
and a give-up: CRASH_LOOP_RESTARTS restarts within CRASH_LOOP_SECONDS stop the process for good, with a
CRITICAL log line that says so and where its log is.

The listener keeps a small JSON state file (per process: state, restarts, gave up, last exit) that the
`processes` health check reads, and counts restarts in Prometheus (`pipewatch_process_restarts_total`).
Everything lives in SUPERVISION_DIR (set by scripts/run.py): supervisord.conf, state.json, one log per
process under log/.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from prometheus_client import Counter, Gauge

from . import health

logger = logging.getLogger(__name__)

# A process restarted 5 times in 5 minutes is crash-looping: restarting it more only floods the logs and
# hides the cause. A healthy system restarts a process a few times a day at most (a killed worker, an
# OOM); the slowest process to start under `make run` (the web, ~10 s on 2 cores) keeps well under it.
CRASH_LOOP_RESTARTS = 5
CRASH_LOOP_SECONDS = 300.0

# The first crash in CRASH_LOOP_SECONDS restarts at once (a one-off kill or OOM costs nothing more); each
# further one waits twice as long: 1, 2, 4, 8 s before the give-up, capped at 30 s should the give-up
# threshold be raised. The delays expire with the restarts that caused them.
RESTART_DELAY_BASE_SECONDS = 1.0
RESTART_DELAY_MAX_SECONDS = 30.0


def restart_delay(recent_restarts: int) -> float:
    """Seconds to wait before the next restart, given the restarts within CRASH_LOOP_SECONDS."""
    if recent_restarts == 0:
        return 0.0
    return min(RESTART_DELAY_MAX_SECONDS, RESTART_DELAY_BASE_SECONDS * 2 ** (recent_restarts - 1))


PROCESS_RESTARTS = Counter(
    "pipewatch_process_restarts", "Restarts of a `make run` process by its supervisor.", ["process"]
)
PROCESS_GAVE_UP = Gauge(
    "pipewatch_process_gave_up",
    "1 while the supervisor has given up on a crash-looping process.",
    ["process"],
    multiprocess_mode="max",
)


@dataclass
class ProcessState:
    state: str = "STARTING"
    restarts: int = 0
    gave_up: bool = False
    last_exit: str = ""
    next_delay: float = 0.0
    recent_restarts: deque[float] = field(default_factory=deque)

    def forget_before(self, now: float) -> None:
        """Drop restarts older than the crash-loop window; the backoff shrinks with them."""
        while self.recent_restarts and now - self.recent_restarts[0] > CRASH_LOOP_SECONDS:
            self.recent_restarts.popleft()
        self.next_delay = restart_delay(len(self.recent_restarts))

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("recent_restarts")
        return data


@dataclass
class Supervision:
    """What the listener knows about every process; `observe` applies one supervisord state event."""

    processes: dict[str, ProcessState] = field(default_factory=dict)

    @classmethod
    def resume(cls, path: Path) -> Supervision:
        """The state a restarted listener left off with (restart counts survive the listener's own crash)."""
        if not path.exists():
            return cls()
        saved = read_state(path)
        return cls({name: ProcessState(**fields) for name, fields in saved.items()})

    def observe(self, event: str, payload: dict[str, str], now: float) -> str | None:
        """Apply a PROCESS_STATE_* event; returns the name of a process to stop for good, if any."""
        name = payload["processname"]
        process = self.processes.setdefault(name, ProcessState())
        process.state = event.removeprefix("PROCESS_STATE_")
        if event == "PROCESS_STATE_EXITED":
            expected = payload.get("expected") == "1"
            process.last_exit = f"pid {payload.get('pid')} exited{'' if expected else ' unexpectedly'}"
        elif event == "PROCESS_STATE_STARTING" and payload.get("from_state") in {"EXITED", "BACKOFF"}:
            process.restarts += 1
            PROCESS_RESTARTS.labels(process=name).inc()
            process.recent_restarts.append(now)
            process.forget_before(now)
            if len(process.recent_restarts) >= CRASH_LOOP_RESTARTS and not process.gave_up:
                self._give_up(name, process, f"{len(process.recent_restarts)} restarts in {CRASH_LOOP_SECONDS:.0f} s")
                return name
        elif event == "PROCESS_STATE_FATAL":
            self._give_up(name, process, "it kept failing within seconds of starting")
        elif event == "PROCESS_STATE_RUNNING" and process.gave_up and not process.recent_restarts:
            process.gave_up = False  # an operator started it again (supervisorctl start)
            PROCESS_GAVE_UP.labels(process=name).set(0)
        return None

    def tick(self, now: float) -> None:
        """Supervisord's TICK_60: restarts leave the window, so backoffs shrink back to zero."""
        for process in self.processes.values():
            process.forget_before(now)

    def write_delays(self, directory: Path) -> None:
        """One file per process holding the seconds its shell sleeps before the next start."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, process in self.processes.items():
            (directory / name).write_text(f"{process.next_delay:g}\n")

    def _give_up(self, name: str, process: ProcessState, why: str) -> None:
        process.gave_up = True
        PROCESS_GAVE_UP.labels(process=name).set(1)
        directory = Path(settings.SUPERVISION_DIR)
        logger.critical(
            "gave up on process %s: %s (last: %s). The other processes keep running. Its output is in %s; fix the "
            "cause, then `supervisorctl -c %s start %s`",
            name, why, process.last_exit or "no exit seen", directory / "log" / f"{name}.log",
            directory / "supervisord.conf", name,
        )  # fmt: skip

    def write(self, path: Path) -> None:
        """Replace the state file atomically, so the health check never reads half a file."""
        data = {"updated": time.time(), "processes": {n: p.public() for n, p in sorted(self.processes.items())}}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(data, indent=1))
        partial.replace(path)


def state_file() -> Path:
    return Path(settings.SUPERVISION_DIR) / "state.json"


def delay_dir() -> Path:
    return Path(settings.SUPERVISION_DIR) / "delay"


def read_state(path: Path) -> dict[str, dict[str, Any]]:
    return dict(json.loads(path.read_text())["processes"])


def processes_health() -> health.CheckResult:
    """Fails while the supervisor has given up on a process; the detail counts restarts per process."""
    path = state_file()
    if not path.exists():
        return health.CheckResult(ok=True, detail="supervisor starting: no process state yet")
    processes = read_state(path)
    given_up = sorted(name for name, process in processes.items() if process["gave_up"])
    restarted = ", ".join(f"{name} {p['restarts']}" for name, p in sorted(processes.items()) if p["restarts"])
    detail = f"{len(processes)} processes; restarts: {restarted or 'none'}"
    if given_up:
        return health.CheckResult(ok=False, detail=f"gave up on {', '.join(given_up)} (crash loop); {detail}")
    return health.CheckResult(ok=True, detail=detail)


def register_health_check() -> None:
    """Only a supervised system (make run) has processes to report on."""
    if settings.SUPERVISION_DIR:
        health.register("processes", cache_seconds=0)(processes_health)
