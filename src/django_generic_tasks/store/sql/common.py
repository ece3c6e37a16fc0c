"""The statements PostgreSQL, SQLite, MariaDB and MySQL all accept as written here, and the
few only PostgreSQL and SQLite share (named for it: ``..._ON_CONFLICT``)."""

FINISH_PLAIN = """
UPDATE django_generic_tasks_taskrun
   SET status = %s, result = %s, error_type = %s, error_message = %s, error_traceback = %s,
       finished_at = %s, run_after = COALESCE(%s, run_after), lease_expires_at = NULL
 WHERE id = %s AND attempt = %s AND status = 'running' AND worker_id = %s
"""

POSTPONE = """
UPDATE django_generic_tasks_taskrun
   SET status = CASE WHEN cancel_requested_at IS NULL THEN 'scheduled' ELSE 'cancelled' END,
       attempt = attempt - 1, run_after = %s, worker_id = NULL, started_at = NULL,
       finished_at = CASE WHEN cancel_requested_at IS NULL THEN NULL ELSE %s END,
       lease_expires_at = NULL
 WHERE id = %s AND status = 'running' AND worker_id = %s
"""

RELEASE = """
UPDATE django_generic_tasks_taskrun
   SET status = CASE WHEN cancel_requested_at IS NULL THEN 'ready' ELSE 'cancelled' END,
       attempt = attempt - 1, worker_id = NULL, started_at = NULL,
       finished_at = CASE WHEN cancel_requested_at IS NULL THEN NULL ELSE %s END,
       lease_expires_at = NULL
 WHERE id IN ({ids}) AND status = 'running' AND worker_id = %s
"""

EXTEND_LEASES = """
UPDATE django_generic_tasks_taskrun SET lease_expires_at = %s
 WHERE status = 'running' AND worker_id = %s
"""

CANCEL_REQUESTED = """
SELECT id FROM django_generic_tasks_taskrun
 WHERE status = 'running' AND worker_id = %s AND cancel_requested_at IS NOT NULL
"""

RECLAIM_SELECT = """
SELECT id, task_name, attempt, max_attempts, worker_id, started_at, lease_expires_at,
       cancel_requested_at
  FROM django_generic_tasks_taskrun
 WHERE status = 'running' AND lease_expires_at < %s
"""

RECLAIM_CANCELLED = """
UPDATE django_generic_tasks_taskrun
   SET status = 'cancelled', finished_at = %s, lease_expires_at = NULL
 WHERE id IN ({ids}) AND status = 'running'
"""

RECLAIM_FAILED = """
UPDATE django_generic_tasks_taskrun
   SET status = 'failed', finished_at = %s, lease_expires_at = NULL,
       error_type = %s, error_message = %s, error_traceback = ''
 WHERE id IN ({ids}) AND status = 'running'
"""

ROLLUP_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"

ADD_ROLLUPS = """
INSERT INTO django_generic_tasks_runrollup (minute, task_name, queue, outcome, runs, seconds,
       d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, last_run_id)
VALUES {rows}
    ON CONFLICT (minute, task_name, queue, outcome) DO UPDATE
   SET runs = django_generic_tasks_runrollup.runs + excluded.runs,
       seconds = django_generic_tasks_runrollup.seconds + excluded.seconds,
       d0 = django_generic_tasks_runrollup.d0 + excluded.d0,
       d1 = django_generic_tasks_runrollup.d1 + excluded.d1,
       d2 = django_generic_tasks_runrollup.d2 + excluded.d2,
       d3 = django_generic_tasks_runrollup.d3 + excluded.d3,
       d4 = django_generic_tasks_runrollup.d4 + excluded.d4,
       d5 = django_generic_tasks_runrollup.d5 + excluded.d5,
       d6 = django_generic_tasks_runrollup.d6 + excluded.d6,
       d7 = django_generic_tasks_runrollup.d7 + excluded.d7,
       d8 = django_generic_tasks_runrollup.d8 + excluded.d8,
       d9 = django_generic_tasks_runrollup.d9 + excluded.d9,
       d10 = django_generic_tasks_runrollup.d10 + excluded.d10,
       d11 = django_generic_tasks_runrollup.d11 + excluded.d11,
       last_run_id = excluded.last_run_id
"""
"""PostgreSQL and SQLite (``ON CONFLICT``); MariaDB/MySQL write their own."""

THROUGHPUT = """
SELECT minute / {bucket} AS b, outcome, SUM(runs)
  FROM django_generic_tasks_runrollup WHERE minute >= %s GROUP BY b, outcome
"""
"""PostgreSQL and SQLite (integer ``/``); MariaDB/MySQL write ``DIV``."""

