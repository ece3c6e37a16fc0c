"""Migration 0003 on the real database: keys become unique per task, existing rows kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from django_generic_tasks.models import TaskRun

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("django_generic_tasks", "0002_notify_trigger")]
AFTER = [("django_generic_tasks", "0003_store_indexes")]


_at: list[tuple[str, str]] = []


def migrate(target: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    _at[:] = target


def migrate_to_latest() -> None:
    """Back to the newest migration (later ones depend on 0003: going to 0002 undid them)."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("django_generic_tasks"))


@pytest.fixture
def at_0002() -> Iterator[None]:
    migrate(BEFORE)
    try:
        yield
    finally:
        migrate_to_latest()


def make(task_name: str, key: str, status: str) -> Any:
    """A run written through the model as the migration state it is at knows it (later
    migrations add columns the table does not have yet)."""
    state = MigrationExecutor(connection).loader.project_state(_at[0])
    model = state.apps.get_model("django_generic_tasks", "TaskRun")
    return model.objects.create(task_name=task_name, params={}, key=key, status=status)


# MariaDB/MySQL never had 0001's key constraint: Django cannot create partial indexes there.
OLD_RULE_ENFORCED = connection.vendor != "mysql"


def test_existing_runs_survive_and_keys_become_unique_per_task(at_0002: None) -> None:
    if OLD_RULE_ENFORCED:
        # The old rule: one unfinished run per key, whatever the task.
        make("tests.add", "shared", "ready")
        with transaction.atomic(), pytest.raises(IntegrityError):
            make("tests.flaky", "shared", "ready")
        TaskRun.objects.filter(key="shared").delete()
    kept = [
        make("tests.add", "k", "ready"),
        make("tests.add", "k", "succeeded"),
        make("tests.flaky", "j", "running"),
    ]
    migrate(AFTER)
    assert set(TaskRun.objects.values_list("pk", flat=True)) == {r.pk for r in kept}
    make("tests.flaky", "k", "ready")  # another task may now hold the same key
    with transaction.atomic(), pytest.raises(IntegrityError):
        make("tests.add", "k", "scheduled")  # the same task still may not
    make("tests.add", "k", "failed")  # finished runs never hold a key


def test_the_migration_reverses_when_no_key_is_held_by_two_tasks(at_0002: None) -> None:
    migrate(AFTER)
    make("tests.add", "k", "ready")
    migrate(BEFORE)
    assert TaskRun.objects.count() == 1
    if OLD_RULE_ENFORCED:
        with transaction.atomic(), pytest.raises(IntegrityError):
            make("tests.flaky", "k", "ready")
