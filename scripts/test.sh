#!/usr/bin/env bash
# Sets everything up and runs the checks CI runs: lint, types, the docs (strict build), the
# release (sdist + wheel, twine check, the wheel's contents, the example project on the installed
# wheel), and the test matrix:
#
# | pass            | Python | Django | django-ninja / Pydantic | database   | tests                   |
# | --------------- | ------ | ------ | ----------------------- | ---------- | ----------------------- |
# | main (coverage) | 3.13   | 6.1    | newest / newest         | SQLite     | whole suite + typing    |
# | postgresql      | 3.13   | 6.1    | newest / newest         | PostgreSQL | the database-facing     |
# |                 |        |        |                         |            | unit, contract, process |
# | mariadb         | 3.13   | 6.1    | newest / newest         | MariaDB    | the same                |
# | django52        | 3.13   | 5.2    | newest / newest         | SQLite     | unit + contract + the   |
# |                 |        |        |                         |            | Django-bound processes  |
# | flakes          | 3.12   | 6.1    | newest / newest         | SQLite,    | the concurrency tests,  |
# |                 |        |        |                         | PostgreSQL | 3 and 2 rounds (flakes) |
# | lowest          | 3.12   | 6.0 *  | lowest / lowest allowed | SQLite     | unit + contract + HTTP  |
# (* Django 6.0 is covered here, pinned, with the lowest libraries. Python 3.14 is not
# installable here.)
#
# On two cores, three passes at a time: first the in-process suites (unit, contract) of every
# pass (each leaves a core idle a third of the time: its tests wait on threads, timeouts and the
# database), beside the set-up of the other virtualenvs, the release check, the docs build and
# the benchmark smoke run; then, as those end, the suites that spawn processes and servers
# (tests/integration). A process test that fails when another pass shares the machine has a
# timing assumption a slower machine would break as well (they count events, never sleep a
# fixed time and assume). Each pass has its own log (printed when it ends), its own
# SQLite files and its own database.
# Usage: scripts/test.sh [extra pytest args, given to every pass]
# TASKS_CI_POSTGRES_URL / TASKS_CI_MARIADB_NAME pick other databases (several checkouts at once).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_python.sh
source scripts/_services.sh

EXTRAS="dev,oidc,cloudtasks,postgres,celery,docs,release"
ensure_venv .venv "$EXTRAS"
start_services
started=$(date +%s)

echo "==> ruff"
.venv/bin/ruff check src tests example bench docs/hooks.py scripts
.venv/bin/ruff format --check src tests example bench docs/hooks.py scripts
echo "==> mypy --strict"
.venv/bin/mypy

LOGS=$(mktemp -d)
PYTEST_ARGS=("$@")

