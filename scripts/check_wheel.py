"""Checks a built wheel: it ships what the package needs at run time, and no tests.

Usage: ``python scripts/check_wheel.py dist/django_generic_tasks-*.whl``. Every file of
``src/django_generic_tasks`` that is not Python bytecode (templates, static files, ``py.typed``)
and every migration must be in the wheel; nothing under ``tests/``, ``example/``, ``bench/`` or
``docs/`` may be. Exits 1 with the list of problems.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "django_generic_tasks"
FORBIDDEN = ("tests/", "example/", "bench/", "docs/")


def problems(wheel: Path) -> list[str]:
    """What is wrong with ``wheel`` (empty when it is right)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    found = [f"missing: {name}" for name in sorted(wanted - names)]
    found += [f"must not ship: {name}" for name in sorted(names) if name.startswith(FORBIDDEN)]
    kinds = {
        "migrations": "django_generic_tasks/migrations/0001_initial.py",
        "templates": "django_generic_tasks/templates/",
        "py.typed": "django_generic_tasks/py.typed",
        "pytest plugin": "django_generic_tasks_pytest.py",
    }
    for kind, prefix in kinds.items():
        if not any(name.startswith(prefix) for name in names):
            found.append(f"no {kind} ({prefix})")
    if (PACKAGE / "static").is_dir() and not any(
        name.startswith("django_generic_tasks/static/") for name in names
    ):
        found.append("no static files (django_generic_tasks/static/)")
    return found


if __name__ == "__main__":
    wheel = Path(sys.argv[1])
    issues = problems(wheel)
    for issue in issues:
        print(f"{wheel.name}: {issue}", file=sys.stderr)
    if not issues:
        print(f"{wheel.name}: migrations, templates, static files, py.typed; no tests")
    sys.exit(1 if issues else 0)
