"""Configuration export/import: round trip, no secrets, validation of the whole file, all or nothing."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from aiops import configio
from aiops.models import MetricSeries
from anomaly.models import SensorMethodSettings
from ingest.models import Organization
from sensors.models import Sensor

pytestmark = pytest.mark.django_db
EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "config"


def site() -> None:
    north = Sensor.objects.create(code="001", name="Main inlet", location="North", flow_max=400.0)
    Sensor.objects.create(code="002", name="Hill", location="North", pressure_min=1.0, active=False)
    SensorMethodSettings.objects.create(
        sensor=north, night_enabled=False, value_k=5.0, stuck_minutes=30, severity="critical"
    )
    Organization.objects.create(name="삼성카드", business_number="202-81-45602")
    MetricSeries.objects.create(name="queue_depth", labels={"app": "billing"}, labels_key="app=billing", limit=5000)
    PeriodicTask.objects.filter(name="anomaly: store night flow").update(enabled=False)


def exported() -> dict:
    data = configio.export()
    data.pop("exported_at")
    return data


def import_file(path: Path, *extra: str) -> str:
    out = StringIO()
    call_command("import_config", str(path), *extra, stdout=out)
    return out.getvalue()


def test_round_trip(tmp_path: Path) -> None:
    site()
    path = tmp_path / "site.yaml"
    call_command("export_config", "--output", str(path), stderr=StringIO())
    before = exported()
    assert yaml.safe_load(path.read_text())["sensors"][0]["methods"]["value_k"] == 5.0
    # the site drifts: ranges, method settings, a schedule, an organisation
    Sensor.objects.filter(code="001").update(flow_max=900.0, location="South")
    SensorMethodSettings.objects.filter(sensor__code="001").update(value_k=None, night_enabled=True)
    PeriodicTask.objects.filter(name="anomaly: store night flow").update(enabled=True)
    Organization.objects.update(name="renamed", active=False)
    MetricSeries.objects.update(limit=1)
    assert exported() != before
    out = import_file(path, "--dry-run")
    assert "~ sensors 001: location: 'South' -> 'North'" in out
    assert "dry run: nothing changed" in out
    assert Sensor.objects.get(code="001").location == "South"
    out = import_file(path)
    assert out.rstrip().endswith("applied")
    assert exported() == before
    assert import_file(path).startswith("no changes")


def test_import_into_an_empty_site(tmp_path: Path) -> None:
    site()
    path = tmp_path / "site.yaml"
    path.write_text(configio.dump(configio.export()))
    before = exported()
    Sensor.objects.all().delete()
    Organization.objects.all().delete()
    PeriodicTask.objects.all().delete()
    out = import_file(path)
    assert "+ sensors 001" in out
    assert "+ kipris_organisations business 202-81-45602" in out
    after = exported()
    assert after["sensors"] == before["sensors"]
    assert after["schedules"] == before["schedules"]
    assert after["kipris_organisations"] == before["kipris_organisations"]


def test_no_secret_is_exported(settings) -> None:
    settings.KIPRIS_API_KEY = "kipris-SECRET+key/=="
    settings.INSIGHT_LLM_API_KEY = "sk-live-SECRET0123456789"
    settings.INSIGHT_LLM_URL = "https://llmuser:llmPASSWORD@llm.internal:8443/v1?token=SECRETQ"
    settings.SLACK_WEBHOOK_URL = "https://hooks.slack.com/services/T000/B000/SECRETHOOK"
    text = configio.dump(configio.export())
    for secret in ("SECRET", "llmPASSWORD", "llmuser", "hooks.slack.com", settings.SECRET_KEY):
        assert secret not in text
    environment = yaml.safe_load(text)["environment"]
    assert environment["insight"]["INSIGHT_LLM_URL"] == "https://llm.internal:8443/v1"
    assert environment["notifications"]["slack_configured"] is True
    assert environment["notifications"]["webhook_configured"] is False


def test_a_bad_file_is_rejected_whole_and_changes_nothing(tmp_path: Path) -> None:
    site()
    before = exported()
    data = configio.export()
    data["sensors"].append({"code": "003", "name": "new", "flow_range": [10, 5]})
    data["sensors"][0]["name"] = "would be renamed"
    data["schedules"][0]["cron"] = "61 * * * *"
    data["schedules"][1]["task"] = "anomaly.no_such_task"
    data["kipris_organisations"].append({"name": "Bad Co", "business_number": "123-45-67890"})
    path = tmp_path / "bad.yaml"
    path.write_text(configio.dump(data))
    with pytest.raises(CommandError) as caught:
        import_file(path)
    message = str(caught.value)
    assert "rejected, nothing changed: 4 problem(s)" in message  # every problem at once, not the first
    assert "sensor 003: flow_range [10, 5]" in message
    assert "61 * * * *" in message
    assert "unknown task 'anomaly.no_such_task'" in message
    assert "Bad Co" in message
    assert exported() == before


def test_a_database_refusal_rolls_back_every_section(tmp_path: Path) -> None:
    site()
    Organization.objects.create(name="Other", corporate_number="110111-5518240")
    before = exported()
    data = configio.export()
    data["sensors"].append({"code": "009", "name": "applied first"})
    # a valid number that another organisation already holds: only the database can say no
    (samsung,) = [org for org in data["kipris_organisations"] if org["name"] == "삼성카드"]
    samsung["corporate_number"] = "110111-5518240"
    path = tmp_path / "conflict.yaml"
    path.write_text(configio.dump(data))
    with pytest.raises(CommandError, match="rejected by the database"):
        import_file(path)
    assert not Sensor.objects.filter(code="009").exists()
    assert exported() == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sensors: [unclosed", "not YAML"),
        ("pipewatch_config: 2\n", "pipewatch_config"),
        ("pipewatch_config: 1\nsensors:\n  - code: '1'\n", "sensors/0/code"),
        ("pipewatch_config: 1\nsurprise: 1\n", "Additional properties"),
    ],
)
def test_readable_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(CommandError, match=expected):
        import_file(path)


def test_environment_differences_are_reported_not_applied(tmp_path: Path) -> None:
    data = configio.export()
    data["environment"]["incidents"]["AIOPS_GROUP_WAIT_SECONDS"] = 99
    path = tmp_path / "env.yaml"
    path.write_text(configio.dump(data))
    out = import_file(path)
    assert "! environment incidents: AIOPS_GROUP_WAIT_SECONDS: 30 -> 99 (environment: set it there, not applied)" in out


@pytest.mark.parametrize("name", ["small-site.yaml", "large-site.yaml"])
def test_example_files_import(name: str) -> None:
    out = import_file(EXAMPLES / name)
    assert out.rstrip().endswith("applied")
    data = yaml.safe_load((EXAMPLES / name).read_text())
    assert Sensor.objects.count() == len(data["sensors"])
    assert Organization.objects.count() == len(data["kipris_organisations"])
