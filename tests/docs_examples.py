"""Collects the fenced code blocks of the documentation and runs a page's Python blocks.

``python -m tests.docs_examples PAGE.md`` (what ``tests/unit/test_docs_examples.py`` runs in a
fresh process per page, so the pages' tasks never reach the suite's registry) sets Django up
with the test settings on a throw-away SQLite database, migrates it, and runs the page's
``python`` blocks in order in one namespace, as a reader would paste them:

- a block titled ``settings.py`` is run on its own and its settings then apply (through
  ``override_settings``) to the blocks after it; every ``TASKS_*`` name in it must be a setting
  the package reads;
- a block titled with a path of the example project (``django_generic_tasks_example/api.py``)
  must be lines of that file, which the example project's test runs;
- every other block runs as written, in a module named by the page's
  ``<!-- examples-module: NAME -->`` comment (tasks defined there are named ``NAME.Class``);
- a page with ``<!-- examples-require: MODULE -->`` is skipped where MODULE cannot be imported
  (``django.tasks`` before Django 6.0).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```", re.MULTILINE | re.DOTALL
)
TITLE = re.compile(r'title="([^"]+)"')


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page, line, language, title and code."""

    page: Path
    line: int
    language: str
    title: str
    code: str

    @property
    def where(self) -> str:
        """``page.md:line`` for messages."""
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        info = match.group("info").strip()
        language = info.split()[0] if info else ""
        title = TITLE.search(info)
        indent = len(match.group("indent"))
        code = "\n".join(line[indent:] for line in match.group("body").splitlines())
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(page, line, language, title.group(1) if title else "", code))
    return found


def pages() -> list[Path]:
    """Every Markdown page of the docs."""
    return sorted(DOCS.rglob("*.md"))


def known_settings() -> set[str]:
    """The ``TASKS_*`` settings the package reads (names found in its source)."""
    names: set[str] = set()
    for path in (ROOT / "src" / "django_generic_tasks").rglob("*.py"):
        names.update(re.findall(r"\bTASKS_[A-Z_]+[A-Z]\b", path.read_text(encoding="utf-8")))
    return names


def example_file_holds(block: Block) -> None:
    """Every non-blank line of ``block`` is a line of the example file, in order."""
    path = ROOT / "example" / block.title
    source = path.read_text(encoding="utf-8")
    remaining = iter(line.replace(" -> None", "") for line in source.splitlines())
    for line in (line for line in block.code.splitlines() if line.strip()):
        if not any(candidate == line for candidate in remaining):
            raise AssertionError(f"{block.where}: {path.relative_to(ROOT)} lacks {line!r}")


def settings_of(block: Block) -> dict[str, object]:
    """Run a ``settings.py`` block; its upper-case names, checked against the known settings."""
    namespace: dict[str, object] = {"__name__": "settings"}
    exec(compile(block.code, block.where, "exec", dont_inherit=True), namespace)
    names = {key: value for key, value in namespace.items() if key.isupper()}
    unknown = {name for name in names if name.startswith("TASKS_")} - known_settings()
    if unknown:
        raise AssertionError(f"{block.where}: unknown settings {sorted(unknown)}")
    # Fragments such as ``INSTALLED_APPS = [..., "django_generic_tasks"]`` only show a line.
    return {key: value for key, value in names.items() if not _has_ellipsis(value)}


def _has_ellipsis(value: object) -> bool:
    if value is Ellipsis:
        return True
    if isinstance(value, list | tuple):
        return any(_has_ellipsis(item) for item in value)
    return False


def run_page(page: Path) -> int:
    """Run ``page``'s Python blocks (see the module docstring); the number run."""
    import tempfile

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    database = Path(tempfile.mkdtemp()) / "docs.sqlite3"
    os.environ["TASKS_TEST_SQLITE"] = str(database)
    os.environ.pop("DATABASE_URL", None)
    sys.path[:0] = [str(ROOT), str(ROOT / "example")]
    import django
    from django.core.management import call_command
    from django.test.utils import override_settings

    django.setup()
    call_command("migrate", verbosity=0)
    declared = re.search(r"<!-- examples-module: ([\w.]+) -->", page.read_text(encoding="utf-8"))
    module = (
        declared.group(1)
        if declared
        else "docs_" + re.sub(r"\W", "_", str(page.relative_to(DOCS).with_suffix("")))
    )
    # A real module, so that dotted paths in settings (``TASKS_MIDDLEWARE``) can name its classes.
    import types

    sys.modules[module] = types.ModuleType(module)
    namespace: dict[str, object] = sys.modules[module].__dict__
    ran = 0
    for block in blocks(page):
        if block.language not in {"python", "py"}:
            continue
        if block.title == "settings.py":
            override_settings(**settings_of(block)).enable()
        elif block.title and (ROOT / "example" / block.title).is_file():
            example_file_holds(block)
        else:
            # dont_inherit: a reader's module has no ``from __future__ import annotations``
            # (this one's), and with it a params model could not resolve its field types.
            exec(compile(block.code, block.where, "exec", dont_inherit=True), namespace)
        ran += 1
    return ran


if __name__ == "__main__":
    print(run_page(Path(sys.argv[1]).resolve()))
