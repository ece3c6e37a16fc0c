"""Silent misconfiguration (issue 22, items 1-3): a forgotten ``TASKS_BACKEND``, migrations not
applied, a mistyped queue. Each is reported where the user looks: ``check --deploy``,
``check --database``, the error ``start()`` raises."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.checks import Tags, run_checks
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from django_generic_tasks import ConfigurationError, InvalidOptionError, TasksError
from django_generic_tasks.backends import DatabaseBackend, InMemoryBackend
from django_generic_tasks.check_ids import CheckId
from django_generic_tasks.store.readiness import unapplied_migrations
from tests.testapp.tasks import AddParams, AddTask

TABLE = "django_generic_tasks_taskrun"


def ids(*, deploy: bool = False, databases: list[str] | None = None) -> list[str]:
    tags = [Tags.database] if databases else [Tags.compatibility]
    messages = run_checks(include_deployment_checks=deploy, databases=databases, tags=tags)
    return [str(m.id) for m in messages if str(m.id).startswith("django_generic_tasks.")]


# -- item 1: the default ImmediateBackend in production ------------------------------------


def test_deploy_check_warns_when_the_default_immediate_backend_runs_with_debug_off() -> None:
    assert CheckId.BACKEND_IMMEDIATE_WITHOUT_DEBUG in ids(deploy=True)
    out = StringIO()
    call_command("check", "--deploy", "--tag", "compatibility", stdout=out, stderr=out)
    assert "django_generic_tasks.W001" in out.getvalue()
    assert "default ImmediateBackend is in effect" in out.getvalue()


@override_settings(DEBUG=True)
def test_deploy_check_is_quiet_with_debug_on() -> None:
    assert CheckId.BACKEND_IMMEDIATE_WITHOUT_DEBUG not in ids(deploy=True)


@override_settings(TASKS_BACKEND="django_generic_tasks.backends.ThreadingBackend")
def test_deploy_check_is_quiet_with_a_background_backend() -> None:
    assert CheckId.BACKEND_IMMEDIATE_WITHOUT_DEBUG not in ids(deploy=True)


def test_immediate_backend_warning_is_a_deploy_check_only() -> None:
    assert CheckId.BACKEND_IMMEDIATE_WITHOUT_DEBUG not in ids()


# -- item 2: migrations not applied ------------------------------------------------------------


@pytest.fixture
def table_renamed() -> Iterator[None]:
    """The run table gone, as before ``migrate`` (renamed back afterwards: MariaDB's DDL
    commits, so this cannot be a rolled-back transaction)."""
    away = TABLE + "_away"
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {away}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {away} RENAME TO {TABLE}")


@pytest.mark.django_db(transaction=True)
def test_start_without_the_tables_raises_a_tasks_error_that_says_migrate(
    table_renamed: None,
) -> None:
    with pytest.raises(ConfigurationError) as info:
        AddTask(AddParams(a=1)).start(backend=DatabaseBackend())
    assert isinstance(info.value, TasksError)
    assert "python manage.py migrate" in str(info.value)
    assert "'default'" in str(info.value)


@pytest.mark.django_db(transaction=True)
def test_database_check_reports_unapplied_migrations_of_this_app() -> None:
    with override_settings(TASKS_BACKEND="django_generic_tasks.backends.DatabaseBackend"):
        assert CheckId.DATABASE_MIGRATIONS_UNAPPLIED not in ids(databases=["default"])
        from django.db.migrations.loader import MigrationLoader

        ((_, latest),) = MigrationLoader(connection).graph.leaf_nodes("django_generic_tasks")
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM django_migrations WHERE app = %s AND name = %s",
                ["django_generic_tasks", latest],
            )
        try:
            assert unapplied_migrations(connection) == [f"django_generic_tasks.{latest}"]
            assert CheckId.DATABASE_MIGRATIONS_UNAPPLIED in ids(databases=["default"])
            # Only where the database is asked for: plain `check` never opens a connection.
            assert CheckId.DATABASE_MIGRATIONS_UNAPPLIED not in ids()
        finally:
            call_command("migrate", "django_generic_tasks", "--fake", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_database_check_ignores_backends_that_need_no_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s", ["django_generic_tasks"])
    try:
        assert CheckId.DATABASE_MIGRATIONS_UNAPPLIED not in ids(databases=["default"])
    finally:
        call_command("migrate", "django_generic_tasks", "--fake", verbosity=0)


@pytest.fixture
def unreachable_alias() -> Iterator[str]:
    """A configured database alias nothing listens for (as in a build step without a database)."""
    from django.db import connections

    alias = "unreachable"
    connections.settings[alias] = connections.configure_settings(
        {
            "default": connections.settings["default"],
            alias: {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "nowhere",
                "HOST": "127.0.0.1",
                "PORT": 1,
                "OPTIONS": {"connect_timeout": 2},
            },
        }
    )[alias]
    try:
        yield alias
    finally:
        connections[alias].close()
        del connections.settings[alias]


def test_database_check_is_silent_when_the_database_cannot_be_reached(
    unreachable_alias: str, django_db_blocker: Any
) -> None:
    backend = DatabaseBackend(database=unreachable_alias)
    with override_settings(TASKS_BACKEND=backend), django_db_blocker.unblock():
        assert CheckId.DATABASE_MIGRATIONS_UNAPPLIED not in ids(databases=[unreachable_alias])


# -- item 3: declared queues -------------------------------------------------------------------


@override_settings(TASKS_QUEUES=["default", "webhooks"])
def test_start_refuses_an_undeclared_queue_with_the_declared_list() -> None:
    with pytest.raises(InvalidOptionError) as info:
        AddTask(AddParams(a=1)).start(queue="webhook", backend=InMemoryBackend())
    assert "'webhook'" in str(info.value)
    assert "declared: default, webhooks" in str(info.value)
    handle = AddTask(AddParams(a=1)).start(queue="webhooks", backend=InMemoryBackend())
    assert handle.id


def test_without_declared_queues_any_queue_is_accepted() -> None:
    backend = InMemoryBackend()
    AddTask(AddParams(a=1)).start(queue="anything", backend=backend)
    assert [r.queue for r in backend.pending()] == ["anything"]


@override_settings(TASKS_QUEUES=["webhooks"])
def test_check_reports_a_task_whose_queue_is_not_declared() -> None:
    errors = [
        m
        for m in run_checks(tags=[Tags.compatibility])
        if m.id == CheckId.BACKEND_TASK_QUEUE_UNDECLARED
    ]
    assert any("'tests.add'" in m.msg and "'default'" in m.msg for m in errors)


@override_settings(TASKS_QUEUES="webhooks")
def test_queues_setting_must_be_a_list() -> None:
    assert CheckId.BACKEND_INVALID in ids()