run_pytest() {  # exit code 5 (no tests collected) is a failure too
  local code=0
  "$@" || code=$?
  if [ "$code" -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi
  [ "$code" -eq 0 ] || exit "$code"
}

lowest() {  # lowest PACKAGE: the lowest version pyproject.toml allows for a dependency
  .venv/bin/python - "$1" <<'PY'
import re, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(next(re.search(r">=\s*([\d.]+)", d).group(1) for d in deps if d.startswith(sys.argv[1] + ">")))
PY
}

# Each pass: a function run in the background with its own log and its own SQLite files.
FAST=(tests/unit tests/contract)
SLOW=(tests/integration)
# On Django 5.2 the process tests that depend on Django's version: its admin (pages, and their
# headers against the stock admin's), the django-tasks backport's worker, the example project,
# and Django's request handling under schemathesis.
# (The worker, scheduler, Celery, Cloud Tasks and OTel process tests do not; they run on the
# newest Django against SQLite, PostgreSQL and MariaDB.)
DJANGO_SENSITIVE=(
  tests/integration/test_admin_headers.py tests/integration/test_admin_page.py
  tests/integration/test_django_tasks_worker.py
  tests/integration/test_example_project.py tests/integration/test_schemathesis.py
)
# On PostgreSQL and MariaDB, the process tests whose outcome depends on the database (workers,
# leases, LISTEN/NOTIFY, the scheduler, outages, the admin's SQL); the others (docs, Cloud
# Tasks emulator, Celery on Redis, the example project's embedded SQLite, schemathesis, page
# layout) run once, in the main pass.
DB_FACING=(
  tests/integration/test_admin_page.py tests/integration/test_async_worker_processes.py
  tests/integration/test_cancel_processes.py
  tests/integration/test_chaos_worker.py tests/integration/test_chaos_workflows.py
  tests/integration/test_connection_loss.py
  tests/integration/test_django_task_processes.py
  tests/integration/test_flow_chaos.py
  tests/integration/test_django_tasks_worker.py tests/integration/test_otel_processes.py
  tests/integration/test_scheduler_processes.py tests/integration/test_wait_processes.py
  tests/integration/test_worker_before_migrate.py tests/integration/test_worker_processes.py
)
PG_URL=${TASKS_CI_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
MARIADB_NAME=${TASKS_CI_MARIADB_NAME:-dgt}

with_postgresql() {  # with_postgresql COMMAND...: run it on PostgreSQL, or say why not
  if pg_available; then
    # The database itself must exist too: the docs page test's server opens it (not test_<name>).
    .venv/bin/python - "$PG_URL" <<'PY'
import sys
from urllib.parse import urlparse

import psycopg

url = urlparse(sys.argv[1])
with psycopg.connect(host=url.hostname, port=url.port or 5432, user=url.username or "postgres",
                     dbname="postgres", autocommit=True) as conn:
    name = url.path.lstrip("/")
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
PY
    DATABASE_URL=$PG_URL "$@"
  elif [ "${CI:-}" = "true" ]; then
    echo "error: PostgreSQL is not reachable on 127.0.0.1:5432 under CI=true" >&2; exit 1
  else
    echo "warning: PostgreSQL not reachable; skipping the PostgreSQL run" >&2
  fi
}
with_mariadb() {  # mysqlclient (the `mysql` extra) builds against libmariadb-dev
  if mariadb_available && [ -f "$LOGS/mysql-ok" ]; then
    # The suite's own database (pytest-django creates test_<name>; worker subprocesses use it).
    .venv/bin/python -c 'import sys, MySQLdb; MySQLdb.connect(host="127.0.0.1", user="root").cursor(
      ).execute(f"CREATE DATABASE IF NOT EXISTS {sys.argv[1]} CHARACTER SET utf8mb4")' \
      "$MARIADB_NAME"
    DATABASE_URL=mysql://root@127.0.0.1:3306/$MARIADB_NAME "$@"
  elif [ "${CI:-}" = "true" ]; then
    echo "error: MariaDB is not reachable on 127.0.0.1:3306 (or mysqlclient did not build)" \
      "under CI=true" >&2
    exit 1
  else
    echo "warning: MariaDB not reachable or mysqlclient not installable; skipping that run" >&2
  fi
}

# The in-process suites. Coverage of the main pass is appended to by its slow half.
# Coverage through sys.monitoring (Python >= 3.12, line coverage): a fraction of the tracer's cost.
export COVERAGE_CORE=sysmon
pass_main() {  # + the typing tests (mypy --strict and pyright over tests/typing/)
  run_pytest .venv/bin/python -m pytest -q --cov --cov-report= "${FAST[@]}" tests/typing \
    "${PYTEST_ARGS[@]}"
}
# On the extra databases only the in-process tests that touch the database (--database-facing,
# tests/conftest.py): pytest-django blocks the others' access, so SQLite's pass already decides them.
pass_postgresql() {
  with_postgresql run_pytest .venv/bin/python -m pytest -q --database-facing "${FAST[@]}" \
    "${PYTEST_ARGS[@]}"
}
pass_mariadb() {
  with_mariadb run_pytest .venv/bin/python -m pytest -q --database-facing "${FAST[@]}" \
    "${PYTEST_ARGS[@]}"
}
pass_django52() {
  run_pytest .venv-django52/bin/python -m pytest -q -p no:cacheprovider "${FAST[@]}" \
    "${PYTEST_ARGS[@]}"
}
pass_flakes() {
  # The flake detector: the tests marked `concurrency` (threads, worker loops, leases, timeouts,
  # LISTEN/NOTIFY; tests/conftest.py lists them) in three fresh sessions on SQLite and two on
  # PostgreSQL; a failure in any round fails the pass, and the report names intermittent ones.
  # On Python 3.12 with the newest Django and libraries (the lowest pass has 3.12 with the lowest).
  .venv-py312/bin/python scripts/flakes.py --count 3 "${PYTEST_ARGS[@]}"
  PG_URL=${PG_URL}_flakes with_postgresql .venv-py312/bin/python scripts/flakes.py \
    --count 2 --database-facing "${PYTEST_ARGS[@]}"
}
pass_lowest() {
  # The lowest django-ninja and Pydantic pyproject.toml allows (the other venvs have the newest):
  # the HTTP layer uses only django-ninja's public API, and these tests hold it to that.
  run_pytest .venv-lowest/bin/python -m pytest -q -p no:cacheprovider "${FAST[@]}" \
    "${PYTEST_ARGS[@]}"
}
pass_docs() {  # in a virtualenv with only the `docs` extra: the docs build needs no other
  echo "==> mkdocs build --strict"
  NO_MKDOCS_2_WARNING=1 .venv-docs/bin/mkdocs build --strict --site-dir "$LOGS/site"
}
pass_bench() {
  .venv/bin/python bench/run.py --quick
}

# The suites that spawn processes and servers.
pass_main_processes() {
  run_pytest .venv/bin/python -m pytest -q --cov --cov-append --cov-report=term \
    --cov-fail-under=90 "${SLOW[@]}" "${PYTEST_ARGS[@]}"
}
pass_postgresql_processes() {
  with_postgresql run_pytest .venv/bin/python -m pytest -q "${DB_FACING[@]}" "${PYTEST_ARGS[@]}"
}
pass_mariadb_processes() {
  with_mariadb run_pytest .venv/bin/python -m pytest -q "${DB_FACING[@]}" "${PYTEST_ARGS[@]}"
}
pass_django52_processes() {
  run_pytest .venv-django52/bin/python -m pytest -q -p no:cacheprovider "${DJANGO_SENSITIVE[@]}" \
    "${PYTEST_ARGS[@]}"
}
pass_lowest_http() {
  run_pytest .venv-lowest/bin/python -m pytest -q -p no:cacheprovider \
    tests/integration/test_schemathesis.py tests/integration/test_docs_page.py "${PYTEST_ARGS[@]}"
}

# The other virtualenvs and the release check, one after another (they write into the source
# tree: egg-info, build/), beside the first test pass.
pass_setup_matrix() {
  ensure_venv .venv-docs docs
  ensure_venv .venv-django52 "$EXTRAS" "django>=5.2,<5.3"
  PYTHON=python3.12 ensure_venv .venv-py312 "$EXTRAS"
  PYTHON=python3.12 ensure_venv .venv-lowest "$EXTRAS" \
    "django-ninja==$(lowest django-ninja)" "pydantic==$(lowest pydantic)" "django>=6.0,<6.1"
  .venv-lowest/bin/python -c 'import sys; from importlib.metadata import version as v; print(
    "    lowest:", "Python", sys.version.split()[0], "django-ninja", v("django-ninja"),
    "pydantic", v("pydantic"), "Django", v("django"))'
  bash scripts/check_release.sh
}

