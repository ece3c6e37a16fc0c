"""Run every benchmark: each ``bench/bench_*.py`` module's ``main(quick)``, one after another.

    python bench/run.py [--quick] [--only NAME ...]

``--only core`` (or ``bench_core``) runs just that module; repeat it to pick several. Each
module runs in its own Python process (each configures Django its own way) and prints its
tables; a module that crashes prints its error and the others still run. The exit status is
non-zero only when a module crashed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def discover() -> list[str]:
    """The benchmark module names, sorted: ``bench_core``, ``bench_database``..."""
    return sorted(path.stem for path in HERE.glob("bench_*.py"))


def run_one(name: str, quick: bool) -> bool:
    """Run ``name.main(quick)`` in a fresh interpreter; return whether it finished cleanly."""
    path = [str(HERE), str(ROOT)]
    code = f"import sys; sys.path[:0] = {path!r}\nimport {name}\n{name}.main({quick})\n"
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False)
    took = time.monotonic() - started
    if result.returncode != 0:
        print(f"\n**{name} crashed** (exit status {result.returncode}, after {took:.1f}s)\n")
        return False
    print(f"\n_{name}: {took:.1f}s_\n")
    return True


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the chosen benchmarks, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run each")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="run only this module"
    )
    args = parser.parse_args(argv)
    names = discover()
    if args.only:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.only}
        unknown = sorted(wanted - set(names))
        if unknown:
            parser.error(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(names)})")
        names = [n for n in names if n in wanted]
    crashed = []
    for name in names:
        print(f"\n## {name}{' (quick)' if args.quick else ''}\n", flush=True)
        if not run_one(name, args.quick):
            crashed.append(name)
    if crashed:
        print(f"Crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
