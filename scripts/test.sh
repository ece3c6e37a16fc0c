#!/usr/bin/env bash
# Sets everything up and runs the checks CI runs: lint, types, the docs (strict build), the
# release (sdist + wheel, twine check, the wheel's contents, the example project on the installed
# wheel), and the test matrix:
#
# | pass              | Python | Django | django-ninja / Pydantic | database   | tests                |
# | ----------------- | ------ | ------ | ----------------------- | ---------- | -------------------- |
# | main (+coverage)  | 3.13   | 6.1    | newest / newest         | SQLite     | whole suite          |
# | postgresql        | 3.13   | 6.1    | newest / newest         | PostgreSQL | whole suite          |
# | mariadb           | 3.13   | 6.1    | newest / newest         | MariaDB    | whole suite          |
# | django52          | 3.13   | 5.2    | newest / newest         | SQLite     | whole suite          |
# | django60          | 3.13   | 6.0    | newest / newest         | SQLite     | unit + contract      |
# | py312             | 3.12   | 6.1    | newest / newest         | SQLite     | unit + contract      |
# | lowest            | 3.12   | 6.1    | lowest / lowest allowed | SQLite     | unit + contract + HTTP |
#
# (Python 3.14 is not installable on this machine.) Passes run two at a time (the machine has two
# cores), each in its own process and database; their logs are printed as each one ends.
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
UNIT_CONTRACT=(tests/unit tests/contract)

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
pass_main() {
  run_pytest .venv/bin/python -m pytest --cov --cov-report=term --cov-fail-under=90 \
    "${PYTEST_ARGS[@]}"
}
pass_postgresql() {
  if pg_available; then
    DATABASE_URL=${TASKS_CI_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test} run_pytest .venv/bin/python -m pytest -q \
      "${PYTEST_ARGS[@]}"
  elif [ "${CI:-}" = "true" ]; then
    echo "error: PostgreSQL is not reachable on 127.0.0.1:5432 under CI=true" >&2; exit 1
  else
    echo "warning: PostgreSQL not reachable; skipping the PostgreSQL run" >&2
  fi
}
pass_mariadb() {
  # mysqlclient (the `mysql` extra) builds against libmariadb-dev, which start_services installs.
  if mariadb_available && [ -f "$LOGS/mysql-ok" ]; then
    # The suite's own database (pytest-django creates test_dgt; worker subprocesses use dgt).
    local db=${TASKS_CI_MARIADB_NAME:-dgt}
    .venv/bin/python -c 'import sys, MySQLdb; MySQLdb.connect(host="127.0.0.1", user="root").cursor(
      ).execute(f"CREATE DATABASE IF NOT EXISTS {sys.argv[1]} CHARACTER SET utf8mb4")' "$db"
    DATABASE_URL=mysql://root@127.0.0.1:3306/$db run_pytest .venv/bin/python -m pytest -q \
      "${PYTEST_ARGS[@]}"
  elif [ "${CI:-}" = "true" ]; then
    echo "error: MariaDB is not reachable on 127.0.0.1:3306 (or mysqlclient did not build)" \
      "under CI=true" >&2
    exit 1
  else
    echo "warning: MariaDB not reachable or mysqlclient not installable; skipping that run" >&2
  fi
}
pass_django52() {
  run_pytest .venv-django52/bin/python -m pytest -q -p no:cacheprovider "${PYTEST_ARGS[@]}"
}
pass_django60() {
  run_pytest .venv-django60/bin/python -m pytest -q -p no:cacheprovider "${UNIT_CONTRACT[@]}" \
    "${PYTEST_ARGS[@]}"
}
pass_py312() {
  run_pytest .venv-py312/bin/python -m pytest -q -p no:cacheprovider "${UNIT_CONTRACT[@]}" \
    "${PYTEST_ARGS[@]}"
}
pass_lowest() {
  # The lowest django-ninja and Pydantic pyproject.toml allows (the other venvs have the newest):
  # the HTTP layer uses only django-ninja's public API, and these tests hold it to that.
  run_pytest .venv-lowest/bin/python -m pytest -q -p no:cacheprovider "${UNIT_CONTRACT[@]}" \
    tests/integration/test_schemathesis.py tests/integration/test_docs_page.py "${PYTEST_ARGS[@]}"
}
pass_docs() {
  echo "==> mkdocs build --strict"
  NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$LOGS/site"
}
pass_bench() {
  .venv/bin/python bench/run.py --quick
}

# The other virtualenvs and the release check, one after another (they write into the source
# tree: egg-info, build/), beside the first test pass.
pass_setup_matrix() {
  ensure_venv .venv-django52 "$EXTRAS" "django>=5.2,<5.3"
  ensure_venv .venv-django60 "$EXTRAS" "django>=6.0,<6.1"
  PYTHON=python3.12 ensure_venv .venv-py312 "$EXTRAS"
  PYTHON=python3.12 ensure_venv .venv-lowest "$EXTRAS" \
    "django-ninja==$(lowest django-ninja)" "pydantic==$(lowest pydantic)"
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

PASSES=(main setup_matrix postgresql mariadb django52 django60 py312 lowest docs bench)
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
for name in "${PASSES[@]}"; do
  # Passes that need the matrix virtualenvs wait for setup_matrix.
  case $name in mariadb|django52|django60|py312|lowest)
    [ -z "${PID[setup_matrix]:-}" ] || finish setup_matrix ;;
  esac
  while [ "${#PID[@]}" -ge 2 ]; do
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

echo "==> matrix finished in $(( $(date +%s) - started )) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "error: failed passes: ${failed[*]}" >&2
  exit 1
fi
