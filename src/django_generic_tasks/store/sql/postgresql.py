"""PostgreSQL's statements: ``COPY`` and one-array-per-column inserts, claims with ``FOR UPDATE
SKIP LOCKED`` in one autocommitted statement, a batch of outcomes and its rollups as one
statement over JSON documents, ``NOTIFY`` for cancels and finish notices."""

from . import Statements, common

COPY = """
COPY django_generic_tasks_taskrun (id, task_name, params, queue, priority, status, attempt,
     max_attempts, timeout, run_after, created_at, "key", trace_context, error_type,
     error_message, error_traceback)
FROM STDIN
"""
"""New runs from 50 rows on (``COPY`` binds in C); columns as ``INSERT``."""

NEW_ROW = "(%s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"

INSERT = """
INSERT INTO django_generic_tasks_taskrun (id, task_name, params, queue, priority, status,
       attempt, max_attempts, timeout, run_after, created_at, "key", trace_context,
       error_type, error_message, error_traceback)
VALUES {rows}
"""
"""One new run; the columns are ``schema.table().columns`` (a test compares them)."""

INSERT_KEYED = """
INSERT INTO django_generic_tasks_taskrun (id, task_name, params, queue, priority, status,
       attempt, max_attempts, timeout, run_after, created_at, "key", trace_context,
       error_type, error_message, error_traceback)
VALUES {rows}
    ON CONFLICT DO NOTHING RETURNING id
"""

INSERT_ARRAYS = """
INSERT INTO django_generic_tasks_taskrun (id, task_name, params, queue, priority, status,
       attempt, max_attempts, timeout, run_after, created_at, "key", trace_context,
       error_type, error_message, error_traceback)
SELECT * FROM unnest(%s::uuid[], %s::varchar(255)[], %s::jsonb[], %s::varchar(100)[],
       %s::smallint[], %s::varchar(16)[], %s::integer[], %s::integer[],
       %s::double precision[], %s::timestamp with time zone[],
       %s::timestamp with time zone[], %s::varchar(255)[], %s::varchar(255)[],
       %s::varchar(255)[], %s::text[], %s::text[])
"""
"""Several new runs, one array per column: a handful of parameters however many rows (the
column types are the model's, which a test compares)."""

INSERT_ARRAYS_KEYED = """
INSERT INTO django_generic_tasks_taskrun (id, task_name, params, queue, priority, status,
       attempt, max_attempts, timeout, run_after, created_at, "key", trace_context,
       error_type, error_message, error_traceback)
SELECT * FROM unnest(%s::uuid[], %s::varchar(255)[], %s::jsonb[], %s::varchar(100)[],
       %s::smallint[], %s::varchar(16)[], %s::integer[], %s::integer[],
       %s::double precision[], %s::timestamp with time zone[],
       %s::timestamp with time zone[], %s::varchar(255)[], %s::varchar(255)[],
       %s::varchar(255)[], %s::text[], %s::text[])
    ON CONFLICT DO NOTHING RETURNING id
"""

CLAIM = """
UPDATE django_generic_tasks_taskrun
   SET status = 'running', attempt = attempt + 1, worker_id = %s, started_at = %s,
       lease_expires_at = %s
 WHERE id = ANY(ARRAY(SELECT id FROM django_generic_tasks_taskrun
                      WHERE status IN ('scheduled', 'ready') AND run_after <= %s{queues}
                      ORDER BY priority DESC, run_after LIMIT %s FOR UPDATE SKIP LOCKED))
RETURNING id, task_name, params, attempt, max_attempts, priority, queue, trace_context,
          run_after
"""
"""One autocommitted statement: ``SKIP LOCKED`` keeps concurrent claims apart. The runs are
picked once, as an array (an init plan): as ``id IN (subquery)`` the planner may rescan the
``LIMIT … SKIP LOCKED`` subquery per row of a nested loop (it did, with a drained queue's
statistics), each rescan skipping the rows the last one locked, and claim every due run."""

