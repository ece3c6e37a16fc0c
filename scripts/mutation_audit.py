"""The mutation audit: plants realistic bugs in the outcome and run-store code, one at a time,
and checks that the test suite catches each one.

Each mutant (``scripts/mutants.py``) replaces one exact snippet of a module with a realistic
bug (an off-by-one, a dropped ``WHERE`` term, a guard that lets an exception through, a wrong
status). The tests named for the mutant run first (fast); a mutant they miss is run against the
whole SQLite pass (``tests/unit tests/contract``) before it counts as a survivor. The source
tree is restored after every mutant, also on Ctrl-C.

Usage: .venv/bin/python scripts/mutation_audit.py [--only ID ...] [--no-confirm] [--list]
Exit status: 0 when at least ``--target`` percent (default 95) of the mutants were killed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "django_generic_tasks"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutants import MUTANTS, Mutant  # noqa: E402  # beside this script, not a package

WHOLE_PASS = ["tests/unit", "tests/contract"]


def pytest(targets: list[str], env: dict[str, str], timeout: float) -> bool:
    """Whether the tests pass (``True``: the mutant survived them)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p"]
    command += ["no:cacheprovider", "--timeout", "120", *targets]
    try:
        done = subprocess.run(
            command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return False  # a hang is caught too: the per-test timeout makes it a failure in CI
    if done.returncode == 5:
        raise SystemExit(f"pytest collected no tests from {targets}")
    return done.returncode == 0


def apply(mutant: Mutant) -> str:
    """Plant ``mutant``; return the module's original text."""
    path = PACKAGE / mutant.path
    original = path.read_text()
    count = original.count(mutant.old)
    if count != 1:
        raise SystemExit(f"{mutant.id}: the snippet occurs {count} times in {mutant.path}")
    path.write_text(original.replace(mutant.old, mutant.new))
    compile(path.read_text(), str(path), "exec")  # a mutant must be a program, not a typo
    return original


def main() -> int:
    """Run the audit and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="run only these mutant ids")
    parser.add_argument("--no-confirm", action="store_true", help="skip the whole-pass rerun")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--target", type=float, default=95.0)
    options = parser.parse_args()
    chosen = [m for m in MUTANTS if not options.only or m.id in options.only]
    if options.list:
        for mutant in chosen:
            print(f"{mutant.id:28} {mutant.path:34} {mutant.why}")
        return 0
    results: list[tuple[Mutant, str, float]] = []
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "TASKS_TEST_SQLITE": str(Path(work) / "audit.sqlite3")}
        env.pop("DATABASE_URL", None)  # the SQLite pass: these bugs are not dialect-specific
        for mutant in chosen:
            began = time.monotonic()
            original = apply(mutant)
            try:
                survived = pytest(list(mutant.tests), env, timeout=900)
                verdict = "survived" if survived else "killed"
                if survived and not options.no_confirm:
                    verdict = "SURVIVED" if pytest(WHOLE_PASS, env, timeout=1800) else "killed*"
            finally:
                (PACKAGE / mutant.path).write_text(original)
            seconds = time.monotonic() - began
            results.append((mutant, verdict, seconds))
            print(f"{verdict:9} {seconds:6.1f}s  {mutant.id:28} {mutant.why}", flush=True)
    killed = sum(1 for _, verdict, _ in results if verdict.startswith("killed"))
    rate = 100.0 * killed / len(results) if results else 100.0
    print(f"\n{killed} of {len(results)} mutants killed: {rate:.1f} % (target {options.target} %)")
    print("(killed*: missed by the mutant's own tests, caught by the whole SQLite pass)")
    for mutant, verdict, _ in results:
        if not verdict.startswith("killed"):
            print(f"  {verdict}: {mutant.id} ({mutant.path}): {mutant.why}")
    return 0 if rate >= options.target else 1


if __name__ == "__main__":
    raise SystemExit(main())
