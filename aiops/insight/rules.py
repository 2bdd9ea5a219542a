"""The rule-based explainer: the same context -> the same structured answer, for the known situations.

Each rule looks at the context and returns a scored `Answer` or None; the highest score wins, ties go
to the rule listed first (the more specific). Scores are on one scale: 3 = the signal that defines the
situation (a night-method event for a leak), +1 for each corroborating fact. Used when no LLM is
configured, when the LLM fails, and as the LLM's "first opinion" in its prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from anomaly.criteria import NIGHT_END_HOUR, NIGHT_START_HOUR

from .context import Context, EventFact
from .schema import Answer

WORKER_ALERTS = ("workerdown", "detectstalled", "beatstale", "queuebacklog", "targetdown", "redis", "broker")
BRIDGE_ALERTS = ("bridgedisconnected", "bridgenoframes")
HOST_ALERTS = ("disk", "memory", "cpu", "hostagentdown", "filesystem", "load")
HOST_METRICS = ("disk_percent", "memory_percent", "cpu_percent", "swap_percent", "load_1")
# Gaps on this many sensors (or on half a site) starting within BRIDGE_WINDOW_MINUTES are one shared cause.
BRIDGE_MIN_SENSORS = 3
BRIDGE_WINDOW_MINUTES = 10


@dataclass(frozen=True)
class Verdict:
    rule: str
    score: float
    answer: Answer


def _alert(fact: EventFact) -> str:
    return fact.alertname.lower().replace("_", "")


def _sensor(context: Context, method: str, states: tuple[str, ...] = ()) -> list[EventFact]:
    return [
        f for f in context.events
        if f.source == "sensor" and f.method == method and (not states or f.state in states)
    ]  # fmt: skip


def _names(facts: list[EventFact]) -> str:
    names = sorted({f.subject for f in facts})
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def _night(fact: EventFact) -> bool:
    """Started in the night window (22:00-05:00 local), when demand is lowest."""
    hour = timezone.localtime(fact.started_at).hour
    return hour >= NIGHT_START_HOUR or hour < NIGHT_END_HOUR


def _pressure_drop(context: Context, sensors: set[str]) -> list[EventFact]:
    return [f for f in _sensor(context, "value") if f.metric == "pressure" and f.subject in sensors and not _above(f)]


def leak(context: Context) -> Verdict | None:
    nights = _sensor(context, "night")
    # The first sign of a leak is often the value method at night: a steady extra flow crosses the narrow
    # night band first, without the pressure drop of a burst.
    high_at_night = [f for f in _sensor(context, "value") if f.metric == "flow" and _above(f) and _night(f)]
    high_at_night = [f for f in high_at_night if not _pressure_drop(context, {f.subject})]
    if not nights and not high_at_night:
        return None
    if not nights:
        return Verdict(
            "leak",
            3.2,
            Answer(
                summary=f"Flow at {_names(high_at_night)} rose above its normal band during the night, when demand"
                " is lowest, with no pressure drop: the signature of a new steady flow.",
                likely_cause="An early leak (or an open valve or a new night consumer) downstream of the sensor.",
                checks=[
                    "Watch the next night minima (night method): a leak keeps the minimum raised night after night.",
                    "Check neighbouring sensors of the same site for the same rise.",
                    "Ask whether a large consumer started working at night.",
                ],
                confidence="low",
                cause_code="leak",
            ),
        )
    first = nights[0]
    rise = ""
    minimum, baseline = first.evidence.get("night_min"), first.evidence.get("baseline")
    if isinstance(minimum, int | float) and isinstance(baseline, int | float) and baseline:
        rise = f" ({minimum:.1f} against a baseline of {baseline:.1f}, {minimum / baseline - 1:+.0%})"
    streak = first.evidence.get("streak")
    nights_text = f"{int(streak)} consecutive nights" if isinstance(streak, int | float) else "consecutive nights"
    score = 3.0 + (1 if any(f.metric == "pressure" for f in context.events) else 0) + (0.5 if high_at_night else 0)
    return Verdict(
        "leak",
        score,
        Answer(
            summary=f"The night-minimum flow at {_names(nights)} stayed above its baseline for {nights_text}{rise}."
            " Demand is lowest at night, so this is most likely water leaving the network.",
            likely_cause="A leak (or an open valve or new large night consumer) downstream of the sensor.",
            checks=[
                "Compare the night minima of the last week: a ramp is a growing leak, a step a new consumer.",
                "Check neighbouring sensors of the same site for the same rise to narrow the district.",
                "Check that the system method is quiet on the sensor (no stuck or range fault).",
                "Send the leak-detection crew with the district and the first night of the rise.",
            ],
            confidence="high" if len(nights) == 1 else "medium",
            cause_code="leak",
        ),
    )


def burst(context: Context) -> Verdict | None:
    high_flow = [
        f for f in _sensor(context, "value")
        if f.metric == "flow" and _above(f)
    ]  # fmt: skip
    if not high_flow:
        return None
    low_pressure = _pressure_drop(context, {f.subject for f in high_flow})
    # flow up alone at night is more often a leak's first sign (see leak): a burst needs the day or a pressure drop
    score = 3.0 + (1.5 if low_pressure else 0) - (0.5 if not low_pressure and all(_night(f) for f in high_flow) else 0)
    both = " with a pressure drop at the same sensor" if low_pressure else ""
    return Verdict(
        "burst",
        score,
        Answer(
            summary=f"Flow at {_names(high_flow)} jumped far above its normal band for this hour{both}.",
            likely_cause="A pipe burst or an opened hydrant near the sensor"
            + ("." if low_pressure else " (without a pressure drop it may also be a large draw)."),
            checks=[
                "Confirm flow up and pressure down at the same minute on the sensor's readings.",
                "Check the other sensors of the site for a spreading pressure drop.",
                "Call the field crew to locate and isolate the section.",
            ],
            confidence="high" if low_pressure else "medium",
            cause_code="burst",
        ),
    )


def _above(fact: EventFact) -> bool:
    band, value = fact.evidence.get("band"), fact.evidence.get("value")
    if isinstance(band, list) and len(band) == 2 and isinstance(value, int | float) and band[1] is not None:
        return value > band[1]
    return True  # a value event without its band: the flow rule still applies, without the pressure check


def _failing(checks: dict[str, str], name: str) -> bool:
    return str(checks.get(name, "")).startswith("failing")


def bridge(context: Context) -> Verdict | None:
    gaps = _sensor(context, "system", ("gap",))
    bridge_failing = _failing(context.queues.get("health") or {}, "bridge")
    alerts = [f for f in context.events if f.source == "alert" and any(a in _alert(f) for a in BRIDGE_ALERTS)]
    silent_sites = [
        site for site, info in context.sites.items() if info["sensors"] and info["silent"] * 2 >= info["sensors"]
    ]
    sensors = {f.subject for f in gaps}
    together = False
    if len(sensors) >= BRIDGE_MIN_SENSORS:
        starts = sorted(f.started_at for f in gaps)
        together = (starts[BRIDGE_MIN_SENSORS - 1] - starts[0]).total_seconds() <= BRIDGE_WINDOW_MINUTES * 60
    if not (together or alerts or (silent_sites and len(sensors) >= 2) or (bridge_failing and sensors)):
        return None
    score = 3.5 + (1 if alerts else 0) + (1 if silent_sites else 0) + min(len(sensors), 20) / 20
    score += 1 if bridge_failing else 0
    return Verdict(
        "bridge_or_network",
        score,
        Answer(
            summary=f"{len(sensors)} sensor(s) stopped reporting at about the same time"
            + (f" ({', '.join(silent_sites)} mostly silent)" if silent_sites else "")
            + (" and the bridge alerts fired" if alerts else "")
            + (" and the bridge health check fails" if bridge_failing else "")
            + ". Field devices do not fail together; the path they share does.",
            likely_cause="The serial bridge, its port or modem, or the network between the devices and pipewatch.",
            checks=[
                "GET /api/v1/health: does the bridge check pass (port held, heartbeat fresh)?",
                "Check the bridge process log and that the serial device still exists.",
                "If the bridge is spooling, check PostgreSQL: readings are kept and back-filled.",
                "Check the site's network link or switch if the devices talk over TCP.",
            ],
            confidence="high" if (alerts or together) else "medium",
            cause_code="bridge_or_network",
        ),
    )


def offline(context: Context) -> Verdict | None:
    gaps = _sensor(context, "system", ("gap",))
    if not gaps:
        return None
    return Verdict(
        "sensor_offline",
        3.0,
        Answer(
            summary=f"No readings from {_names(gaps)} for several minutes while other sensors keep reporting.",
            likely_cause="The sensor's own link, power or device (one sensor silent, not the shared line).",
            checks=[
                "Check the sensor's last reading time and its radio/modem link and battery.",
                "Check the bridge's bad-frame counters for this sensor code.",
                "Visit or reset the field unit if it stays silent.",
            ],
            confidence="medium",
            cause_code="sensor_offline",
        ),
    )


def stuck(context: Context) -> Verdict | None:
    facts = _sensor(context, "system", ("stuck",))
    if not facts:
        return None
    flat = max((f.evidence.get("flat_minutes") or 0 for f in facts), default=0)
    return Verdict(
        "sensor_stuck",
        3.2,
        Answer(
            summary=f"{_names(facts)} reported the same value for {int(flat) or 'many'} minutes;"
            " real flow is never constant.",
            likely_cause="A frozen transmitter or logger (a sensor fault, not the water network).",
            checks=[
                "Look at the raw readings: a flat line at a plausible value is a frozen device.",
                "Check the device status code in the readings.",
                "Reset or replace the unit; leak and burst detection is blind on it meanwhile.",
            ],
            confidence="high",
            cause_code="sensor_stuck",
        ),
    )


def host(context: Context) -> Verdict | None:
    events = [f for f in context.events if f.source == "host" and f.metric in HOST_METRICS]
    alerts = [f for f in context.events if f.source == "alert" and any(a in _alert(f) for a in HOST_ALERTS)]
    capacity = [h for h in context.hosts if h.get("capacity")]
    if not (events or alerts):
        return None
    metrics = sorted({f.metric for f in events} | {f.alertname for f in alerts})
    hosts = sorted(
        {f.subject for f in events} | {str(f.evidence.get("labels", {}).get("instance", "")) for f in alerts} - {""}
    )
    disk = any("disk" in m.lower() or "filesystem" in m.lower() for m in metrics)
    forecast = f" Capacity: {capacity[0]['capacity'][0]}." if capacity else ""
    return Verdict(
        "host_resource",
        3.0 + (1 if capacity else 0) + (0.5 if alerts else 0),
        Answer(
            summary=f"Host {', '.join(hosts) or 'metrics'} left their normal range ({', '.join(metrics)}).{forecast}",
            likely_cause="Resource exhaustion on the host: "
            + ("the disk is filling." if disk else "memory or CPU is used up."),
            checks=[
                "GET /api/v1/metrics/current and /disk for the host: which mount or process, how fast.",
                "Find the biggest directories (logs, PostgreSQL WAL, the bridge spool, dumps)."
                if disk
                else "List the top processes by memory and CPU (/api/v1/metrics/processes).",
                "Check that the retention jobs ran (readings and host samples are purged daily).",
            ],
            confidence="high" if (capacity or len(events) > 1 or alerts) else "medium",
            cause_code="host_resource",
        ),
    )


def worker(context: Context) -> Verdict | None:
    alerts = [f for f in context.events if f.source == "alert" and any(a in _alert(f) for a in WORKER_ALERTS)]
    checks = context.queues.get("health") or {}
    broker_down = str(context.queues.get("broker", "")).startswith("unreachable") or _failing(checks, "broker")
    workers_failing = _failing(checks, "workers")
    if not (alerts or broker_down or (workers_failing and context.events)):
        return None
    lengths = context.queues.get("lengths") or {}
    backlog = {queue: n for queue, n in lengths.items() if n > 100}
    score = 3.5 + (1 if broker_down else 0) + (0.5 if backlog else 0) + min(len(alerts), 3) / 3
    score += 0.5 if workers_failing else 0
    what = "the broker (Redis) is unreachable" if broker_down else ", ".join(sorted({f.alertname for f in alerts}))
    return Verdict(
        "worker_or_broker_down",
        score,
        Answer(
            summary=f"Background processing stopped: {what}"
            + (f"; queues waiting: {backlog}" if backlog else "")
            + ". Detection, predictions and harvesting all depend on it.",
            likely_cause="The Redis broker is down." if broker_down else "A Celery worker died or stopped consuming.",
            checks=[
                "GET /api/v1/health: the broker and workers checks.",
                "redis-cli ping on REDIS_URL; check its memory and disk.",
                "celery -A core inspect ping, then restart the workers; detection catches up missed minutes.",
            ],
            confidence="high" if alerts else "medium",
            cause_code="worker_or_broker_down",
        ),
    )


def kipris(context: Context) -> Verdict | None:
    facts = context.kipris
    alerts = [f for f in context.events if f.source == "alert" and "kipris" in _alert(f)]
    last_run = str(facts.get("last_run", ""))
    quota = "quota" in last_run.lower() or "LIMITED_NUMBER" in last_run or "budget" in last_run.lower()
    quota = quota or bool(facts.get("budget_exhausted"))
    circuit = facts.get("circuit") == "open"
    if not (
        alerts
        or ((quota or circuit) and any(f.source == "alert" or f.metric.startswith("kipris") for f in context.events))
    ):
        return None
    if quota:
        return Verdict(
            "kipris_quota",
            3.5 + (1 if alerts else 0),
            Answer(
                summary="KIPRIS harvesting paused: the key's call quota (or pipewatch's monthly budget) is used up."
                f" Latest harvest: {last_run[:120] or 'paused'}.",
                likely_cause="The KIPRIS call quota for this month is exhausted; it resets on the 1st (Korean time).",
                checks=[
                    "Look at the paused harvest runs and the kipris health check's budget counter.",
                    "Wait for the reset, or raise the contract quota and KIPRIS_MONTHLY_BUDGET together.",
                    "Spread organisations over the month to use fewer calls per refresh.",
                ],
                confidence="high",
                cause_code="kipris_quota",
            ),
        )
    return Verdict(
        "kipris_circuit",
        3.3 + (1 if circuit else 0),
        Answer(
            summary=f"KIPRIS kept failing and the circuit breaker is {facts.get('circuit', 'open')}"
            f" ({facts.get('consecutive_failures', '?')} consecutive failures); harvesting pauses and retries.",
            likely_cause="KIPRIS (or the network or proxy to it) is down or timing out.",
            checks=[
                "Try one KIPRIS request by hand from the host.",
                "kipris_errors_total by error_type: timeouts mean network, 5xx mean KIPRIS itself.",
                "Nothing to replay: runs resume from their checkpoints when the circuit closes.",
            ],
            confidence="medium",
            cause_code="kipris_circuit",
        ),
    )


def account(context: Context) -> Verdict | None:
    facts = [f for f in context.events if f.source == "account"]
    if not facts:
        return None
    return Verdict(
        "suspicious_account",
        3.0,
        Answer(
            summary=f"Account {_names(facts)} behaved unlike its own history"
            f" ({', '.join(sorted({f.metric for f in facts}))}).",
            likely_cause="Credential misuse or an automated client on the account (or a legitimate change of habit).",
            checks=[
                "Review the account's recent events: hours, source addresses, failure rate, volume.",
                "Look for the same address on other accounts.",
                "Confirm with the owner; lock or reset the account if it was not them.",
            ],
            confidence="medium",
            cause_code="suspicious_account",
        ),
    )


# Most specific first: on equal scores the earlier rule wins.
RULES: tuple[Callable[[Context], Verdict | None], ...] = (
    worker, bridge, kipris, leak, burst, stuck, host, account, offline,
)  # fmt: skip


def verdicts(context: Context) -> list[Verdict]:
    """Every rule that applies, best first."""
    found = [verdict for rule in RULES if (verdict := rule(context)) is not None]
    order = {rule.__name__: index for index, rule in enumerate(RULES)}
    return sorted(found, key=lambda v: (-v.score, order.get(v.rule, 99)))


def explain(context: Context) -> Answer:
    """The best rule's answer, or a plain description of the events when no rule applies."""
    found = verdicts(context)
    if found:
        best = found[0]
        if len(found) > 1:
            others = ", ".join(v.answer.cause_code for v in found[1:3])
            return Answer(
                **{**best.answer.as_dict(), "summary": f"{best.answer.summary} (Also consistent: {others}.)"[:600]}
            )
        return best.answer
    sources = ", ".join(sorted({f.source for f in context.events})) or "no"
    return Answer(
        summary=f"{context.total_events} event(s) from {sources} source(s) started together; no known pattern matches.",
        likely_cause="Not one of the situations the rules know; read the member events.",
        checks=["Open the earliest member event and its evidence.", "Check /api/v1/health for a failing component."],
        confidence="low",
        cause_code="other",
    )