_FINISH_DONE = """
WITH done AS (
UPDATE django_generic_tasks_taskrun AS t
   SET status = CASE WHEN v.entry IS NOT NULL AND t.cancel_requested_at IS NOT NULL
                     THEN 'cancelled' ELSE v.status END,
       result = v.result::jsonb, error_type = v.error_type,
       error_message = v.error_message, error_traceback = v.error_traceback,
       finished_at = COALESCE(v.finished_at,
                              CASE WHEN v.entry IS NOT NULL
                                    AND t.cancel_requested_at IS NOT NULL
                                   THEN (v.entry->>'ended_at')::timestamptz END),
       run_after = COALESCE(v.run_after, t.run_after), lease_expires_at = NULL,
       max_attempts = t.max_attempts + COALESCE(v.extra, 0),
       history = CASE WHEN v.entry IS NULL THEN t.history
                 ELSE (CASE WHEN jsonb_array_length(COALESCE(t.history, '[]'::jsonb)) >= 10
                            THEN COALESCE(t.history, '[]'::jsonb) - 0
                            ELSE COALESCE(t.history, '[]'::jsonb) END)
                      || jsonb_build_array(v.entry) END
  FROM jsonb_to_recordset(%s::jsonb) AS v(id uuid, attempt integer, status text,
       result text, error_type text, error_message text, error_traceback text,
       finished_at timestamptz, run_after timestamptz, entry jsonb, extra integer)
 WHERE t.id = v.id AND t.attempt = v.attempt AND t.status = 'running' AND t.worker_id = %s)
"""

FINISH = _FINISH_DONE + "SELECT 1"
"""A batch of outcomes as one JSON document (one parameter however many runs), then the
worker id. A retry of a run whose cancel was requested ends it ``cancelled``; the history
keeps the last 10 entries (``rows.HISTORY_LIMIT``)."""

_ROLLUPS_FROM_JSON = """
INSERT INTO django_generic_tasks_runrollup AS r (minute, task_name, queue, outcome, runs,
       seconds, d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, last_run_id)
SELECT minute, task_name, queue, outcome, runs, seconds, d0, d1, d2, d3, d4, d5, d6, d7,
       d8, d9, d10, d11, last_run_id
  FROM jsonb_to_recordset(%s::jsonb) AS x(minute bigint, task_name text, queue text,
       outcome text, runs bigint, seconds float8, d0 bigint, d1 bigint, d2 bigint,
       d3 bigint, d4 bigint, d5 bigint, d6 bigint, d7 bigint, d8 bigint, d9 bigint,
       d10 bigint, d11 bigint, last_run_id text)
    ON CONFLICT (minute, task_name, queue, outcome) DO UPDATE
   SET runs = r.runs + EXCLUDED.runs, seconds = r.seconds + EXCLUDED.seconds,
       d0 = r.d0 + EXCLUDED.d0, d1 = r.d1 + EXCLUDED.d1, d2 = r.d2 + EXCLUDED.d2,
       d3 = r.d3 + EXCLUDED.d3, d4 = r.d4 + EXCLUDED.d4, d5 = r.d5 + EXCLUDED.d5,
       d6 = r.d6 + EXCLUDED.d6, d7 = r.d7 + EXCLUDED.d7, d8 = r.d8 + EXCLUDED.d8,
       d9 = r.d9 + EXCLUDED.d9, d10 = r.d10 + EXCLUDED.d10, d11 = r.d11 + EXCLUDED.d11,
       last_run_id = EXCLUDED.last_run_id
"""
"""A batch's rollup rows (one JSON document) added to the stored counts: the tail both
finish statements with rollups share."""

FINISH_WITH_ROLLUPS = _FINISH_DONE + "\n" + _ROLLUPS_FROM_JSON
"""``FINISH`` and the batch's rollup rows (a second, small JSON document) in one statement."""

