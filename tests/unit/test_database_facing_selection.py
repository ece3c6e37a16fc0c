"""``--database-facing`` (tests/conftest.py): the PostgreSQL and MariaDB passes run only the
tests whose outcome can depend on the configured database, and never drop one of those."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collected(*args: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {line for line in result.stdout.splitlines() if "::" in line}


def test_database_facing_keeps_db_tests_and_per_database_ones_and_drops_the_rest() -> None:
    files = ["tests/unit/test_store_statements.py", "tests/unit/test_heartbeat_pins.py"]
    everything = _collected(*files)
    kept = _collected("--database-facing", *files)
    # Opens the database (a django_db module mark); PostgreSQL-specific without opening it
    # (per_database); neither: a check of the statements' text.
    assert any("test_the_heartbeat_never_cancels_a_run_nobody_cancelled" in t for t in kept)
    assert any("test_postgresqls_array_insert_casts_each_column_to_its_type" in t for t in kept)
    dropped = everything - kept
    assert any("test_statements_name_only_the_models_tables" in t for t in dropped)
    assert not any("test_heartbeat_pins" in t for t in dropped)
