"""A realistic alert storm: 20 simulated sensors report through the real serial bridge and the host agent
samples, both reaching PostgreSQL through a TCP proxy; the proxy is cut for 2 minutes. Detection (a real
worker, scheduled by a real beat) sees every sensor go silent at once: 20 gap events. Incidents turn them
into ONE incident and ONE message at the webhook (no per-sensor messages); after the cut the bridge
back-fills, the events resolve and the incident with them. Test overrides shorten only the windows:
gap after 1 silent minute, clean after 1 minute, group_wait 20 s."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiops.models import Incident, IncidentStatus
from anomaly.models import AnomalyEvent, DetectionRun
from monitoring.models import HostSample
from sensors.models import Reading
from tests.conftest import ChildProcess, TcpProxy, wait_for
from tests.core.test_notify import Receiver

SENSORS = 20
CUT_SECONDS = 120
SEND_SECOND = 20  # the second of each minute the simulated device reports at
STARTUP_SECONDS = 10  # about how long the simulator takes to start (Django set-up) on a loaded machine
CUT_SECOND = 45


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


@pytest.mark.slow
def test_two_minute_database_cut_is_one_incident_and_one_message(
    tmp_path: Path,
    db_proxy: TcpProxy,
    start_process: Callable[..., ChildProcess],
    celery_worker: Callable[..., ChildProcess],
    webhook: Receiver,
) -> None:
    overrides = {
        # no catch-up of the minutes before the test began (sensors without readings then would be gaps)
        "ANOMALY_CATCHUP_MINUTES": "1",
        # The device below reports 20 s into each minute, so the minute that has just ended is complete at
        # second 0. (With the default 2, the minutes of the cut are evaluated after the bridge's back-fill,
        # so the cut makes no gap at all: the storm this test needs would not happen.)
        "ANOMALY_DETECT_DELAY_MINUTES": "1",
        "ALERT_WEBHOOK_URL": f"{webhook.url}/hook", "SLACK_WEBHOOK_URL": "", "ANOMALY_GAP_MINUTES": "1",
        "ANOMALY_CLEAN_MINUTES": "1", "AIOPS_GROUP_WAIT_SECONDS": "20", "ANOMALY_ALERT_FRAMES": "false",
        "MONITORING_AGENT_INTERVAL": "1", "MONITORING_AGENT_BATCH_SIZE": "2", "MONITORING_AGENT_FLUSH_SECONDS": "2",
        "MONITORING_AGENT_METRICS_PORT": "0",
    }  # fmt: skip
    through_proxy = {**overrides, "DATABASE_URL": db_proxy.database_url()}
    link = tmp_path / "device.pty"
    # The device reports each minute ~20 s into it (not at its end), so the minute's detection never races
    # the minute's frames: quiet minutes stay quiet with the 1-minute gap override.
    first_send = time.time() + STARTUP_SECONDS
    delay = (SEND_SECOND - first_send) % 60
    start = datetime.fromtimestamp(first_send + delay, tz=UTC).replace(second=0, microsecond=0)
    start_process("device", "manage.py", "simulate_sensors", "--sensors", str(SENSORS), "--link", str(link),
                  "--start", start.isoformat(), "--delay", f"{delay:.1f}", env=overrides)  # fmt: skip
    wait_for(link.exists, timeout=30, what="the simulated device's pty")
    bridge_env = {**through_proxy, "SENSORS_RECONNECT_MAX_SECONDS": "1"}
    start_process("bridge", "manage.py", "serial_bridge", "--url", str(link), "--name", "storm-bridge",
                  "--spool-dir", str(tmp_path / "spool"), env=bridge_env)  # fmt: skip
    start_process("agent", "manage.py", "host_agent", env=through_proxy)
    celery_worker(queues="default,detect", concurrency=2, env=overrides)

    # Normal operation first: every sensor's minute arrives, the host samples, nothing fires. Beat starts once
    # every sensor has reported the minute detection evaluates now (the one that began
    # ANOMALY_DETECT_DELAY_MINUTES ago): its first detection (at once or at the next minute) evaluates a minute
    # every sensor reported, not one before a registered sensor's first reading (rightly a gap; on a loaded
    # machine the device's first frames can come a minute late).
    def target_minute_reported() -> bool:
        delay = timedelta(minutes=int(overrides["ANOMALY_DETECT_DELAY_MINUTES"]))
        target = datetime.now(tz=UTC).replace(second=0, microsecond=0) - delay
        return Reading.objects.filter(ts=target).values("sensor").distinct().count() == SENSORS

    wait_for(target_minute_reported, timeout=240, interval=1, what="a minute reported by every sensor")
    start_process("beat", "-m", "celery", "-A", "core", "beat", "--loglevel", "INFO", env=overrides)
    wait_for(HostSample.objects.exists, timeout=60, interval=1, what="host samples")
    wait_for(DetectionRun.objects.exists, timeout=90, interval=1, what="a detection minute")
    # Cut 45 s into a minute: that minute's frames are stored, the next two minutes' frames are not.
    time.sleep((CUT_SECOND - time.time()) % 60)
    quiet = AnomalyEvent.objects.filter(method="system")
    assert not quiet.exists(), list(quiet.values("subject", "metric", "started_at", "evidence"))  # was quiet

    db_proxy.cut()
    time.sleep(CUT_SECONDS)
    db_proxy.restore()

    def gaps() -> int:
        return AnomalyEvent.objects.filter(source="sensor", method="system").values("subject").distinct().count()

    wait_for(lambda: gaps() == SENSORS, timeout=120, interval=2, what="a gap event for every sensor")
    # The back-fill closes every event, and the incident with them.
    wait_for(lambda: not AnomalyEvent.objects.exclude(status="resolved").filter(method="system").exists(),
             timeout=240, interval=2, what="every gap event resolved after the back-fill")  # fmt: skip
    wait_for(lambda: not Incident.objects.exclude(status=IncidentStatus.RESOLVED).exists(), timeout=120, interval=2,
             what="the incident resolved")  # fmt: skip
    wait_for(lambda: any(body["status"] == "resolved" for _, body in webhook.received), timeout=120, interval=1,
             what="the resolved message")  # fmt: skip

    incident = Incident.objects.get()  # one incident for the whole storm
    gap_members = incident.memberships.filter(event__source="sensor", event__method="system")
    assert gap_members.values("event__subject").distinct().count() == SENSORS
    firing = [body for _, body in webhook.received if body["status"] == "firing"]
    assert len(firing) == 1, [body["groupKey"] for _, body in webhook.received]  # one message, not 20
    assert firing[0]["groupKey"] == f"incident:{incident.pk}:0"
    description = firing[0]["alerts"][0]["annotations"]["description"]
    assert description.startswith(f"{incident.memberships.count()} member(s)")
    assert sum(f"sensor {code:03d} " in description for code in range(1, SENSORS + 1)) == SENSORS
    assert not any(body["groupKey"].startswith("anomaly:") for _, body in webhook.received)  # no per-event message
    assert [body["status"] for _, body in webhook.received].count("resolved") == 1
