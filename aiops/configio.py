"""Configuration export and import: one YAML file with everything an operator configures, never a secret.

Sections (each a list keyed by a natural key):
- `sensors` (code): name, location (the site), active, physical ranges, and the per-sensor method
  settings (`methods`, omitted when the sensor has none);
- `schedules` (name): django-celery-beat's crontab entries with their enabled state, queue, expiry, kwargs;
- `kipris_organisations` (business or corporate number): name, type, active;
- `metric_limits` (name + labels): the capacity limit of a custom metric series;
- `environment`: what comes from the environment (criteria parameters, incident timers, insight
  settings, which notification channels are configured): exported for the record, compared on import,
  never applied (a process cannot set its own environment) and never holding a secret (keys, webhook
  URLs, passwords and URL credentials are left out).

Import (`apply`) validates the whole file first (JSON schema, then every row as the models would:
cron fields, ranges, registration numbers, task names), then computes the diff against the database,
then (unless dry run) applies it in one transaction: all rows or none. Rows missing from the file are
kept (listed as "not in file"): an export from a smaller site never deletes a larger one's sensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jsonschema
import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from anomaly.models import SensorMethodSettings, Severity
from ingest.identifiers import InvalidNumberError, normalize_business_number, normalize_corporate_number
from ingest.models import Organization, OrgType
from sensors.models import Sensor

from .models import MetricSeries

FORMAT = 1
METHOD_FIELDS = {
    "system": "system_enabled", "value": "value_enabled", "predict": "predict_enabled", "night": "night_enabled",
    "value_k": "value_k", "gap_minutes": "gap_minutes", "stuck_minutes": "stuck_minutes",
    "night_margin": "night_margin", "night_nights": "night_nights", "severity": "severity",
}  # fmt: skip
ENVIRONMENT = {
    "criteria": ("ANOMALY_VALUE_K", "ANOMALY_IQR_FENCE", "ANOMALY_RESIDUAL_K", "ANOMALY_NIGHT_MARGIN",
                 "ANOMALY_NIGHT_NIGHTS", "ANOMALY_GAP_MINUTES", "ANOMALY_STUCK_MINUTES", "ANOMALY_STUCK_READINGS",
                 "ANOMALY_CLEAN_MINUTES", "ANOMALY_CRITERIA_DB_DAYS"),
    "incidents": ("AIOPS_GROUP_WAIT_SECONDS", "AIOPS_GROUP_INTERVAL_SECONDS", "AIOPS_REPEAT_INTERVAL_SECONDS",
                  "AIOPS_GROUP_PROXIMITY_SECONDS", "AIOPS_GROUP_SHARE_SECONDS", "AIOPS_SEND_RESOLVED"),
    "insight": ("INSIGHT_LLM_URL", "INSIGHT_LLM_MODEL", "INSIGHT_LLM_TIMEOUT_SECONDS", "INSIGHT_LLM_RETRIES",
                "INSIGHT_LLM_HOURLY_BUDGET", "INSIGHT_LLM_CIRCUIT_FAILURES", "INSIGHT_LLM_CIRCUIT_OPEN_SECONDS",
                "INSIGHT_AUTO_MIN_SEVERITY", "INSIGHT_NOTIFY_WAIT_SECONDS", "INSIGHT_CONTEXT_TOKENS"),
    "kipris": ("KIPRIS_RATE_PER_SEC", "KIPRIS_BURST", "KIPRIS_MONTHLY_BUDGET", "KIPRIS_CIRCUIT_FAILURES",
               "KIPRIS_CIRCUIT_OPEN_SECONDS"),
    "notifications": ("NOTIFY_DEDUP_SECONDS",),
}  # fmt: skip
# Channels whose URL is a secret: exported as configured or not, never the URL.
CHANNELS = {"slack": "SLACK_WEBHOOK_URL", "webhook": "ALERT_WEBHOOK_URL"}

_NUMBER = {"type": ["number", "null"]}
_RANGE = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["pipewatch_config"],
    "additionalProperties": False,
    "properties": {
        "pipewatch_config": {"const": FORMAT},
        "exported_at": {"type": "string"},
        "sensors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string", "pattern": "^[0-9]{3}$"},
                    "name": {"type": "string", "maxLength": 200},
                    "location": {"type": "string", "maxLength": 200},
                    "active": {"type": "boolean"},
                    "flow_range": _RANGE,
                    "pressure_range": _RANGE,
                    "methods": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "system": {"type": "boolean"},
                            "value": {"type": "boolean"},
                            "predict": {"type": "boolean"},
                            "night": {"type": "boolean"},
                            "value_k": {"type": ["number", "null"], "exclusiveMinimum": 0},
                            "gap_minutes": {"type": ["integer", "null"], "minimum": 1},
                            "stuck_minutes": {"type": ["integer", "null"], "minimum": 2},
                            "night_margin": {"type": ["number", "null"], "exclusiveMinimum": 0},
                            "night_nights": {"type": ["integer", "null"], "minimum": 1},
                            "severity": {"enum": ["", *Severity.values]},
                        },
                    },
                },
            },
        },
        "schedules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "task", "cron"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "task": {"type": "string", "minLength": 1},
                    "cron": {"type": "string"},
                    "timezone": {"type": "string"},
                    "enabled": {"type": "boolean"},
                    "queue": {"type": ["string", "null"]},
                    "expires_seconds": {"type": ["integer", "null"], "minimum": 1},
                    "kwargs": {"type": "object"},
                    "description": {"type": "string"},
                },
            },
        },
        "kipris_organisations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "org_type": {"enum": OrgType.values},
                    "business_number": {"type": "string"},
                    "corporate_number": {"type": "string"},
                    "active": {"type": "boolean"},
                },
            },
        },
        "metric_limits": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "limit"],
                "additionalProperties": False,
                "properties": {"name": {"type": "string"}, "labels": {"type": "object"}, "limit": _NUMBER},
            },
        },
        "environment": {"type": "object"},
    },
}


class ConfigError(ValueError):
    """The file is not a valid configuration; `problems` lists every one found (nothing was applied)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s):\n" + "\n".join(f"- {p}" for p in problems))
        self.problems = problems


