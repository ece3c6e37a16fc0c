"""Every statement the store sends, written whole and named, one module per dialect.

``postgresql.py``, ``mysql.py`` (MariaDB >= 10.6, MySQL >= 8) and ``sqlite.py`` each hold the
text of their dialect's statements as module constants and gather the ones every dialect has
in one ``Statements``; ``common.py`` holds the statements the three write alike. The code that
binds them (``store.queue``, ``store.operations``, ``store.observe``) decides nothing about
their text.

Placeholders: ``%s`` are bind parameters; ``{queues}`` is the claim's queue conditions
(``queue.queue_filter()``), ``{ids}`` / ``{rows}`` one ``%s`` per id / one row of marks per
row; ``{bucket}`` an integer written into the text. Status values are written into the text
(``'running'``): the planner matches them to the partial indexes defined with the same values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Statements:
    """One dialect's text of the statements every dialect has."""

    insert: str
    """New runs: ``{rows}`` rows of ``new_row`` each."""
    insert_keyed: str
    """New runs whose key may be taken: rows with a taken key are skipped, ids returned."""
    new_row: str
    """One row of ``insert``'s VALUES."""
    claim: str
    """Due runs taken and leased (MariaDB/MySQL: only locked; ``CLAIM_MARK`` leases them)."""
    finish: str
    """Outcomes written back, with the history entry of an attempt that is retried."""
    finish_plain: str
    """Outcomes written back on a schema without ``history`` (before migration 0010)."""
    postpone: str
    """A claimed run given back, due again later; its attempt does not count."""
    release: str
    """Claimed runs that never started given back; their attempts do not count."""
    extend_leases: str
    """A worker's heartbeat: the leases of the runs it holds pushed back."""
    cancel_requested: str
    """The runs a worker holds whose cancel was requested."""
    reclaim_select: str
    """Runs whose lease expired (the reaper's read)."""
    reclaim_requeue: str
    """A lost run waiting again, its lost attempt appended to its history."""
    reclaim_cancelled: str
    """Lost runs whose cancel was requested, ended ``cancelled``."""
    reclaim_failed: str
    """Lost runs given up, ended ``failed`` (``WorkerLost``)."""
    add_rollups: str
    """Rollup rows added to the stored counts: ``{rows}`` rows of ``rollup_row`` each."""
    rollup_row: str
    """One row of ``add_rollups``' VALUES."""
    throughput: str
    """Finished attempts per ``{bucket}`` minutes and outcome."""
    task_figures: str
    """Per task and outcome: runs, seconds and the duration histogram."""
    last_failures: str
    """The ids of the latest failed or discarded runs the rollups saw."""
    slot_claim: str
    """A schedule's slot inserted, skipped when another scheduler holds it already."""
    slot_mark_fired: str
    """A claimed slot's run handed to the backend."""
    slot_take_over: str
    """An abandoned slot claim leased to this scheduler, unless another was faster."""
    slot_prune: str
    """A schedule's fired slots older than a time forgotten."""
    announce_cancel: str | None = None
    """Tell the workers holding runs that their cancel was requested (``None``: they read
    it with their heartbeat)."""
    mark_awaited: str | None = None
    """Ask for a finish notice of a run (``None``: ``wait()`` polls)."""
    flow_lock: str | None = None
    """Taken before a claim through the limits (``None``: a claim's write transaction is
    already the only writer: SQLite)."""
    flow_unlock: str | None = None
    """Gives ``flow_lock`` back after the claim's commit (``None``: the commit does)."""


def ids(count: int) -> str:
    """``{ids}``: one mark per id."""
    return ", ".join(["%s"] * count)


def rows(row: str, count: int) -> str:
    """``{rows}``: ``row`` (one row of marks) ``count`` times."""
    return ", ".join([row] * count)