_OUTCOMES = """
WITH v AS (
SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v(id uuid, attempt integer, status text,
       result text, error_type text, error_message text, error_traceback text,
       finished_at timestamptz, run_after timestamptz, entry jsonb, extra integer)),"""

_AHEAD = """
need AS (
SELECT m.workflow_id, count(*) FILTER (WHERE m.role = 'member') AS n,
       bool_or(m.role <> 'member') AS callback
  FROM django_generic_tasks_workflowmember m JOIN v ON m.run_id = v.id
 WHERE NOT m.done
 GROUP BY m.workflow_id),
ahead AS (
SELECT w.id, w.kind, w.status, w.total, w.done FROM django_generic_tasks_taskworkflow w
 WHERE w.id IN (SELECT workflow_id FROM need)
 ORDER BY w.id FOR UPDATE),
go AS (
SELECT NOT EXISTS (
       SELECT 1 FROM ahead JOIN need ON need.workflow_id = ahead.id
        WHERE ahead.status = 'running'
          AND (need.callback OR ahead.kind = 'chain'
               OR (ahead.total IS NOT NULL AND ahead.done + need.n >= ahead.total))) AS ok),"""

_DONE = """
done AS (
UPDATE django_generic_tasks_taskrun AS t
   SET status = CASE WHEN v.entry IS NOT NULL AND t.cancel_requested_at IS NOT NULL
                     THEN 'cancelled' ELSE v.status END,
       result = v.result::jsonb, error_type = v.error_type,
       error_message = v.error_message, error_traceback = v.error_traceback,
       finished_at = COALESCE(v.finished_at,
                              CASE WHEN v.entry IS NOT NULL
                                    AND t.cancel_requested_at IS NOT NULL
                                   THEN (v.entry->>'ended_at')::timestamptz END),
       run_after = COALESCE(v.run_after, t.run_after), lease_expires_at = NULL,
       max_attempts = t.max_attempts + COALESCE(v.extra, 0),
       history = CASE WHEN v.entry IS NULL THEN t.history
                 ELSE (CASE WHEN jsonb_array_length(COALESCE(t.history, '[]'::jsonb)) >= 10
                            THEN COALESCE(t.history, '[]'::jsonb) - 0
                            ELSE COALESCE(t.history, '[]'::jsonb) END)
                      || jsonb_build_array(v.entry) END
  FROM v
 WHERE t.id = v.id AND t.attempt = v.attempt AND t.status = 'running' AND t.worker_id = %s{go}
{returning})"""

_RETURNING = "RETURNING t.id, t.status, t.task_name, t.error_type, t.error_message, t.result"

_FLIPPED_COUNTED = """,
flipped AS (
UPDATE django_generic_tasks_workflowmember AS m SET done = TRUE
  FROM done
 WHERE m.run_id = done.id AND NOT m.done{any}
   AND done.status IN ('succeeded', 'failed', 'discarded', 'cancelled')
RETURNING m.run_id, m.workflow_id, m.position, m.role, {returned}done.status),
locked AS (
SELECT w.id FROM django_generic_tasks_taskworkflow w
 WHERE w.id IN (SELECT workflow_id FROM flipped)
 ORDER BY w.id FOR UPDATE),
counted AS (
UPDATE django_generic_tasks_taskworkflow AS w
   SET done = w.done + c.n, failed = w.failed + c.f
  FROM (SELECT workflow_id, count(*) FILTER (WHERE role = 'member') AS n,
               count(*) FILTER (WHERE role = 'member' AND status <> 'succeeded') AS f
          FROM flipped GROUP BY workflow_id) AS c
  JOIN locked ON locked.id = c.workflow_id
 WHERE w.id = c.workflow_id
RETURNING w.id, w.kind, w.status, w.spec, w.total, w.done, w.failed)"""

