"""core.supervision: restart counting, giving up on a crash loop, the state file and the health check.

The whole loop under a real supervisord runs in tests/test_make_run.py; these feed the listener's logic
the events supervisord sends (PROCESS_STATE_* with their payload fields).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from core.supervision import (
    CRASH_LOOP_RESTARTS,
    CRASH_LOOP_SECONDS,
    RESTART_DELAY_MAX_SECONDS,
    Supervision,
    processes_health,
    restart_delay,
    state_file,
)


def restart(supervision: Supervision, name: str, at: float, from_state: str = "EXITED") -> str | None:
    supervision.observe("PROCESS_STATE_EXITED", {"processname": name, "expected": "0", "pid": "42"}, at)
    return supervision.observe("PROCESS_STATE_STARTING", {"processname": name, "from_state": from_state}, at)


def test_first_start_is_not_a_restart_and_each_crash_is() -> None:
    supervision = Supervision()
    assert supervision.observe("PROCESS_STATE_STARTING", {"processname": "web", "from_state": "STOPPED"}, 0) is None
    assert supervision.processes["web"].restarts == 0
    assert restart(supervision, "web", 10) is None
    assert restart(supervision, "web", 20, from_state="BACKOFF") is None
    assert supervision.processes["web"].restarts == 2
    assert supervision.processes["web"].last_exit == "pid 42 exited unexpectedly"


def test_a_crash_loop_is_given_up_and_spread_out_restarts_are_not() -> None:
    supervision = Supervision()
    spaced = CRASH_LOOP_SECONDS / (CRASH_LOOP_RESTARTS - 1) + 1  # never CRASH_LOOP_RESTARTS within the window
    assert all(restart(supervision, "beat", n * spaced) is None for n in range(3 * CRASH_LOOP_RESTARTS))
    assert not supervision.processes["beat"].gave_up
    stops = [restart(supervision, "worker", 100 + n) for n in range(CRASH_LOOP_RESTARTS)]
    assert stops == [None] * (CRASH_LOOP_RESTARTS - 1) + ["worker"]
    assert supervision.processes["worker"].gave_up


def test_supervisords_own_fatal_is_a_give_up_too() -> None:
    supervision = Supervision()
    supervision.observe("PROCESS_STATE_FATAL", {"processname": "flower"}, 0)
    assert supervision.processes["flower"].gave_up


def test_state_survives_a_listener_restart_and_feeds_the_health_check(tmp_path: Path) -> None:
    with override_settings(SUPERVISION_DIR=str(tmp_path)):
        assert processes_health().ok  # nothing written yet: starting
        supervision = Supervision()
        restart(supervision, "web", 0)
        supervision.write(state_file())
        result = processes_health()
        assert (result.ok, result.detail) == (True, "1 processes; restarts: web 1")
        resumed = Supervision.resume(state_file())
        for n in range(CRASH_LOOP_RESTARTS):
            restart(resumed, "web", 10 + n)
        resumed.write(state_file())
        result = processes_health()
        assert not result.ok
        assert result.detail.startswith("gave up on web (crash loop)")
        assert f"web {CRASH_LOOP_RESTARTS + 1}" in result.detail


@pytest.mark.parametrize("configured", ["", "/some/dir"])
def test_the_check_exists_only_under_a_supervisor(configured: str) -> None:
    from core import health
    from core.supervision import register_health_check

    health._checks.pop("processes", None)
    with override_settings(SUPERVISION_DIR=configured):
        register_health_check()
    assert ("processes" in health.registered()) is bool(configured)
    health._checks.pop("processes", None)


def test_restarts_back_off_exponentially_and_the_backoff_expires(tmp_path: Path) -> None:
    """The first crash restarts at once; each further one in the window waits twice as long (the file the
    program's shell sleeps); once the window has passed, a crash restarts at once again."""
    supervision = Supervision()
    delays = []
    for n in range(CRASH_LOOP_RESTARTS - 1):
        restart(supervision, "worker", 100 + n)
        supervision.write_delays(tmp_path)
        delays.append(float((tmp_path / "worker").read_text()))
    assert delays == [1.0, 2.0, 4.0, 8.0][: CRASH_LOOP_RESTARTS - 1]
    assert restart_delay(12) == RESTART_DELAY_MAX_SECONDS
    supervision.tick(100 + CRASH_LOOP_SECONDS + CRASH_LOOP_RESTARTS)
    supervision.write_delays(tmp_path)
    assert (tmp_path / "worker").read_text() == "0\n"
    assert not supervision.processes["worker"].gave_up
