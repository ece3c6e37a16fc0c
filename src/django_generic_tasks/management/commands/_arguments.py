"""What the commands check in their arguments before touching anything: database aliases that
exist and numbers that fit (a clear ``CommandError``, never a traceback)."""

from __future__ import annotations

from typing import overload

from django.core.management.base import CommandError


@overload
def database_alias(alias: str, option: str = "--database") -> str: ...
@overload
def database_alias(alias: None, option: str = "--database") -> None: ...
def database_alias(alias: str | None, option: str = "--database") -> str | None:
    """``alias`` when it names a configured database (or is ``None``), else ``CommandError``."""
    from django.db import connections

    if alias is not None and alias not in connections:
        known = ", ".join(sorted(connections.settings)) or "none"
        raise CommandError(f"{option} {alias!r} is not a configured database (known: {known}).")
    return alias


def bounded(value: int, option: str, low: int, high: int) -> int:
    """``value`` when ``low <= value <= high``, else ``CommandError`` naming ``option``."""
    if value < low:
        raise CommandError(f"{option} must be at least {low} (got {value:,}).")
    if value > high:
        raise CommandError(f"{option} must be at most {high:,} (got {value:,}).")
    return value