_ROLLED = (
    ",\nrolled AS ("
    + _ROLLUPS_FROM_JSON.replace(
        "\n    ON CONFLICT", "\n WHERE (SELECT ok FROM go)\n    ON CONFLICT"
    ).rstrip()
    + "\nRETURNING 1)"
)

_DONE_UNLESS_MEMBERS = (
    _OUTCOMES
    + """
wf AS (
SELECT EXISTS (SELECT 1 FROM django_generic_tasks_workflowmember m JOIN v ON m.run_id = v.id
                WHERE NOT m.done) AS members),"""
    + _DONE.replace("{go}", "\n   AND NOT (SELECT members FROM wf)")
)
"""The outcomes written unless a run of the batch is an uncounted workflow member
(``{returning}`` open)."""

FINISH_UNLESS_MEMBERS = _DONE_UNLESS_MEMBERS.format(returning="") + "\nSELECT members FROM wf"
"""``FINISH``, unless a run of the batch is a workflow member whose end is not counted yet:
then nothing is written and it answers true (``FINISH_COUNTING`` writes the batch). The
statement of batches while no member was seen lately: it plans in half the time of
``FINISH_COUNTING``."""

FINISH_WITH_ROLLUPS_UNLESS_MEMBERS = (
    FINISH_UNLESS_MEMBERS.removesuffix("\nSELECT members FROM wf")
    + _ROLLED.replace("(SELECT ok FROM go)", "NOT (SELECT members FROM wf)")
    + "\nSELECT members FROM wf"
)
"""``FINISH_UNLESS_MEMBERS`` with the batch's rollup rows (written only when it writes)."""

FINISH_COUNTING = (
    _OUTCOMES
    + _AHEAD
    + _DONE.format(go="\n   AND (SELECT ok FROM go)", returning="RETURNING t.id, t.status")
    + _FLIPPED_COUNTED.format(any=" AND EXISTS (SELECT 1 FROM need)", returned="")
    + "\nSELECT ok FROM go"
)
"""``FINISH`` that also counts the batch's workflow members done, in their workflows' rows,
when none of them makes its workflow go on (a chain's step, a callback, a group's or closed
batch's last member): then one autocommitted statement ends the runs and counts them, and
answers true. Otherwise it writes nothing and answers false: the batch is written again in
one transaction with what its workflows start next (``FINISH_ADVANCING``). The workflows'
rows are locked in id order before the decision, so two workers' last members are never both
taken for not-last."""

FINISH_WITH_ROLLUPS_COUNTING = (
    FINISH_COUNTING.removesuffix("\nSELECT ok FROM go") + _ROLLED + "\nSELECT ok FROM go"
)
"""``FINISH_COUNTING`` with the batch's rollup rows (written only when it writes)."""

FINISH_ADVANCING = (
    _OUTCOMES
    + _DONE.format(go="", returning=_RETURNING)
    + _FLIPPED_COUNTED.format(
        any="", returned="done.task_name, done.error_type, done.error_message, done.result, "
    )
    + """
SELECT f.run_id, f.workflow_id, f.position, f.role, f.task_name, f.status, f.error_type,
       f.error_message, f.result, c.kind, c.status, c.spec, c.total, c.done, c.failed
  FROM flipped f JOIN counted c ON c.id = f.workflow_id"""
)
"""``FINISH`` (run inside the workflows' transaction) that also counts the batch's workflow
members done and returns them with their results and their workflows' rows as counted:
``WorkflowBook.members_counted`` only decides and writes what follows."""

FINISH_WITH_ROLLUPS_ADVANCING = FINISH_ADVANCING.replace(
    "\nSELECT f.run_id",
    _ROLLED.replace("\n WHERE (SELECT ok FROM go)", "") + "\nSELECT f.run_id",
)
"""``FINISH_ADVANCING`` with the batch's rollup rows."""

