"""``FlowControl``: the store's part of flow control: each run's limits, the paused queues and
tasks, and the claim's admission through the limits.

A claim through the limits (the worker asks for it when tasks with limits are registered)
runs under the dialect's flow lock (``sql.*.FLOW_LOCK``; SQLite's single writer needs none):
first the due rate-limited runs whose next attempt has no start time yet get one from their
key's bucket (GCRA: evenly spaced at the limit's rate; a run whose time is ahead becomes
``scheduled`` until then, which is no attempt); then the due runs with a concurrency key are
admitted up to each key's free slots (its limit less its running runs). Slots are the running
runs themselves, so a lost worker's slots come back when the reaper takes its runs back.
The store decides nothing: the limits are the run rows' own (written at enqueue).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .base import StorePart
from .schema import db_id, table
from .sql import common, ids
from .statuses import waiting_status

if TYPE_CHECKING:
    from ..core.enqueue import EnqueueRequest
    from ..core.flow import FlowSpec

__all__ = ["DIRECT_QUEUE", "PAUSE_REFRESH", "RATE_BATCH", "FlowControl", "Paused"]

PAUSE_REFRESH = 1.0
"""Seconds a worker process keeps what it read of the paused queues and tasks: a pause
reaches every worker within this (and at once in the process that paused)."""
RATE_BATCH = 500
"""At most this many rate-limited runs are given a start time per claim."""
KINDS = ("queue", "task")
DIRECT_QUEUE = "http"
"""The queue of the rows direct HTTP calls hold their concurrency slots with (no worker claims
them: they are running from their insert on)."""
DIRECT_SLOT_WAIT = 1.0
"""Seconds a direct HTTP call refused for want of a slot is told to wait (``Retry-After``)."""

Paused = tuple[frozenset[str], frozenset[str]]
"""(paused queues, paused tasks)."""

_NOTHING: Paused = (frozenset(), frozenset())
_paused_cache: dict[tuple[str, Any], tuple[float, Paused]] = {}
_cache_lock = threading.Lock()


class FlowControl(StorePart):
    """Flow control on one connection."""

    def ready_for_flow(self) -> bool:
        """Whether migration 0012 (flow control) is applied."""

        def probe() -> bool:
            with self.connection.cursor() as cursor:
                columns = self.connection.introspection.get_table_description(cursor, table().name)
            return any(column.name == "concurrency_key" for column in columns)

        return self.ready("flow", probe, "TaskRun has no flow control columns yet (run migrate)")

    # -- at enqueue -------------------------------------------------------------------------

    def set_limits(self, cursor: Any, requests: Sequence[EnqueueRequest]) -> None:
        """Write the limits of the new runs ``requests`` (in their insert's transaction)."""
        params = []
        for request in requests:
            flow = request.flow
            assert flow is not None
            params.append(
                [
                    flow.concurrency_key,
                    flow.concurrency_limit,
                    flow.rate_key,
                    flow.rate.interval if flow.rate is not None else None,
                    db_id(self.connection, request.run_id),
                ]
            )
        cursor.executemany(common.SET_FLOW, params)

    # -- pausing ----------------------------------------------------------------------------

    def pause(self, kind: str, name: str, now: datetime) -> bool:
        """Pause the queue or task ``name``; ``False`` when it already was."""
        from django.db import IntegrityError, transaction

        from ..models import FlowPause

        _check(kind, name)
        try:
            with transaction.atomic(using=self.alias):
                FlowPause.objects.using(self.alias).create(kind=kind, name=name, paused_at=now)
        except IntegrityError:
            return False
        finally:
            self.forget_paused()
        return True

    def resume(self, kind: str, name: str) -> bool:
        """Resume the queue or task ``name``; ``False`` when it was not paused."""
        from ..models import FlowPause

        _check(kind, name)
        deleted, _ = FlowPause.objects.using(self.alias).filter(kind=kind, name=name).delete()
        self.forget_paused()
        return bool(deleted)

    def paused(self) -> list[tuple[str, str, datetime]]:
        """``(kind, name, since)`` of what is paused, oldest first."""
        from ..models import FlowPause

        if not self.ready_for_flow():
            return []
        rows = FlowPause.objects.using(self.alias).order_by("paused_at", "pk")
        return [(row.kind, row.name, row.paused_at) for row in rows]

    def paused_sets(self) -> Paused:
        """(queues, tasks) paused now, as this process last read them (``PAUSE_REFRESH``)."""
        cache_key = (self.alias, self.connection.settings_dict.get("NAME"))
        now = time.monotonic()
        found = _paused_cache.get(cache_key)
        if found is not None and found[0] > now:
            return found[1]
        value = _NOTHING
        if self.ready_for_flow():
            queues: set[str] = set()
            tasks: set[str] = set()
            for kind, name, _ in self.paused():
                (queues if kind == "queue" else tasks).add(name)
            value = (frozenset(queues), frozenset(tasks))
        with _cache_lock:
            _paused_cache[cache_key] = (now + PAUSE_REFRESH, value)
        return value

    def forget_paused(self) -> None:
        """Read the paused queues and tasks again on next use (this process paused one)."""
        with _cache_lock:
            _paused_cache.clear()

    # -- why runs wait ----------------------------------------------------------------------

    def running_per_key(self) -> dict[str, int]:
        """Running runs per concurrency key (through the index on running limited runs)."""
        if not self.ready_for_flow():
            return {}
        with self.connection.cursor() as cursor:
            cursor.execute(common.FLOW_RUNNING)
            return {key: int(count) for key, count in cursor.fetchall()}

    def waiting(self, now: datetime) -> list[tuple[str, str, int, str]]:
        """Runs held back by flow control now: ``(reason, key or task, runs, detail)`` for
        runs waiting for a concurrency slot, their rate limit's turn, or a ``RetryAfter``."""
        if not self.ready_for_flow():
            return []
        stamp = self.dt(now)
        found: list[tuple[str, str, int, str]] = []
        running = self.running_per_key()
        with self.connection.cursor() as cursor:
            cursor.execute(common.FLOW_WAITING_SLOTS, [stamp])
            for key, limit, count in cursor.fetchall():
                if running.get(key, 0) >= int(limit or 0):
                    held = f"{running.get(key, 0)} of {limit} running"
                    found.append(("a concurrency slot", key, int(count), held))
            cursor.execute(common.FLOW_WAITING_RATES, [stamp])
            for key, count, last in cursor.fetchall():
                found.append(("a rate limit's turn", key, int(count), f"turns until {last}"))
            cursor.execute(common.FLOW_WAITING_RETRY_AFTER, [stamp])
            for task, count, last in cursor.fetchall():
                found.append(("Retry-After", task, int(count), f"the last due at {last}"))
        return found

    # -- the claim through the limits -------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[Any]:
        """A write transaction holding the flow lock (one claim through the limits at once)."""
        lock, unlock = self.sql.flow_lock, self.sql.flow_unlock
        if unlock is not None and lock is not None:  # a session lock around the transaction
            with self.connection.cursor() as cursor:
                cursor.execute(lock)
                got = cursor.fetchone()
            try:
                if not got or not got[0]:
                    raise TimeoutError("The flow control lock was not granted in time.")
                with self.write_transaction() as cursor:
                    yield cursor
            finally:
                with self.connection.cursor() as cursor:
                    cursor.execute(unlock)
            return
        with self.write_transaction() as cursor:
            if lock is not None:
                cursor.execute(lock)
            yield cursor

    def admit(
        self,
        cursor: Any,
        now: datetime,
        where: str,
        params: Sequence[Any],
        limit: int,
        *,
        rated: bool = True,
    ) -> tuple[str, list[Any]]:
        """Inside ``locked()``: give due rate-limited runs their start times, then the
        claim's conditions that admit only runs the limits allow (``where``/``params``: the
        claim's queue conditions)."""
        if rated:
            self.rate_turns(cursor, now, where, params)
        cursor.execute(
            common.CONCURRENCY_ELIGIBLE.format(queues=where), [self.dt(now), *params, limit]
        )
        admitted = [row[0] for row in cursor.fetchall()]
        sql = " AND (rate_key IS NULL OR rate_turn = attempt + 1)"
        if not admitted:
            return sql + " AND concurrency_key IS NULL", []
        return sql + f" AND (concurrency_key IS NULL OR id IN ({ids(len(admitted))}))", admitted

    def rate_turns(
        self,
        cursor: Any,
        now: datetime,
        where: str,
        params: Sequence[Any],
        *,
        lock_keys: str | None = None,
    ) -> None:
        """Give due rate-limited runs (at most ``RATE_BATCH``) whose next attempt has no start
        time yet one from their key's bucket, in ``cursor``'s transaction. Under the flow
        lock as is; with ``lock_keys`` (a statement locking the keys given as one array until
        the commit: PostgreSQL's per-key locks) the candidates are locked rows (skipping
        those another claim holds) and each key's bucket is read under its key's lock."""
        from ..models import RateBucket

        candidates = common.RATE_CANDIDATES.format(queues=where)
        if lock_keys is not None:
            candidates += " FOR UPDATE SKIP LOCKED"
        cursor.execute(candidates, [self.dt(now), *params, RATE_BATCH])
        found = cursor.fetchall()
        if not found:
            return
        buckets = RateBucket.objects.using(self.alias)
        keys = {row[1] for row in found}
        if lock_keys is not None:
            cursor.execute(lock_keys, [sorted(keys)])
        next_at = {b.key: b.next_at for b in buckets.filter(key__in=keys)}
        turns = []
        for run_id, key, interval in found:
            at = max(now, next_at.get(key) or now)
            next_at[key] = at + timedelta(seconds=float(interval or 0.0))
            turns.append([waiting_status(at, now).value, self.dt(at), run_id])
        cursor.executemany(common.RATE_TURN, turns)
        for key in keys:
            updated = buckets.filter(key=key).update(next_at=next_at[key])
            if not updated:
                buckets.create(key=key, next_at=next_at[key])

    # -- a direct HTTP call's slot --------------------------------------------------------

    def take_direct(
        self, task_name: str, flow: FlowSpec, now: datetime, lease: float, holder: str
    ) -> tuple[str | None, float]:
        """Admit a direct HTTP call of a task with limits, as a claim admits a run: its
        concurrency key's slot (a running row of queue ``DIRECT_QUEUE`` held by ``holder``
        for ``lease`` seconds, which ``release_direct()`` deletes and the reaper ends as lost
        if its process dies) and its rate limit's turn (only when due now: a call is never
        given a later one; read with the clock after the lock is held, as the call starts
        right after). ``(the slot row's id, or "" when only a rate applies; 0.0)``, or
        ``(None, seconds to wait)`` when no slot or turn is free."""
        from ..core.enqueue import EnqueueRequest
        from ..models import RateBucket
        from .rows import new_row
        from .sql import postgresql, rows

        key, limit = flow.concurrency_key, flow.concurrency_limit
        per_key = self.connection.vendor == "postgresql"
        with self.write_transaction() if per_key else self.locked() as cursor:
            if key is not None and limit is not None:
                if per_key:
                    cursor.execute(postgresql.KEY_LOCK, [key])
                cursor.execute(common.DIRECT_RUNNING, [key])
                if int(cursor.fetchone()[0]) >= limit:
                    return None, DIRECT_SLOT_WAIT
            if flow.rate is not None and flow.rate_key is not None:
                if per_key:
                    cursor.execute(postgresql.RATE_LOCK_KEYS, [[flow.rate_key]])
                now = max(now, datetime.now(UTC))  # the turn is taken now, under the lock
                buckets = RateBucket.objects.using(self.alias)
                bucket = buckets.filter(key=flow.rate_key).first()
                if bucket is not None and bucket.next_at > now:
                    return None, (bucket.next_at - now).total_seconds()
                next_at = now + timedelta(seconds=flow.rate.interval)
                if bucket is None:
                    buckets.create(key=flow.rate_key, next_at=next_at)
                else:
                    buckets.filter(key=flow.rate_key).update(next_at=next_at)
            if key is None or limit is None:
                return "", 0.0
            run_id = str(uuid.uuid4())
            request = EnqueueRequest(
                run_id=run_id,
                task_name=task_name,
                params_json="{}",
                queue=DIRECT_QUEUE,
                priority=0,
                run_after=None,
                key=None,
                max_attempts=1,
                timeout=None,
            )
            cursor.execute(
                self.sql.insert.format(rows=rows(self.sql.new_row, 1)),
                list(new_row(self.connection, request, now)),
            )
            until = now + timedelta(seconds=lease)
            cursor.execute(
                common.DIRECT_HOLD,
                [holder, self.dt(now), self.dt(until), key, limit, db_id(self.connection, run_id)],
            )
            return run_id, 0.0

    def release_direct(self, run_id: str, holder: str) -> None:
        """Give back the slot ``take_direct()`` took (autocommitted)."""
        with self.connection.cursor() as cursor:
            cursor.execute(common.DIRECT_RELEASE, [db_id(self.connection, run_id), holder])


def _check(kind: str, name: str) -> None:
    from ..exceptions import InvalidOptionError

    if kind not in KINDS:
        raise InvalidOptionError(f"Pause a 'queue' or a 'task', not a {kind!r}.")
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidOptionError(f"A {kind} name must be a non-empty string (got {name!r}).")


RETRY_AFTER_TYPE = "django_generic_tasks.exceptions.RetryAfter"
"""The stored error type of an attempt that raised ``RetryAfter``."""


def waiting_reason(
    run: Any,
    now: datetime,
    paused: Sequence[tuple[str, str, datetime]],
    running: dict[str, int],
) -> str:
    """Why the waiting ``run`` (a ``TaskRun``) is not running: a paused queue or task, the
    time a ``RetryAfter`` asked for, its rate limit's turn, a concurrency slot; ``""`` when
    it is not waiting for any of those (``paused``: ``FlowControl.paused()``; ``running``:
    ``running_per_key()``)."""
    if run.status not in ("scheduled", "ready"):
        return ""
    for kind, name, since in paused:
        if (kind == "queue" and name == run.queue) or (kind == "task" and name == run.task_name):
            return f"{kind} paused since {since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    due = run.run_after is not None and run.run_after > now
    if due and run.error_type == RETRY_AFTER_TYPE:
        return f"Retry-After: {run.error_message}"
    if due and run.rate_key is not None and run.rate_turn == run.attempt + 1:
        return f"rate limit of {run.rate_key!r}: its turn"
    key, limit = run.concurrency_key, run.concurrency_limit
    if key is not None and limit is not None and running.get(key, 0) >= limit:
        return f"a slot: {running.get(key, 0)} of {limit} running for {key!r}"
    return ""
