#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: lint, types, tests on SQLite, PostgreSQL and
# MariaDB with Django 6.x, tests on Django 5.2 LTS, the HTTP tests on the lowest django-ninja
# allowed, and a short benchmark smoke run.
# Usage: scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_python.sh
source scripts/_services.sh

EXTRAS="dev,oidc,cloudtasks,postgres,celery"
ensure_venv .venv "$EXTRAS"
start_services

echo "==> ruff"
.venv/bin/ruff check src tests example bench
.venv/bin/ruff format --check src tests example bench
echo "==> mypy --strict"
.venv/bin/mypy

run_pytest() {  # exit code 5 (no tests collected) is a failure too
  local code=0
  "$@" || code=$?
  if [ "$code" -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi
  [ "$code" -eq 0 ] || exit "$code"
}

echo "==> tests: Django 6, SQLite (with coverage)"
run_pytest .venv/bin/python -m pytest --cov --cov-report=term --cov-fail-under=90 "$@"

if pg_available; then
  echo "==> tests: Django 6, PostgreSQL"
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/test run_pytest .venv/bin/python -m pytest -q "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "error: PostgreSQL is not reachable on 127.0.0.1:5432 under CI=true" >&2; exit 1
else
  echo "warning: PostgreSQL not reachable; skipping the PostgreSQL run" >&2
fi

# MariaDB: the whole suite. mysqlclient (the `mysql` extra) builds against libmariadb-dev,
# which start_services installs when it is missing.
if mariadb_available && .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e ".[mysql]"; then
  echo "==> tests: Django 6, MariaDB"
  # The suite's own database (pytest-django creates test_dgt; worker subprocesses use dgt).
  .venv/bin/python -c 'import MySQLdb; MySQLdb.connect(host="127.0.0.1", user="root").cursor(
    ).execute("CREATE DATABASE IF NOT EXISTS dgt CHARACTER SET utf8mb4")'
  DATABASE_URL=mysql://root@127.0.0.1:3306/dgt run_pytest .venv/bin/python -m pytest -q "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "error: MariaDB is not reachable on 127.0.0.1:3306 (or mysqlclient did not build)" \
    "under CI=true" >&2
  exit 1
else
  echo "warning: MariaDB not reachable or mysqlclient not installable; skipping that run" >&2
fi

echo "==> tests: Django 5.2 LTS, SQLite"
ensure_venv .venv-django52 "$EXTRAS" "django>=5.2,<5.3"
run_pytest .venv-django52/bin/python -m pytest -q "$@"

# The lowest django-ninja pyproject.toml allows (the main venv has the newest): the HTTP layer
# uses only django-ninja's public API, and these tests hold it to that on both ends.
NINJA_LOW=$(.venv/bin/python - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(next(re.search(r">=\s*([\d.]+)", d).group(1) for d in deps if d.startswith("django-ninja")))
PY
)
echo "==> tests: lowest django-ninja ($NINJA_LOW), HTTP layer and contract suite"
ensure_venv .venv-ninja-low "$EXTRAS" "django-ninja==$NINJA_LOW"
run_pytest .venv-ninja-low/bin/python -m pytest -q -p no:cacheprovider \
  tests/unit/test_api.py tests/unit/test_security_*.py tests/unit/test_registry.py \
  tests/unit/test_checks.py tests/unit/test_conf.py tests/integration/test_schemathesis.py \
  tests/integration/test_docs_page.py tests/contract "$@"

echo "==> benchmarks (smoke run)"
.venv/bin/python bench/run.py --quick