INSERT_MEMBER_RUN = (
    "WITH run AS ("
    + INSERT.format(rows=NEW_ROW).strip()
    + """
RETURNING id)
INSERT INTO django_generic_tasks_workflowmember (run_id, workflow_id, position, role, done)
SELECT id, %s, %s, %s, FALSE FROM run"""
)
"""A workflow's next run (a chain's step, a group's callback) and its member row in one
statement: ``INSERT``'s columns, then the workflow id, position and role."""

RECLAIM_SELECT = common.RECLAIM_SELECT + " FOR UPDATE SKIP LOCKED"
"""Skips the rows another reaper holds."""

RECLAIM_REQUEUE = """
UPDATE django_generic_tasks_taskrun
   SET status = %s, run_after = %s, worker_id = NULL, lease_expires_at = NULL,
       history = (CASE WHEN jsonb_array_length(COALESCE(history, '[]'::jsonb)) >= 10
                       THEN COALESCE(history, '[]'::jsonb) - 0
                       ELSE COALESCE(history, '[]'::jsonb) END)
                 || jsonb_build_array(%s::jsonb)
 WHERE id = %s AND status = 'running'
"""

ANNOUNCE_CANCEL = """
SELECT pg_notify(%s, worker_id || ' ' || id::text) FROM django_generic_tasks_taskrun
 WHERE id = ANY(%s::uuid[]) AND status = 'running' AND worker_id IS NOT NULL
"""
"""One ``NOTIFY`` per run on the cancel channel, to the worker holding it (sent at commit)."""

MARK_AWAITED = """
WITH marked AS (UPDATE django_generic_tasks_taskrun SET awaited_at = now()
                 WHERE id = %s AND awaited_at IS NULL RETURNING status)
SELECT pg_notify(%s, '') FROM marked WHERE status = 'ready'
"""
"""Ask for a finish notice (migration 0009's trigger sends it). The mark locks the row for a
moment and a claim meanwhile skips it: when the run is still due, the workers are woken
again."""

FLOW_LOCK = "SELECT pg_advisory_xact_lock(7046414172)"
"""Claims through the limits, one at a time across every worker (until the commit): each
counts the running runs that the ones before it committed. Only ``flow.FlowControl.locked()``
(the generic path) takes it; PostgreSQL's own claim locks per key (``FLOW_LOCK_KEYS``)."""

KEY_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 7046414172))"
"""One concurrency key locked until the commit, as ``FLOW_LOCK_KEYS`` locks it (a direct HTTP
call's admission)."""

RATE_LOCK_KEYS = """
SELECT pg_advisory_xact_lock(h)
  FROM (SELECT DISTINCT hashtextextended(k, 7046414173) AS h FROM unnest(%s::text[]) AS k
         ORDER BY h) ordered
"""
"""The rate limit keys about to be given turns, locked (one transaction-level advisory lock per
key, in one order everywhere) until the commit: concurrent claims give a key's turns one
after the other, each reading the bucket the one before it wrote."""