TASK_FIGURES = """
SELECT task_name, outcome, SUM(runs), SUM(seconds), SUM(d0), SUM(d1), SUM(d2), SUM(d3),
       SUM(d4), SUM(d5), SUM(d6), SUM(d7), SUM(d8), SUM(d9), SUM(d10), SUM(d11)
  FROM django_generic_tasks_runrollup WHERE minute >= %s GROUP BY task_name, outcome
"""

LAST_FAILURES = """
SELECT last_run_id FROM django_generic_tasks_runrollup
 WHERE minute >= %s AND outcome IN ('failed', 'discarded') ORDER BY minute DESC LIMIT %s
"""

SLOT_COLUMNS = "schedule_id, slot_at, run_id, claimed_at, fired_at, lease_until, owner"

SLOT_CLAIM_ON_CONFLICT = f"""
INSERT INTO django_generic_tasks_scheduleslot ({SLOT_COLUMNS})
VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (schedule_id, slot_at) DO NOTHING
"""
"""PostgreSQL and SQLite: a taken slot is skipped (the row is unique on schedule and time)."""

SLOT_MARK_FIRED = """
UPDATE django_generic_tasks_scheduleslot SET fired_at = %s, lease_until = NULL
 WHERE schedule_id = %s AND slot_at = %s
"""

SLOT_TAKE_OVER = """
UPDATE django_generic_tasks_scheduleslot SET lease_until = %s, owner = %s
 WHERE id = %s AND fired_at IS NULL AND lease_until < %s
"""

SLOT_PRUNE = """
DELETE FROM django_generic_tasks_scheduleslot
 WHERE schedule_id = %s AND slot_at < %s AND fired_at IS NOT NULL
"""
SET_FLOW = """
UPDATE django_generic_tasks_taskrun
   SET concurrency_key = %s, concurrency_limit = %s, rate_key = %s, rate_interval = %s
 WHERE id = %s
"""
"""A new run's limits (``store.flow``), in the transaction of its insert."""

RATE_CANDIDATES = """
SELECT id, rate_key, rate_interval FROM django_generic_tasks_taskrun
 WHERE status IN ('scheduled', 'ready') AND run_after <= %s AND rate_key IS NOT NULL
   AND (rate_turn IS NULL OR rate_turn <> attempt + 1){queues}
 ORDER BY priority DESC, run_after LIMIT %s
"""
"""Due rate-limited runs whose next attempt has no start time from the rate limit yet."""

RATE_TURN = """
UPDATE django_generic_tasks_taskrun
   SET status = %s, run_after = %s, rate_turn = attempt + 1
 WHERE id = %s
"""
"""A rate-limited run's next attempt given its start time (``scheduled`` until then)."""

CONCURRENCY_ELIGIBLE = """
SELECT c.id FROM (
  SELECT id, concurrency_key, concurrency_limit, priority, run_after,
         ROW_NUMBER() OVER (PARTITION BY concurrency_key
                            ORDER BY priority DESC, run_after, id) AS n
    FROM django_generic_tasks_taskrun
   WHERE status IN ('scheduled', 'ready') AND run_after <= %s
     AND concurrency_key IS NOT NULL{queues}
) c
  LEFT JOIN (SELECT concurrency_key, COUNT(*) AS running FROM django_generic_tasks_taskrun
              WHERE concurrency_key IS NOT NULL AND status = 'running'
              GROUP BY concurrency_key) r ON r.concurrency_key = c.concurrency_key
 WHERE c.n <= c.concurrency_limit AND c.n <= c.concurrency_limit - COALESCE(r.running, 0)
 ORDER BY c.priority DESC, c.run_after LIMIT %s
"""
"""The due runs with a concurrency key that may start now: per key, the first ones (priority,
then due time) up to its free slots (its limit less its running runs). Read under the flow
lock, so no other claim changes the counts meanwhile."""

DIRECT_RUNNING = """
SELECT COUNT(*) FROM django_generic_tasks_taskrun
 WHERE concurrency_key = %s AND status = 'running'
"""
"""The running runs of one concurrency key (a direct HTTP call's admission, under the key's
lock)."""

DIRECT_HOLD = """
UPDATE django_generic_tasks_taskrun
   SET status = 'running', attempt = 1, worker_id = %s, started_at = %s, lease_expires_at = %s,
       concurrency_key = %s, concurrency_limit = %s
 WHERE id = %s
"""
"""The row a direct HTTP call holds its slot with, made running (inserted just before)."""

