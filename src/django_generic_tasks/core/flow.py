"""Flow control options of a task: its concurrency limit and key, its rate limit and key.

``Task.concurrency_limit`` / ``concurrency_key()`` and ``Task.rate_limit`` /
``rate_limit_key()`` are read here, once per start, into a ``FlowSpec`` that travels with the
run (``EnqueueRequest.flow``): the backend that runs it honours it (the database backend in its
claim, the in-process backends in the attempt chain) or refuses it at ``start()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidOptionError, TaskDefinitionError

if TYPE_CHECKING:
    from .task import Task

__all__ = ["PERIODS", "FlowSpec", "RateLimit", "flow_of", "parse_rate_limit"]

PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
"""The periods a ``rate_limit`` may name: per second, minute, hour."""

_RATE = re.compile(r"^\s*(\d+)\s*/\s*([smh])\s*$")
KEY_MAX = 255
"""The longest concurrency or rate limit key (the column's length)."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``count`` runs per ``period`` seconds."""

    count: int
    period: float

    @property
    def interval(self) -> float:
        """Seconds between two runs at the limit's steady rate."""
        return self.period / self.count

    def __str__(self) -> str:
        unit = {v: k for k, v in PERIODS.items()}[self.period]
        return f"{self.count}/{unit}"


def parse_rate_limit(value: object) -> RateLimit:
    """``"600/m"`` (also ``/s``, ``/h``) as a ``RateLimit``; ``ValueError`` otherwise."""
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"a rate such as '600/m' (a positive count per s, m or h), not {value!r}")
    return RateLimit(int(match.group(1)), PERIODS[match.group(2)])


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """The limits one run is subject to (``None`` fields: that limit does not apply)."""

    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None
    rate: RateLimit | None = None


def check_flow_options(cls: type[Task[Any]]) -> None:
    """Refuse flow control options that are not valid, at class definition."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    limit = cls.concurrency_limit
    if limit is not None and (type(limit) is not int or limit < 1):
        raise TaskDefinitionError(
            f"{where}.concurrency_limit must be an integer >= 1 or None (got {limit!r})."
        )
    if cls.rate_limit is not None:
        try:
            cls._rate = parse_rate_limit(cls.rate_limit)
        except ValueError as exc:
            raise TaskDefinitionError(f"{where}.rate_limit must be {exc}.") from None
    else:
        cls._rate = None


def flow_of(task: Task[Any]) -> FlowSpec | None:
    """The limits of ``task``'s run (``None``: its class declares none: the common case)."""
    cls = type(task)
    limit, rate = cls.concurrency_limit, cls._rate
    if limit is None and rate is None:
        return None
    concurrency_key = _key(task.concurrency_key(), "concurrency_key") if limit else None
    rate_key = _key(task.rate_limit_key(), "rate_limit_key") if rate else None
    return FlowSpec(concurrency_key, limit, rate_key, rate)


def _key(value: object, method: str) -> str:
    if not isinstance(value, str) or not value or len(value) > KEY_MAX:
        raise InvalidOptionError(
            f"{method}() must return a non-empty string of at most {KEY_MAX} characters "
            f"(got {value!r})."
        )
    return value
