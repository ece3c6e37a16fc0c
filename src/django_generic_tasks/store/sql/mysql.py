"""MariaDB's (>= 10.6) and MySQL's (>= 8) statements: claims lock due runs with ``SELECT ... FOR
UPDATE SKIP LOCKED`` and lease them with an ``UPDATE`` in the same transaction (neither has
``UPDATE ... RETURNING``), keyed inserts skip taken keys with ``INSERT IGNORE ... RETURNING``
(MariaDB), a batch of outcomes is one ``UPDATE ... JOIN``, rollups use ``ON DUPLICATE KEY
UPDATE``.

Neither has partial indexes: migration 0003 adds generated columns instead (``open_key``: the
key while the run is unfinished, unique with ``task_name``; ``waiting``: 1 while claimable,
leading the claim index).
"""

from . import Statements, common

NEW_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"

INSERT = """
INSERT INTO django_generic_tasks_taskrun (id, task_name, params, queue, priority, status,
       attempt, max_attempts, timeout, run_after, created_at, `key`, trace_context,
       error_type, error_message, error_traceback)
VALUES {rows}
"""
"""New runs; the columns are ``schema.table().columns`` (a test compares them)."""

INSERT_KEYED = """
INSERT IGNORE INTO django_generic_tasks_taskrun (id, task_name, params, queue, priority,
       status, attempt, max_attempts, timeout, run_after, created_at, `key`, trace_context,
       error_type, error_message, error_traceback)
VALUES {rows}
RETURNING id
"""
"""MariaDB only (MySQL has no ``INSERT ... RETURNING``: there keyed runs go one by one).
``IGNORE`` skips only duplicate keys here: lengths were checked before, and every other
value comes from the library, not the caller."""

OPEN_RUN = """
SELECT id FROM django_generic_tasks_taskrun WHERE task_name = %s AND open_key = %s
"""
"""The unfinished run holding a key, compared byte for byte, trailing spaces included, as the
unique index does (``open_key``, NO PAD since migration 0010)."""

CLAIM = """
SELECT id, task_name, params, attempt, max_attempts, priority, queue, trace_context, run_after
  FROM django_generic_tasks_taskrun
 WHERE waiting = 1 AND run_after <= %s{queues}
 ORDER BY priority DESC, run_after LIMIT %s FOR UPDATE SKIP LOCKED
"""
"""Due runs locked (skipping runs other claims hold); ``CLAIM_MARK`` then leases them."""

CLAIM_MARK = """
UPDATE django_generic_tasks_taskrun
   SET status = 'running', attempt = attempt + 1, worker_id = %s, started_at = %s,
       lease_expires_at = %s
 WHERE id IN ({ids})
"""

FINISH_ROW = (
    "SELECT %s AS id, %s AS attempt, %s AS status, %s AS result, %s AS error_type, "
    "%s AS error_message, %s AS error_traceback, %s AS finished_at, %s AS run_after, "
    "%s AS entry, %s AS at, %s AS extra"
)
"""One outcome of ``FINISH``'s derived table (``{rows}``: these joined by ``UNION ALL``)."""

FINISH = """
UPDATE django_generic_tasks_taskrun AS t
  JOIN ({rows}) AS v ON t.id = v.id AND t.attempt = v.attempt
   SET t.status = CASE WHEN v.entry IS NOT NULL AND t.cancel_requested_at IS NOT NULL
                       THEN 'cancelled' ELSE v.status END,
       t.result = v.result, t.error_type = v.error_type, t.error_message = v.error_message,
       t.error_traceback = v.error_traceback,
       t.finished_at = COALESCE(v.finished_at,
                                CASE WHEN v.entry IS NOT NULL
                                      AND t.cancel_requested_at IS NOT NULL
                                     THEN v.at END),
       t.run_after = COALESCE(v.run_after, t.run_after), t.lease_expires_at = NULL,
       t.max_attempts = t.max_attempts + v.extra,
       t.history = CASE WHEN v.entry IS NULL THEN t.history
                   ELSE JSON_ARRAY_APPEND(
                          CASE WHEN JSON_LENGTH(COALESCE(t.history, JSON_ARRAY())) >= 10
                               THEN JSON_REMOVE(COALESCE(t.history, JSON_ARRAY()), '$[0]')
                               ELSE COALESCE(t.history, JSON_ARRAY()) END,
                          '$', JSON_EXTRACT(v.entry, '$')) END
 WHERE t.status = 'running' AND t.worker_id = %s
"""
"""A batch of outcomes, given as a derived table, then the worker id. MariaDB/MySQL assign
left to right: nothing here reads a column assigned before it. A retry of a run whose cancel
was requested ends it ``cancelled``; the history keeps the last 10 entries
(``rows.HISTORY_LIMIT``), each parsed as JSON (not kept as a string)."""

