"""What the store knows about the ``TaskRun`` table, all read from the model's ``_meta``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..exceptions import InvalidOptionError

NEW_RUN_COLUMNS = (
    "id",
    "task_name",
    "params",
    "queue",
    "priority",
    "status",
    "attempt",
    "max_attempts",
    "timeout",
    "run_after",
    "created_at",
    "key",
    "trace_context",
)
"""The columns a new run sets itself, in the order ``rows.new_row()`` gives their values."""


@dataclass(frozen=True)
class Table:
    """The ``TaskRun`` table: its name and the columns an insert writes, from ``_meta``."""

    name: str
    columns: tuple[str, ...]
    """The columns of an INSERT: ``NEW_RUN_COLUMNS``, then every other column that cannot
    be NULL (nullable ones a new run leaves NULL are left out)."""
    defaults: tuple[Any, ...]
    """The values of the columns after ``NEW_RUN_COLUMNS``: their model defaults."""
    max_lengths: dict[str, int]
    """Column name -> ``max_length`` of the text columns that have one."""

    def quoted_columns(self, connection: Any) -> str:
        """The column list of an INSERT, quoted for ``connection`` (``key`` is reserved)."""
        quote = connection.ops.quote_name
        return ", ".join(quote(column) for column in self.columns)

    def db_types(self, connection: Any) -> tuple[str, ...]:
        """Each INSERT column's database type on ``connection`` (PostgreSQL's array casts)."""
        from ..models import TaskRun

        fields = {f.column: f for f in TaskRun._meta.concrete_fields}
        return tuple(fields[c].db_type(connection) or "text" for c in self.columns)


@cache
def table() -> Table:
    """The table of ``TaskRun`` (read once, when the app registry is ready)."""
    from ..models import TaskRun

    fields = [f for f in TaskRun._meta.concrete_fields if not getattr(f, "generated", False)]
    known = {f.column for f in fields}
    unknown = set(NEW_RUN_COLUMNS) - known
    if unknown:
        raise LookupError(f"TaskRun has no column {sorted(unknown)}.")
    rest = [f for f in fields if f.column not in NEW_RUN_COLUMNS and not f.null]
    return Table(
        name=TaskRun._meta.db_table,
        columns=(*NEW_RUN_COLUMNS, *(str(f.column) for f in rest)),
        defaults=tuple(f.get_default() for f in rest),
        max_lengths={str(f.column): int(f.max_length) for f in fields if f.max_length is not None},
    )


@cache
def _limits() -> tuple[int, int, int]:
    lengths = table().max_lengths
    return lengths["task_name"], lengths["queue"], lengths["key"]


def check_lengths(task_name: str, queue: str, key: str | None) -> None:
    """Raise ``InvalidOptionError`` when a value is longer than its column stores.

    Checked before the database sees it: PostgreSQL would raise a ``DataError`` mid-transaction
    and a lenient MariaDB/MySQL ``sql_mode`` would silently truncate.
    """
    name_max, queue_max, key_max = _limits()
    if len(queue) > queue_max or len(task_name) > name_max or (key and len(key) > key_max):
        for option, value, limit in (
            ("queue", queue, queue_max),
            ("key", key or "", key_max),
            ("task name", task_name, name_max),
        ):
            if len(value) > limit:
                raise InvalidOptionError(
                    f"The {option} {value[:40]!r}... is {len(value)} characters long; "
                    f"at most {limit} are stored."
                )


def db_id(connection: Any, run_id: str) -> Any:
    """``run_id`` as ``connection`` stores it (native UUID, or 32 hex digits elsewhere)."""
    if connection.features.has_native_uuid_field:
        return run_id
    return uuid.UUID(run_id).hex


def id_str(value: Any) -> str:
    """A stored id (UUID, hex or text) as the canonical run id string."""
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def parse_run_id(run_id: str) -> uuid.UUID | None:
    """``run_id`` as a UUID, or ``None`` when it is not one."""
    try:
        return uuid.UUID(str(run_id))
    except ValueError:
        return None
