"""The seed README's examples work as written."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from django.core import mail

README = Path(__file__).resolve().parents[2] / "README.md"
# The README this project grew from, kept as it was given.
SEED_README = Path(__file__).resolve().parents[1] / "data" / "seed-README.md"


def code_block_after(heading: str) -> str:
    """The first fenced code block after ``heading`` in the README."""
    text = README.read_text()
    start = text.index(heading)
    match = re.search(r"```[a-z]*\n(.*?)```", text[start:], re.S)
    assert match, f"no code block after {heading!r}"
    return match.group(1)


def test_example_usage_runs_now_and_through_the_default_backend() -> None:
    code = code_block_after("## Example usage")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    with warnings.catch_warnings():
        # Defined after the test URLconf was built: it has no endpoint, and says so.
        warnings.simplefilter("ignore", RuntimeWarning)
        exec(compile(code, "README.md", "exec"), namespace)
    # task.run() sent one e-mail, task.start() (ImmediateBackend by default) another.
    assert [m.subject for m in mail.outbox] == ["Hello", "Hello"]
    assert mail.outbox[0].to == ["alice@example.com", "bob@example.com"]


@pytest.mark.parametrize(
    ("heading", "path"),
    [
        ("[my_app/apps.py]", "example/my_app/apps.py"),
        ("[django_generic_tasks_example/api.py]", "example/django_generic_tasks_example/api.py"),
        ("[django_generic_tasks_example/urls.py]", "example/django_generic_tasks_example/urls.py"),
    ],
)
def test_readme_snippets_are_the_example_projects_code(heading: str, path: str) -> None:
    snippet = code_block_after(heading)
    source = (README.parent / path).read_text()
    code_lines = [line for line in snippet.splitlines() if line.strip()]
    # The example file holds every line of the snippet, in order (it may add docstrings/types).
    remaining = iter(line.replace(" -> None", "") for line in source.splitlines())
    for line in code_lines:
        assert any(candidate == line for candidate in remaining), f"{path} lacks {line!r}"


def test_readme_keeps_every_line_of_the_seed_readme_in_order() -> None:
    # Added lines may stand between them; the seed's example project links point into example/.
    seed = SEED_README.read_text(encoding="utf-8").replace(
        "](django_generic_tasks_example/", "](example/"
    )
    readme = iter(README.read_text(encoding="utf-8").splitlines())
    for line in seed.splitlines():
        assert any(candidate == line for candidate in readme), f"README.md lacks {line!r}"


def test_readme_stays_short() -> None:
    # Detail lives in docs/; the README keeps the seed's sections and points there.
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines (at most 200)"