# --- export


def _safe_url(url: str) -> str:
    """A URL without its credentials (user:password@) and query (tokens travel there)."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def environment() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, names in ENVIRONMENT.items():
        out[section] = {name: getattr(settings, name) for name in names}
    out["insight"]["INSIGHT_LLM_URL"] = _safe_url(settings.INSIGHT_LLM_URL)
    for channel, name in CHANNELS.items():
        out["notifications"][f"{channel}_configured"] = bool(getattr(settings, name))
    return out


def _methods(row: SensorMethodSettings) -> dict[str, Any]:
    return {key: getattr(row, name) for key, name in METHOD_FIELDS.items()}


def _sensor(sensor: Sensor) -> dict[str, Any]:
    item: dict[str, Any] = {
        "code": sensor.code,
        "name": sensor.name,
        "location": sensor.location,
        "active": sensor.active,
        "flow_range": [sensor.flow_min, sensor.flow_max],
        "pressure_range": [sensor.pressure_min, sensor.pressure_max],
    }
    methods = getattr(sensor, "method_settings", None)
    if methods is not None:
        item["methods"] = _methods(methods)
    return item


def _schedule(task: Any) -> dict[str, Any]:
    cron = task.crontab
    return {
        "name": task.name,
        "task": task.task,
        "cron": f"{cron.minute} {cron.hour} {cron.day_of_month} {cron.month_of_year} {cron.day_of_week}",
        "timezone": str(cron.timezone),
        "enabled": task.enabled,
        "queue": task.queue or None,
        "expires_seconds": task.expire_seconds,
        "kwargs": json.loads(task.kwargs or "{}"),
        "description": task.description,
    }


def export() -> dict[str, Any]:
    """The whole configuration as a plain dict (see the module docstring)."""
    from django_celery_beat.models import PeriodicTask

    sensors = Sensor.objects.select_related("method_settings").order_by("code")
    schedules = PeriodicTask.objects.filter(crontab__isnull=False).select_related("crontab").order_by("name")
    return {
        "pipewatch_config": FORMAT,
        "exported_at": timezone.now().isoformat(timespec="seconds"),
        "sensors": [_sensor(sensor) for sensor in sensors],
        "schedules": [_schedule(task) for task in schedules],
        "kipris_organisations": [
            {
                "name": o.name,
                "org_type": o.org_type,
                "business_number": o.business_number,
                "corporate_number": o.corporate_number,
                "active": o.active,
            }
            for o in Organization.objects.order_by("name", "id")
        ],
        "metric_limits": [
            {"name": s.name, "labels": s.labels, "limit": s.limit}
            for s in MetricSeries.objects.filter(limit__isnull=False).order_by("name", "labels_key")
        ],
        "environment": environment(),
    }


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


# --- validation


def _org_key(item: dict[str, Any]) -> str:
    if item.get("business_number"):
        return f"business {item['business_number']}"
    return f"corporate {item['corporate_number']}"


def _check_sensor(item: dict[str, Any], problems: list[str]) -> None:
    for metric in ("flow", "pressure"):
        bounds = item.get(f"{metric}_range")
        if bounds and bounds[0] >= bounds[1]:
            problems.append(f"sensor {item['code']}: {metric}_range {bounds} must be [min, max] with min < max")


def _check_schedule(item: dict[str, Any], known_tasks: set[str], problems: list[str]) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from celery.schedules import crontab

    fields = item["cron"].split()
    where = f"schedule {item['name']!r}"
    if len(fields) != 5:
        problems.append(f"{where}: cron {item['cron']!r} needs 5 fields (minute hour day month weekday)")
    else:
        try:
            crontab(*fields)
        except (ValueError, IndexError) as exc:
            problems.append(f"{where}: cron {item['cron']!r}: {exc}")
    if known_tasks and item["task"] not in known_tasks:
        problems.append(f"{where}: unknown task {item['task']!r}")
    try:
        ZoneInfo(item.get("timezone") or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}: unknown time zone {item.get('timezone')!r}")


def _normalise_org(item: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    out = dict(item)
    numbers = (("business_number", normalize_business_number), ("corporate_number", normalize_corporate_number))
    for name, normalise in numbers:
        value = str(item.get(name, "")).strip()
        try:
            out[name] = normalise(value) if value else ""
        except InvalidNumberError as exc:
            problems.append(f"organisation {item['name']!r}: {name}: {exc}")
    if not out.get("business_number") and not out.get("corporate_number"):
        problems.append(f"organisation {item['name']!r}: give a business or a corporate number")
    return out


def _duplicates(items: list[dict[str, Any]], key: Any, what: str, problems: list[str]) -> None:
    seen: set[str] = set()
    for item in items:
        value = key(item)
        if value in seen:
            problems.append(f"{what} {value} appears twice")
        seen.add(value)


def validate(data: Any) -> dict[str, Any]:
    """Every problem of the file at once (ConfigError), or the file with normalised values."""
    problems = [
        f"{'/'.join(str(p) for p in error.path) or 'file'}: {error.message[:200]}"
        for error in sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.path))
    ]
    if problems:
        raise ConfigError(problems)
    from core.celery import app

    app.loader.import_default_modules()
    known = {name for name in app.tasks if not name.startswith("celery.")}
    for item in data.get("sensors", []):
        _check_sensor(item, problems)
    for item in data.get("schedules", []):
        _check_schedule(item, known, problems)
    data = dict(data)
    if "kipris_organisations" in data:
        data["kipris_organisations"] = [_normalise_org(item, problems) for item in data["kipris_organisations"]]
    _duplicates(data.get("sensors", []), lambda i: i["code"], "sensor", problems)
    _duplicates(data.get("schedules", []), lambda i: repr(i["name"]), "schedule", problems)
    numbered = [
        i for i in data.get("kipris_organisations", []) if i.get("business_number") or i.get("corporate_number")
    ]
    _duplicates(numbered, _org_key, "organisation", problems)
    if problems:
        raise ConfigError(problems)
    return data


# --- diff and apply


@dataclass
class Change:
    section: str
    key: str
    action: str  # add, change, keep (not in file), differs (environment)
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def line(self) -> str:
        if self.action == "add":
            return f"+ {self.section} {self.key}"
        if self.action == "keep":
            return f"  {self.section} {self.key}: not in the file, kept"
        details = "; ".join(f"{name}: {old!r} -> {new!r}" for name, (old, new) in self.fields.items())
        prefix = "! " if self.action == "differs" else "~ "
        suffix = " (environment: set it there, not applied)" if self.action == "differs" else ""
        return f"{prefix}{self.section} {self.key}: {details}{suffix}"


def _compare(section: str, key: str, current: dict[str, Any] | None, wanted: dict[str, Any]) -> Change | None:
    if current is None:
        return Change(section, key, "add")
    fields = {name: (current.get(name), value) for name, value in wanted.items() if current.get(name) != value}
    return Change(section, key, "change", fields) if fields else None


def diff(data: dict[str, Any]) -> list[Change]:
    """What applying the (validated) file would change, section by section."""
    current = export()
    changes: list[Change] = []
    plan = (
        ("sensors", lambda i: i["code"]),
        ("schedules", lambda i: i["name"]),
        ("kipris_organisations", _org_key),
        ("metric_limits", lambda i: f"{i['name']}{json.dumps(i.get('labels', {}), sort_keys=True)}"),
    )
    for section, key in plan:
        if section not in data:
            continue
        existing = {key(item): item for item in current[section]}
        wanted_keys = set()
        for item in data[section]:
            wanted_keys.add(key(item))
            if (change := _compare(section, key(item), existing.get(key(item)), item)) is not None:
                if section == "metric_limits" and change.action == "add":
                    change = Change(section, key(item), "missing")
                changes.append(change)
        changes += [Change(section, name, "keep") for name in existing if name not in wanted_keys]
    for section, values in (data.get("environment") or {}).items():
        now = current["environment"].get(section, {})
        fields = {name: (now.get(name), value) for name, value in values.items() if name in now and now[name] != value}
        if fields:
            changes.append(Change("environment", section, "differs", fields))
    return changes


def _apply_sensor(item: dict[str, Any]) -> None:
    values: dict[str, Any] = {k: item[k] for k in ("name", "location", "active") if k in item}
    for metric in ("flow", "pressure"):
        if bounds := item.get(f"{metric}_range"):
            values[f"{metric}_min"], values[f"{metric}_max"] = bounds
    sensor, _ = Sensor.objects.update_or_create(code=item["code"], defaults=values)
    if "methods" in item:
        methods = {name: item["methods"][key] for key, name in METHOD_FIELDS.items() if key in item["methods"]}
        SensorMethodSettings.objects.update_or_create(sensor=sensor, defaults=methods)


def _apply_schedule(item: dict[str, Any]) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    minute, hour, day_of_month, month_of_year, day_of_week = item["cron"].split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week,
        timezone=item.get("timezone") or settings.TIME_ZONE,
    )  # fmt: skip
    task = PeriodicTask.objects.filter(name=item["name"]).first() or PeriodicTask(name=item["name"])
    task.task, task.crontab = item["task"], crontab
    task.interval = task.solar = task.clocked = None
    attributes = (("enabled", "enabled"), ("expires_seconds", "expire_seconds"), ("description", "description"))
    for key, attribute in attributes:
        if key in item:
            setattr(task, attribute, item[key])
    if "queue" in item:
        task.queue = item["queue"] or None
    if "kwargs" in item:
        task.kwargs = json.dumps(item["kwargs"])
    task.save()


def _apply_org(item: dict[str, Any]) -> None:
    number = {"business_number": item["business_number"]} if item.get("business_number") else {
        "corporate_number": item["corporate_number"]}  # fmt: skip
    org = Organization.objects.filter(**number).first() or Organization(**number)
    for key in ("name", "org_type", "business_number", "corporate_number", "active"):
        if key in item:
            setattr(org, key, item[key])
    org.save()


def _apply_limit(item: dict[str, Any]) -> None:
    labels_key = ",".join(f"{k}={v}" for k, v in sorted((item.get("labels") or {}).items()))
    MetricSeries.objects.filter(name=item["name"], labels_key=labels_key).update(limit=item["limit"])


@dataclass
class ImportReport:
    changes: list[Change]
    applied: bool

    @property
    def text(self) -> str:
        lines = [change.line() for change in self.changes if change.action != "keep"]
        kept = sum(1 for change in self.changes if change.action == "keep")
        if kept:
            lines.append(f"  ({kept} row(s) in the database but not in the file: kept)")
        verdict = "applied" if self.applied else "dry run: nothing changed"
        return "\n".join([*(lines or ["no changes"]), verdict])


def load(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not YAML: {exc}"]) from exc


def apply(text: str, *, dry_run: bool = False) -> ImportReport:
    """Validate, diff and (unless dry_run) apply in one transaction; ConfigError changes nothing."""
    data = validate(load(text))
    changes = diff(data)
    missing = [c for c in changes if c.action == "missing"]
    if missing:
        raise ConfigError([f"metric_limits {c.key}: no such custom metric series" for c in missing])
    if dry_run:
        return ImportReport(changes, applied=False)
    try:
        with transaction.atomic():
            for item in data.get("sensors", []):
                _apply_sensor(item)
            for item in data.get("schedules", []):
                _apply_schedule(item)
            for item in data.get("kipris_organisations", []):
                _apply_org(item)
            for item in data.get("metric_limits", []):
                _apply_limit(item)
    except ValidationError as exc:
        raise ConfigError([f"rejected by the database rules: {message}" for message in exc.messages]) from exc
    except IntegrityError as exc:
        raise ConfigError([f"rejected by the database: {str(exc).splitlines()[0]}"]) from exc
    return ImportReport(changes, applied=True)
