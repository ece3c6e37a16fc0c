"""Each dialect's statements are written whole (``store/sql/``): what they name by hand (tables,
columns, column types, statuses) must stay what the models say."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.models import (
    RunRollup,
    ScheduleSlot,
    TaskRun,
    TaskWorkflow,
    WorkflowMember,
)
from django_generic_tasks.store.rollups import COLUMNS as ROLLUP_COLUMNS
from django_generic_tasks.store.schema import table
from django_generic_tasks.store.sql import Statements, common, mysql, postgresql, sqlite

DIALECTS = {"postgresql": postgresql, "sqlite": sqlite, "mysql": mysql}
MODULES = [common, postgresql, sqlite, mysql]


def texts(module: object) -> dict[str, str]:
    return {
        name: value
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str)
    }


def names(listed: str) -> list[str]:
    return [re.sub(r"[\"`\s]", "", name) for name in listed.split(",")]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_statements_name_only_the_models_tables(module: object) -> None:
    known = {
        model._meta.db_table
        for model in (TaskRun, RunRollup, ScheduleSlot, TaskWorkflow, WorkflowMember)
    }
    for name, text in texts(module).items():
        for found in re.findall(r"\bdjango_generic_tasks_\w+", text):
            assert found in known, (name, found)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_statements_write_only_stored_statuses(module: object) -> None:
    stored = {status.value for status in TaskStatus}
    for name, text in texts(module).items():
        for literal in re.findall(r"status\s*(?:=|IN)\s*\(?'(\w+)'", text):
            assert literal in stored, (name, literal)
        for group in re.findall(r"status IN \(([^)]*)\)", text):
            assert {v.strip(" '") for v in group.split(",")} <= stored, (name, group)
        for literal in re.findall(r"THEN '(\w+)'", text):
            assert literal in stored, (name, literal)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialects_inserts_write_the_columns_a_new_run_sets(dialect: str) -> None:
    module = DIALECTS[dialect]
    inserts = {
        name: text
        for name, text in texts(module).items()
        if name.startswith(("INSERT", "COPY")) and "taskrun" in text
    }
    assert inserts
    for name, text in inserts.items():
        listed = re.search(r"django_generic_tasks_taskrun \(([^)]*)\)", text)
        assert listed is not None, name
        assert names(listed.group(1)) == list(table().columns), name
    marks = module.NEW_ROW.strip("()").split(",")
    assert len(marks) == len(table().columns)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialects_rollup_upsert_writes_every_rollup_column(dialect: str) -> None:
    statements: Statements = DIALECTS[dialect].STATEMENTS
    listed = re.search(r"django_generic_tasks_runrollup \(([^)]*)\)", statements.add_rollups)
    assert listed is not None
    assert names(listed.group(1)) == list(ROLLUP_COLUMNS)
    assert statements.rollup_row.count("%s") == len(ROLLUP_COLUMNS)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialects_slot_claim_writes_stored_slot_columns_with_one_mark_each(
    dialect: str,
) -> None:
    statements: Statements = DIALECTS[dialect].STATEMENTS
    listed = re.search(r"django_generic_tasks_scheduleslot \(([^)]*)\)", statements.slot_claim)
    assert listed is not None
    columns = {field.column for field in ScheduleSlot._meta.concrete_fields}
    assert set(names(listed.group(1))) <= columns
    assert statements.slot_claim.count("%s") == len(names(listed.group(1)))


@pytest.mark.per_database
def test_postgresqls_array_insert_casts_each_column_to_its_type() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the column types are PostgreSQL's")
    casts = re.findall(r"%s::([^\[]+)\[\]", postgresql.INSERT_ARRAYS)
    assert [" ".join(c.split()) for c in casts] == list(table().db_types(connection))


def test_the_workflow_statements_name_only_the_workflow_models_columns() -> None:
    columns = {
        field.column for model in (TaskWorkflow, WorkflowMember) for field in model._meta.fields
    }
    for name, text in texts(common).items():
        if not name.startswith("WORKFLOW_") or "INSERT" not in name:
            continue
        listed = re.search(r"\(([^)]*)\)\s*VALUES", text)
        assert listed is not None, name
        assert set(names(listed.group(1))) <= columns, name