FLOW_LOCK_KEYS = """
WITH RECURSIVE keys(k) AS (
    (SELECT concurrency_key FROM django_generic_tasks_taskrun
      WHERE concurrency_key IS NOT NULL AND status IN ('scheduled', 'ready')
      ORDER BY concurrency_key LIMIT 1)
  UNION ALL
    SELECT (SELECT concurrency_key FROM django_generic_tasks_taskrun
             WHERE concurrency_key IS NOT NULL AND concurrency_key > keys.k
               AND status IN ('scheduled', 'ready')
             ORDER BY concurrency_key LIMIT 1)
      FROM keys WHERE keys.k IS NOT NULL),
wanted AS MATERIALIZED (
  SELECT k, hashtextextended(k, 7046414172) AS h FROM keys
   WHERE k IS NOT NULL AND %s > 0
     AND EXISTS (SELECT 1 FROM django_generic_tasks_taskrun
                  WHERE concurrency_key = keys.k AND status IN ('scheduled', 'ready')
                    AND run_after <= %s{queues}{rated})
     AND (SELECT count(*) FROM django_generic_tasks_taskrun
           WHERE concurrency_key = keys.k AND status = 'running')
       < (SELECT concurrency_limit FROM django_generic_tasks_taskrun
           WHERE concurrency_key = keys.k AND status IN ('scheduled', 'ready')
           ORDER BY priority DESC, run_after LIMIT 1)
   ORDER BY h),
locked AS MATERIALIZED (SELECT k, pg_advisory_xact_lock(h)::text AS l FROM wanted)
SELECT k FROM locked
 UNION ALL
SELECT NULL WHERE %s AND EXISTS (
  SELECT 1 FROM django_generic_tasks_taskrun
   WHERE status IN ('scheduled', 'ready') AND run_after <= %s AND rate_key IS NOT NULL
     AND (rate_turn IS NULL OR rate_turn <> attempt + 1){queues})
"""
"""The concurrency keys a claim may admit runs of, locked until its commit (a
transaction-level advisory lock per key, taken in one order everywhere: no deadlock), and a
last row of ``NULL`` when due rate-limited runs wait for a turn (``rate_turns()``).

The keys come from a loose scan of ``dgt_taskrun_flow_waiting`` (one probe per key with
waiting runs, however many runs wait); a key is kept when it has a due run this claim may
take and, as this statement sees it, a free slot. Concurrent claims of one key queue here
for a moment; claims of other keys, and of runs without limits, do not wait. The free slots
are counted again by ``CLAIM_LIMITED``, which starts after the locks are held and so sees
every claim of those keys committed before. Parameters: the claim's share for limited runs,
now, the queue conditions'; whether rate-limited runs may wait, now, the queue
conditions'."""

CLAIM_LIMITED = """
WITH unlimited AS MATERIALIZED (
  SELECT id, priority, run_after FROM django_generic_tasks_taskrun
   WHERE status IN ('scheduled', 'ready') AND run_after <= %s AND concurrency_key IS NULL
         {queues}{rated}
   ORDER BY priority DESC, run_after LIMIT %s FOR UPDATE SKIP LOCKED),
limited AS MATERIALIZED (
  SELECT w.id, w.priority, w.run_after FROM unnest(%s::text[]) AS k(ck)
   CROSS JOIN LATERAL (
     SELECT (SELECT concurrency_limit FROM django_generic_tasks_taskrun
              WHERE concurrency_key = k.ck AND status IN ('scheduled', 'ready')
              ORDER BY priority DESC, run_after LIMIT 1)
          - (SELECT count(*) FROM django_generic_tasks_taskrun
              WHERE concurrency_key = k.ck AND status = 'running') AS free) f
   CROSS JOIN LATERAL (
     SELECT id, priority, run_after FROM django_generic_tasks_taskrun
      WHERE concurrency_key = k.ck AND status IN ('scheduled', 'ready') AND run_after <= %s
            {queues}{rated}
      ORDER BY priority DESC, run_after LIMIT GREATEST(0, LEAST(%s, f.free))
        FOR UPDATE SKIP LOCKED) w
   ORDER BY w.priority DESC, w.run_after LIMIT %s),
picked AS MATERIALIZED (
  SELECT id FROM (SELECT * FROM unlimited UNION ALL SELECT * FROM limited) c
   ORDER BY priority DESC, run_after LIMIT %s)
UPDATE django_generic_tasks_taskrun
   SET status = 'running', attempt = attempt + 1, worker_id = %s, started_at = %s,
       lease_expires_at = %s
 WHERE id IN (SELECT id FROM picked)
RETURNING id, task_name, params, attempt, max_attempts, priority, queue, trace_context,
          run_after
"""
"""A claim through the limits, under the locks of ``FLOW_LOCK_KEYS``: due runs without a
concurrency key, and per locked key its first due runs (priority, then due time; through
``dgt_taskrun_flow_waiting``) up to its free slots (the limit of its first waiting run less
its running runs) and at most the claim's share for limited runs, all in the claim's order
up to its size. Parameters: now, the queue conditions', the size; the keys, now, the queue
conditions', the share (twice), the size; the worker, now, the lease's end. ``{rated}``:
``RATED`` when rate-limited runs may wait (only runs whose turn came are claimed)."""

