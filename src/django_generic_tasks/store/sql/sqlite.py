"""SQLite's statements (3.35 or newer: ``RETURNING``). A single writer: each write runs in
``BEGIN IMMEDIATE`` (``base.StorePart.write_transaction``), so two claims never meet."""

from . import Statements, common

NEW_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"

INSERT = """
INSERT INTO django_generic_tasks_taskrun (id, task_name, params, queue, priority, status,
       attempt, max_attempts, timeout, run_after, created_at, "key", trace_context,
       error_type, error_message, error_traceback)
VALUES {rows}
"""
"""New runs; the columns are ``schema.table().columns`` (a test compares them)."""

INSERT_KEYED = """
INSERT INTO django_generic_tasks_taskrun (id, task_name, params, queue, priority, status,
       attempt, max_attempts, timeout, run_after, created_at, "key", trace_context,
       error_type, error_message, error_traceback)
VALUES {rows}
    ON CONFLICT DO NOTHING RETURNING id
"""

CLAIM = """
UPDATE django_generic_tasks_taskrun
   SET status = 'running', attempt = attempt + 1, worker_id = %s, started_at = %s,
       lease_expires_at = %s
 WHERE id IN (SELECT id FROM django_generic_tasks_taskrun
               WHERE status IN ('scheduled', 'ready') AND run_after <= %s{queues}
               ORDER BY priority DESC, run_after LIMIT %s)
RETURNING id, task_name, params, attempt, max_attempts, priority, queue, trace_context,
          run_after
"""

FINISH = """
UPDATE django_generic_tasks_taskrun
   SET status = CASE WHEN %s IS NULL AND cancel_requested_at IS NOT NULL
                     THEN 'cancelled' ELSE %s END,
       result = %s, error_type = %s, error_message = %s, error_traceback = %s,
       finished_at = COALESCE(%s, CASE WHEN cancel_requested_at IS NOT NULL THEN %s END),
       run_after = COALESCE(%s, run_after), lease_expires_at = NULL,
       max_attempts = max_attempts + %s,
       history = CASE WHEN %s IS NULL THEN history
                 ELSE json_insert(CASE WHEN json_array_length(COALESCE(history, '[]')) >= 10
                                       THEN json_remove(COALESCE(history, '[]'), '$[0]')
                                       ELSE COALESCE(history, '[]') END,
                                  '$[#]', json(%s)) END
 WHERE id = %s AND attempt = %s AND status = 'running' AND worker_id = %s
"""
"""One run's outcome (``executemany`` over the batch). Parameters: finished_at (NULL: a
retry), status, result, error type, message, traceback, finished_at, the attempt's end,
run_after, the attempts added to the budget (1 for a snooze), the history entry twice, id,
attempt, worker id. A retry of a run whose cancel was
requested ends it ``cancelled``; the history keeps the last 10 entries
(``rows.HISTORY_LIMIT``)."""

RECLAIM_REQUEUE = """
UPDATE django_generic_tasks_taskrun
   SET status = %s, run_after = %s, worker_id = NULL, lease_expires_at = NULL,
       history = json_insert(CASE WHEN json_array_length(COALESCE(history, '[]')) >= 10
                                  THEN json_remove(COALESCE(history, '[]'), '$[0]')
                                  ELSE COALESCE(history, '[]') END,
                             '$[#]', json(%s))
 WHERE id = %s AND status = 'running'
"""

WORKFLOW_MEMBERS_ENDED = """
SELECT m.run_id, m.workflow_id, m.position, m.role, r.task_name, r.status, r.error_type,
       r.error_message
  FROM django_generic_tasks_workflowmember m
  JOIN django_generic_tasks_taskrun r ON r.id = m.run_id
 WHERE m.run_id IN ({ids}) AND m.done = FALSE
   AND r.status IN ('succeeded', 'failed', 'discarded', 'cancelled')
"""
"""Which of the runs just ended are workflow members whose end is not counted yet (one
writer at a time: nothing to lock)."""

WORKFLOW_COUNT_RETURNING = """
UPDATE django_generic_tasks_taskworkflow SET done = done + %s, failed = failed + %s
 WHERE id = %s
RETURNING kind, status, spec, total, done, failed
"""
"""``common.WORKFLOW_COUNT`` and ``common.WORKFLOW_READ`` in one statement."""

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
    reclaim_select=common.RECLAIM_SELECT,
    reclaim_requeue=RECLAIM_REQUEUE,
    reclaim_cancelled=common.RECLAIM_CANCELLED,
    reclaim_failed=common.RECLAIM_FAILED,
    add_rollups=common.ADD_ROLLUPS,
    rollup_row=common.ROLLUP_ROW,
    throughput=common.THROUGHPUT,
    task_figures=common.TASK_FIGURES,
    last_failures=common.LAST_FAILURES,
    slot_claim=common.SLOT_CLAIM_ON_CONFLICT,
    slot_mark_fired=common.SLOT_MARK_FIRED,
    slot_take_over=common.SLOT_TAKE_OVER,
    slot_prune=common.SLOT_PRUNE,
)