DIRECT_RELEASE = """
DELETE FROM django_generic_tasks_taskrun WHERE id = %s AND status = 'running' AND worker_id = %s
"""
"""A direct HTTP call's slot given back (unless the reaper took it: its lease expired)."""

FLOW_RUNNING = """
SELECT concurrency_key, COUNT(*) FROM django_generic_tasks_taskrun
 WHERE concurrency_key IS NOT NULL AND status = 'running' GROUP BY concurrency_key
"""
"""Running runs per concurrency key (the dashboard, the admin's waiting reasons)."""

FLOW_WAITING_SLOTS = """
SELECT concurrency_key, MAX(concurrency_limit), COUNT(*) FROM django_generic_tasks_taskrun
 WHERE status IN ('scheduled', 'ready') AND run_after <= %s AND concurrency_key IS NOT NULL
 GROUP BY concurrency_key
"""
"""Due runs with a concurrency key, per key (those over the limit wait for a slot)."""

FLOW_WAITING_RATES = """
SELECT rate_key, COUNT(*), MAX(run_after) FROM django_generic_tasks_taskrun
 WHERE status = 'scheduled' AND run_after > %s AND rate_key IS NOT NULL
   AND rate_turn = attempt + 1
 GROUP BY rate_key
"""
"""Runs waiting for their rate limit's turn, per key, and the last turn given."""

FLOW_WAITING_RETRY_AFTER = """
SELECT task_name, COUNT(*), MAX(run_after) FROM django_generic_tasks_taskrun
 WHERE status = 'scheduled' AND run_after > %s
   AND error_type = 'django_generic_tasks.exceptions.RetryAfter'
 GROUP BY task_name
"""
"""Runs waiting for the time a ``RetryAfter`` asked for, per task."""
# -- workflows (store.workflows): the same text on every dialect ---------------------------

WORKFLOW_INSERT = """
INSERT INTO django_generic_tasks_taskworkflow (id, kind, status, spec, total, done, failed,
       error_type, error_message, created_at)
VALUES (%s, %s, 'running', %s, %s, 0, 0, '', '', %s)
"""

WORKFLOW_MEMBER_ROW = "(%s, %s, %s, %s, FALSE)"

WORKFLOW_MEMBERS_INSERT = """
INSERT INTO django_generic_tasks_workflowmember (run_id, workflow_id, position, role, done)
VALUES {rows}
"""

WORKFLOW_MEMBERS_DONE = """
UPDATE django_generic_tasks_workflowmember SET done = TRUE
 WHERE run_id IN ({ids}) AND done = FALSE
"""
"""Members' ends counted, once: the rows ``WORKFLOW_MEMBERS_ENDED`` found (and locked)."""

WORKFLOW_COUNT = """
UPDATE django_generic_tasks_taskworkflow SET done = done + %s, failed = failed + %s
 WHERE id = %s
"""
"""Members ended (once per workflow and transaction: a row updated many times in one
transaction grows a chain of versions on PostgreSQL). It locks the workflow's row until the
transaction ends, so concurrent transactions count one after the other."""

WORKFLOW_READ = """
SELECT kind, status, spec, total, done, failed FROM django_generic_tasks_taskworkflow
 WHERE id = %s
"""

WORKFLOW_MEMBER_RESULTS = """
SELECT r.task_name, r.status, r.result, r.error_type, r.error_message
  FROM django_generic_tasks_workflowmember m
  LEFT JOIN django_generic_tasks_taskrun r ON r.id = m.run_id
 WHERE m.workflow_id = %s AND m.role = 'member'
 ORDER BY m.position
"""
"""How each member of a workflow ended, in member order, in one read (through the index on
(workflow, position)); a pruned run's row has no task name."""

WORKFLOW_STATUS_COUNTS = """
SELECT status, COUNT(*) FROM django_generic_tasks_taskworkflow
 WHERE status = 'running' OR finished_at >= %s
 GROUP BY status
"""
"""Workflows by status: the running ones and those that ended since a moment."""

WORKFLOW_CALLBACK = """
UPDATE django_generic_tasks_taskworkflow SET callback_run = %s
 WHERE id = %s AND callback_run IS NULL AND status = 'running'
"""
"""The callback's run noted, once (a second attempt changes nothing)."""

WORKFLOW_END = """
UPDATE django_generic_tasks_taskworkflow
   SET status = %s, finished_at = %s, failed_position = %s, error_type = %s, error_message = %s
 WHERE id = %s AND status = 'running'
"""

WORKFLOW_CLOSE = """
UPDATE django_generic_tasks_taskworkflow SET total = %s WHERE id = %s AND total IS NULL
"""
"""A batch's block ended: how many runs joined it (it locks the row, as a count does)."""