RATED = " AND (rate_key IS NULL OR rate_turn = attempt + 1)"

FINISH_AND_CLAIM_NEXT = (
    _DONE_UNLESS_MEMBERS.format(returning="RETURNING t.concurrency_key")
    + """,
nxt AS MATERIALIZED (
SELECT id FROM django_generic_tasks_taskrun
 WHERE concurrency_key = (SELECT concurrency_key FROM done LIMIT 1)
   AND status IN ('scheduled', 'ready') AND run_after <= %s{queues}{rated}
   AND concurrency_limit >= (SELECT count(*) FROM django_generic_tasks_taskrun
                              WHERE concurrency_key = (SELECT concurrency_key FROM done LIMIT 1)
                                AND status = 'running')
 ORDER BY priority DESC, run_after LIMIT 1 FOR UPDATE SKIP LOCKED),
claimed AS (
UPDATE django_generic_tasks_taskrun
   SET status = 'running', attempt = attempt + 1, worker_id = %s, started_at = %s,
       lease_expires_at = %s
 WHERE id IN (SELECT id FROM nxt)
RETURNING id, task_name, params, attempt, max_attempts, priority, queue, trace_context,
          run_after)
SELECT (SELECT members FROM wf), c.* FROM (SELECT 1) AS one LEFT JOIN claimed c ON TRUE
"""
)
"""A run's outcome written (as ``FINISH``) and, in the same autocommitted statement, its
concurrency slot handed to the next due run of its key (priority, then due time), claimed by
the same worker: one run leaves the key's running runs as another enters, so their count
never grows and no lock is needed (a key whose runs now have a lower limit than its running
runs, after a deploy, is not handed on until it is under it again). Nothing is written when
the run is a workflow member whose end is not counted yet (the first column answers true;
``FINISH``'s transaction writes it then). Parameters: the outcome (one JSON record), the
worker; now, the queue conditions'; the worker, now, the lease's end. One row: members,
then the claimed run's columns (``NULL`` when none)."""

WORKFLOW_MEMBERS_ENDED = """
SELECT m.run_id, m.workflow_id, m.position, m.role, r.task_name, r.status, r.error_type,
       r.error_message
  FROM django_generic_tasks_workflowmember m
  JOIN django_generic_tasks_taskrun r ON r.id = m.run_id
 WHERE m.run_id IN ({ids}) AND m.done = FALSE
   AND r.status IN ('succeeded', 'failed', 'discarded', 'cancelled')
   FOR UPDATE OF m
"""
"""Which of the runs just ended are workflow members whose end is not counted yet (locked:
a concurrent transaction that counts one of them waits, then skips it)."""

WORKFLOW_MEMBER_RESULTS = """
SELECT COALESCE(jsonb_agg(jsonb_build_array(r.task_name, r.status, r.result, r.error_type,
                                            r.error_message) ORDER BY m.position), '[]')
  FROM django_generic_tasks_workflowmember m
  LEFT JOIN django_generic_tasks_taskrun r ON r.id = m.run_id
 WHERE m.workflow_id = %s AND m.role = 'member'
"""
"""``common.WORKFLOW_MEMBER_RESULTS`` as one JSON document (one row to fetch and one parse,
however many members: a 10,000-member callback's params are read in a few milliseconds)."""

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
    reclaim_select=RECLAIM_SELECT,
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
    announce_cancel=ANNOUNCE_CANCEL,
    mark_awaited=MARK_AWAITED,
    flow_lock=FLOW_LOCK,
)
