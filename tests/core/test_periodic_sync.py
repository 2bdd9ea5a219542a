"""Declared schedules are mirrored into the beat tables without overwriting operators' edits."""

from __future__ import annotations

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

import core.periodic
from core.models import ManagedSchedule
from core.periodic import PeriodicTaskSpec, sync_periodic_tasks

pytestmark = pytest.mark.django_db

SPEC = PeriodicTaskSpec(
    name="test: every ten minutes",
    task="pipewatch_test.echo",
    cron="*/10 * * * *",
    expires_seconds=540,
    description="for the test",
)


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> list[PeriodicTaskSpec]:
    """The declarations the sync sees: the apps' real ones plus what the test puts in the list."""
    real = core.periodic.declared_periodic_tasks()
    extra: list[PeriodicTaskSpec] = []
    monkeypatch.setattr(core.periodic, "declared_periodic_tasks", lambda: real + extra)
    return extra


def test_every_app_declaration_is_valid_and_synced() -> None:
    for spec in core.periodic.declared_periodic_tasks():
        spec.cron_fields()
        assert PeriodicTask.objects.filter(name=spec.name, task=spec.task).exists()  # synced after migrate


def test_creates_missing_entry(declared: list[PeriodicTaskSpec]) -> None:
    declared.append(SPEC)
    report = sync_periodic_tasks()
    assert report.created == [SPEC.name]
    task = PeriodicTask.objects.get(name=SPEC.name)
    assert (task.crontab.minute, task.crontab.hour, task.expire_seconds) == ("*/10", "*", 540)
    assert sync_periodic_tasks().created == []  # idempotent


def test_code_change_updates_an_unedited_entry(declared: list[PeriodicTaskSpec]) -> None:
    declared.append(SPEC)
    sync_periodic_tasks()
    declared[0] = PeriodicTaskSpec(name=SPEC.name, task=SPEC.task, cron="*/5 * * * *", expires_seconds=240)
    assert sync_periodic_tasks().updated == [SPEC.name]
    assert PeriodicTask.objects.get(name=SPEC.name).crontab.minute == "*/5"


def test_operator_edit_is_never_overwritten(declared: list[PeriodicTaskSpec]) -> None:
    declared.append(SPEC)
    sync_periodic_tasks()
    task = PeriodicTask.objects.get(name=SPEC.name)
    task.enabled = False  # paused in the admin
    task.crontab, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="*/2")
    task.save()

    declared[0] = PeriodicTaskSpec(name=SPEC.name, task=SPEC.task, cron="*/5 * * * *")
    report = sync_periodic_tasks()
    assert report.kept_operator_edit == [SPEC.name]
    task.refresh_from_db()
    assert (task.enabled, task.crontab.minute, task.crontab.hour) == (False, "0", "*/2")


def test_removed_declaration_deletes_only_managed_entries(declared: list[PeriodicTaskSpec]) -> None:
    declared.append(SPEC)
    sync_periodic_tasks()
    operator_made = PeriodicTask.objects.create(
        name="operator's own",
        task="pipewatch_test.echo",
        crontab=CrontabSchedule.objects.create(minute="5"),
    )
    declared.clear()
    assert sync_periodic_tasks().deleted == [SPEC.name]
    assert not PeriodicTask.objects.filter(name=SPEC.name).exists()
    assert not ManagedSchedule.objects.filter(name=SPEC.name).exists()
    assert PeriodicTask.objects.filter(pk=operator_made.pk).exists()


def test_malformed_cron_is_rejected() -> None:
    with pytest.raises(ValueError, match="5 fields"):
        PeriodicTaskSpec(name="bad", task="x", cron="* * *").cron_fields()


def test_schedule_changes_are_recorded_but_beats_run_bookkeeping_is_not() -> None:
    """Beat re-saves the whole row after each run (moving date_changed); only real changes are kept."""
    from django_celery_beat.schedulers import ModelEntry

    from core.models import ScheduleChange

    task = PeriodicTask.objects.get(name="anomaly: detect every minute")
    runs = task.total_run_count
    next(ModelEntry(task)).save()  # what DatabaseScheduler does after sending the task
    assert PeriodicTask.objects.get(pk=task.pk).total_run_count == runs + 1
    assert not ScheduleChange.objects.exists()

    task.refresh_from_db()
    task.enabled = False  # an operator pauses it (admin or API)
    task.save()
    task.crontab = CrontabSchedule.objects.create(minute="*/2")
    task.save()
    assert list(ScheduleChange.objects.order_by("pk").values_list("name", "enabled")) == [
        ("anomaly: detect every minute", False),
        ("anomaly: detect every minute", False),
    ]
