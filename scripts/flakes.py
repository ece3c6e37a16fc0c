"""The flake detector: runs the same tests in several fresh pytest sessions and fails on any
failure, naming the tests that failed only in some rounds (intermittent) apart from those that
failed in every round.

By default it reruns the tests marked ``concurrency`` (threads, worker loops, leases, timeouts,
LISTEN/NOTIFY: ``tests/conftest.py`` lists their modules); give paths or ``-m``/``-k`` to rerun
others, e.g. the whole suite. Each round is a whole new pytest process, exactly as CI runs one.

Usage: .venv/bin/python scripts/flakes.py [--count N] [--database URL] [PYTEST ARGS / PATHS...]
  --count N          rounds (default 5)
  --database URL     DATABASE_URL for the rounds (default: $DATABASE_URL, else SQLite)
Exit status: 0 when every round of every test passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = ["tests/unit", "-m", "concurrency"]


def tally(report: Path) -> tuple[Counter[str], Counter[str]]:
    """Passes and failures (errors included) per test in a JUnit XML report."""
    passed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for case in ET.parse(report).getroot().iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
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
    options, rest = parser.parse_known_args()
    if options.count < 1:
        parser.error("--count must be at least 1")
    targets = rest if any(not a.startswith("-") for a in rest) else [*DEFAULT_TARGETS, *rest]
    env = {**os.environ, "DATABASE_URL": options.database}
    passed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    problems = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        env.setdefault("TASKS_TEST_SQLITE", str(Path(work) / "flakes.sqlite3"))
        for round_ in range(1, options.count + 1):
            report = Path(work) / f"round{round_}.xml"
            command = [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                f"--junitxml={report}", "-o", "junit_family=xunit2", *targets,
            ]  # fmt: skip
            code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
            if code == 5:
                problems.append(f"round {round_}: pytest collected no tests")
            elif not report.exists():
                problems.append(f"round {round_}: pytest wrote no report (exit {code})")
                continue
            elif code not in (0, 1):
                problems.append(f"round {round_}: pytest exited {code}")
            round_passed, round_failed = tally(report)
            passed.update(round_passed)
            failed.update(round_failed)
    seconds = time.monotonic() - began
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
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
