"""The one table of system check ids: every id the package emits comes from ``CheckId``."""

from __future__ import annotations

import re
from pathlib import Path

import django_generic_tasks
from django_generic_tasks.check_ids import PREFIX, CheckId

SRC = Path(django_generic_tasks.__file__).parent


def test_every_check_id_is_unique_and_follows_the_one_scheme() -> None:
    values = [member.value for member in CheckId]
    assert len(values) == len(set(values))
    for value in values:
        assert re.fullmatch(re.escape(PREFIX) + r"[EW]\d{3}", value), value


def test_no_module_spells_a_check_id_outside_the_table() -> None:
    spelled = []
    for path in SRC.rglob("*.py"):
        if path.name == "check_ids.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"""["']django_generic_tasks\.(cloudtasks\.)?[EW]\d{3}["']""", line):
                spelled.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert spelled == []


def test_each_range_belongs_to_one_part_of_the_package() -> None:
    parts = {"0": "BACKEND", "1": "DATABASE", "2": "CLOUDTASKS", "4": ("CELERY", "DJANGO_TASKS")}
    for member in CheckId:
        hundreds = member.value.removeprefix(PREFIX)[1]
        expected = parts.get(hundreds)
        if expected is not None:
            assert member.name.startswith(expected), member.name