# Before any pass starts: reinstalling into .venv under a running pass could break its imports.
if mariadb_available && .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e ".[$EXTRAS,mysql]"; then
  touch "$LOGS/mysql-ok"
fi

declare -A PID=() START=()
failed=()
finish() {  # finish NAME: wait for the pass, print its log and time
  local name=$1 code=0
  wait "${PID[$name]}" || code=$?
  echo "==> [$name] $( [ "$code" -eq 0 ] && echo passed || echo "FAILED ($code)" )" \
    "in $(( $(date +%s) - START[$name] )) s"
  sed "s/^/[$name] /" "$LOGS/$name.log"
  [ "$code" -eq 0 ] || failed+=("$name")
  unset "PID[$name]"
}
run_phase() {  # run_phase SLOTS NAME...: the passes, at most SLOTS at a time
  local slots=$1 name running; shift
  for name in "$@"; do
    # Passes that need the matrix virtualenvs wait for setup_matrix.
    case $name in main|setup_matrix|postgresql|bench) ;; *)
      [ -z "${PID[setup_matrix]:-}" ] || finish setup_matrix ;;
    esac
    # The main pass's coverage is appended to by main_processes: it is written first.
    if [ "$name" = main_processes ] && [ -n "${PID[main]:-}" ]; then finish main; fi
    while [ "${#PID[@]}" -ge "$slots" ]; do
      wait -n "${PID[@]}" 2>/dev/null || true
      for running in "${!PID[@]}"; do
        kill -0 "${PID[$running]}" 2>/dev/null || finish "$running"
      done
    done
    echo "==> [$name] started"
    START[$name]=$(date +%s)
    ( set -euo pipefail; export TASKS_TEST_SQLITE="$LOGS/$name.sqlite3"; "pass_$name" ) \
      >"$LOGS/$name.log" 2>&1 &
    PID[$name]=$!
  done
  for running in "${!PID[@]}"; do finish "$running"; done
}
# Three at a time, the in-process passes first: the process passes (which use both cores
# fully) start as the in-process ones end, so the last in-process passes do not leave a core
# idle while no process pass may start.
run_phase 3 main setup_matrix postgresql docs mariadb django52 flakes lowest bench \
  main_processes postgresql_processes mariadb_processes django52_processes lowest_http

echo "==> matrix finished in $(( $(date +%s) - started )) s"
if [ "${#failed[@]}" -gt 0 ]; then
  # Each failed pass's log was printed when it ended, mid-run; its verdict lines again here, last,
  # where a reader of only the tail of CI's output finds them.
  for name in "${failed[@]}"; do
    echo "==> [$name] failed; its verdict lines:"
    grep -E "FAILED|ERROR|Error:|error:|intermittent|^flakes:|passed|failed" "$LOGS/$name.log" \
      | tail -n 40 | sed "s/^/[$name] /" || true
  done
  echo "error: failed passes: ${failed[*]}" >&2
  exit 1
fi
