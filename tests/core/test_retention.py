"""core.retention: bounded batches, a time budget that stops early and says so, and nothing else deleted."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db.models import QuerySet

from core.retention import delete_in_batches


@pytest.fixture
def groups(db: None) -> None:
    names = [f"old-{n:02d}" for n in range(15)] + [f"new-{n}" for n in range(10)]
    Group.objects.bulk_create([Group(name=name) for name in names])


def mine() -> QuerySet[Group]:
    """The fixture's rows (migrations create groups of their own, e.g. the console's roles)."""
    return Group.objects.filter(name__regex=r"^(old|new)-")


def test_deletes_only_the_queryset_in_batches(groups: None) -> None:
    others = set(Group.objects.exclude(pk__in=mine()).values_list("name", flat=True))
    old = Group.objects.filter(name__startswith="old-")
    assert delete_in_batches(old, batch_size=4) == (15, True)
    assert sorted(mine().values_list("name", flat=True)) == [f"new-{n}" for n in range(10)]
    assert set(Group.objects.exclude(pk__in=mine()).values_list("name", flat=True)) == others
    assert delete_in_batches(old, batch_size=4) == (0, True)  # re-running is harmless


def test_a_spent_budget_stops_after_the_batch_and_says_more_is_left(groups: None) -> None:
    # a zero budget is spent by the first batch: one batch goes, and the caller is told to come back
    assert delete_in_batches(mine(), batch_size=10, max_seconds=0) == (10, False)
    assert mine().count() == 15
    assert delete_in_batches(mine(), batch_size=10, max_seconds=60) == (15, True)
