"""The flake detector: runs tests several times over and fails on any failure, naming the tests
that failed only some of the times (intermittent) apart from those that always failed.

By default it reruns the tests that touch threads, processes, leases, timeouts and LISTEN/NOTIFY
(the test files whose source mentions them); give paths to rerun others, e.g. the whole suite.
Each round is a whole pytest session (``--count N --repeat-scope session``), so a test meets the
others in the order CI runs them, N times.

Usage: .venv/bin/python scripts/flakes.py [--count N] [--database URL] [PYTEST ARGS / PATHS...]
  --count N          rounds (default 5)
  --database URL     DATABASE_URL for the rounds (default: $DATABASE_URL, else SQLite)
  --list-postgresql  print the test files that run only on PostgreSQL (LISTEN/NOTIFY)
Exit status: 0 when every round of every test passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = re.compile(
    r"\b(threading|subprocess|ThreadPoolExecutor|asyncio|Worker\(|lease|timeout|"
    r"LISTEN|NOTIFY|listen|wait\(|await_result|heartbeat|Heartbeat)\b"
)
POSTGRESQL_ONLY = re.compile(r"LISTEN|NOTIFY|pg_notify|PostgreSQL only")
SUITES = ("tests/unit", "tests/contract")
# pytest-repeat's ids: test[1-5], or test[param-1-5] when the test has parameters of its own.
REPEAT_ID = re.compile(r"(\[|-)\d+-\d+\]$")


def concurrency_tests(pattern: re.Pattern[str] = CONCURRENCY) -> list[str]:
    """The test files (unit and contract) whose source matches ``pattern`` (by default: those
    that touch threads, processes, leases, timeouts or LISTEN/NOTIFY)."""
    found = []
    for suite in SUITES:
        for path in sorted((ROOT / suite).glob("test_*.py")):
            if pattern.search(path.read_text(encoding="utf-8")):
                found.append(str(path.relative_to(ROOT)))
    return found


def base_id(classname: str, name: str) -> str:
    """A test's id without pytest-repeat's round suffix."""
    name = REPEAT_ID.sub(lambda m: "]" if m.group(1) == "-" else "", name)
    return f"{classname}::{name}"


def tally(report: Path) -> tuple[Counter[str], Counter[str]]:
    """Passes and failures (errors included) per test in a JUnit XML report."""
    passed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for case in ET.parse(report).getroot().iter("testcase"):
        test = base_id(case.get("classname", ""), case.get("name", ""))
        if case.find("failure") is not None or case.find("error") is not None:
            failed[test] += 1
        elif case.find("skipped") is None:
            passed[test] += 1
    return passed, failed


def main() -> int:
    """Run the rounds and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument(
        "--list-postgresql", action="store_true", help="print the PostgreSQL-only test files"
    )
    options, rest = parser.parse_known_args()
    if options.list_postgresql:
        print("\n".join(concurrency_tests(POSTGRESQL_ONLY)))
        return 0
    if options.count < 1:
        parser.error("--count must be at least 1")
    targets = rest if any(not a.startswith("-") for a in rest) else [*concurrency_tests(), *rest]
    env = {**os.environ, "DATABASE_URL": options.database}
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "flakes.xml"
        env.setdefault("TASKS_TEST_SQLITE", str(Path(work) / "flakes.sqlite3"))
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--count", str(options.count), "--repeat-scope", "session",
            f"--junitxml={report}", "-o", "junit_family=xunit2", *targets,
        ]  # fmt: skip
        began = time.monotonic()
        code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
        seconds = time.monotonic() - began
        if not report.exists():
            print(f"error: pytest wrote no report (exit {code})", file=sys.stderr)
            return 1
        passed, failed = tally(report)
    where = options.database.split("@")[-1] or "SQLite"
    tests = set(passed) | set(failed)
    print(
        f"\nflakes: {len(tests)} tests x {options.count} rounds on {where} in {seconds:.0f} s: "
        f"{sum(passed.values())} passed, {sum(failed.values())} failed"
    )
    intermittent = sorted(t for t in failed if passed[t])
    always = sorted(t for t in failed if not passed[t])
    for label, group in (("intermittent", intermittent), ("failed every round", always)):
        for test in group:
            print(f"  {label}: {test} ({failed[test]} of {failed[test] + passed[test]} failed)")
    if code == 5:
        print("error: pytest collected no tests", file=sys.stderr)
        return 1
    return 1 if failed or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