RECLAIM_SELECT = common.RECLAIM_SELECT + " FOR UPDATE SKIP LOCKED"
"""Skips the rows another reaper holds."""

RECLAIM_REQUEUE = """
UPDATE django_generic_tasks_taskrun
   SET status = %s, run_after = %s, worker_id = NULL, lease_expires_at = NULL,
       history = JSON_ARRAY_APPEND(
                   CASE WHEN JSON_LENGTH(COALESCE(history, JSON_ARRAY())) >= 10
                        THEN JSON_REMOVE(COALESCE(history, JSON_ARRAY()), '$[0]')
                        ELSE COALESCE(history, JSON_ARRAY()) END,
                   '$', JSON_EXTRACT(%s, '$'))
 WHERE id = %s AND status = 'running'
"""

ADD_ROLLUPS = """
INSERT INTO django_generic_tasks_runrollup (minute, task_name, queue, outcome, runs, seconds,
       d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, last_run_id)
VALUES {rows}
    ON DUPLICATE KEY UPDATE runs = runs + VALUES(runs), seconds = seconds + VALUES(seconds),
       d0 = d0 + VALUES(d0), d1 = d1 + VALUES(d1), d2 = d2 + VALUES(d2),
       d3 = d3 + VALUES(d3), d4 = d4 + VALUES(d4), d5 = d5 + VALUES(d5),
       d6 = d6 + VALUES(d6), d7 = d7 + VALUES(d7), d8 = d8 + VALUES(d8),
       d9 = d9 + VALUES(d9), d10 = d10 + VALUES(d10), d11 = d11 + VALUES(d11),
       last_run_id = VALUES(last_run_id)
"""

THROUGHPUT = """
SELECT minute DIV {bucket} AS b, outcome, SUM(runs)
  FROM django_generic_tasks_runrollup WHERE minute >= %s GROUP BY b, outcome
"""

SLOT_CLAIM = f"""
INSERT IGNORE INTO django_generic_tasks_scheduleslot ({common.SLOT_COLUMNS})
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""
"""A taken slot is skipped; the values are checked before, so IGNORE can skip only that."""
FLOW_LOCK = "SELECT GET_LOCK('django_generic_tasks.flow', 30)"
"""Claims through the limits, one at a time across every worker: taken before the claim's
transaction and given back after its commit (``FLOW_UNLOCK``), so each counts the running runs
that the ones before it committed."""

FLOW_UNLOCK = "SELECT RELEASE_LOCK('django_generic_tasks.flow')"
WORKFLOW_MEMBERS_ENDED = """
SELECT m.run_id, m.workflow_id, m.position, m.role, r.task_name, r.status, r.error_type,
       r.error_message
  FROM django_generic_tasks_workflowmember m
  JOIN django_generic_tasks_taskrun r ON r.id = m.run_id
 WHERE m.run_id IN ({ids}) AND m.done = FALSE
   AND r.status IN ('succeeded', 'failed', 'discarded', 'cancelled')
   FOR UPDATE
"""
"""Which of the runs just ended are workflow members whose end is not counted yet (locked:
a concurrent transaction that counts one of them waits, then skips it)."""

STATEMENTS = Statements(
    insert=INSERT,
    insert_keyed=INSERT_KEYED,
    new_row=NEW_ROW,
    claim=CLAIM,
    finish=FINISH,
    finish_plain=common.FINISH_PLAIN,
    postpone=common.POSTPONE,
    release=common.RELEASE,
    extend_leases=common.EXTEND_LEASES,
    cancel_requested=common.CANCEL_REQUESTED,
    reclaim_select=RECLAIM_SELECT,
    reclaim_requeue=RECLAIM_REQUEUE,
    reclaim_cancelled=common.RECLAIM_CANCELLED,
    reclaim_failed=common.RECLAIM_FAILED,
    add_rollups=ADD_ROLLUPS,
    rollup_row=common.ROLLUP_ROW,
    throughput=THROUGHPUT,
    task_figures=common.TASK_FIGURES,
    last_failures=common.LAST_FAILURES,
    slot_claim=SLOT_CLAIM,
    slot_mark_fired=common.SLOT_MARK_FIRED,
    slot_take_over=common.SLOT_TAKE_OVER,
    slot_prune=common.SLOT_PRUNE,
    flow_lock=FLOW_LOCK,
    flow_unlock=FLOW_UNLOCK,
)
