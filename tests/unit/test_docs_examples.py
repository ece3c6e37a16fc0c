"""Every code example of the documentation runs, or is checked against what it names.

Python blocks run, page by page, in a fresh process (``tests/docs_examples.py``). Shell blocks
must parse (``bash -n``), and what they call must exist as written: ``manage.py`` commands parse
their arguments with the command's own parser, ``pip install`` extras are in pyproject.toml,
scripts and files they run are in the repository, ``curl`` targets a task of the example.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

from tests.docs_examples import DOCS, ROOT, Block, blocks, pages

SHELL = {"sh", "bash", "console", "shell"}


def _id(page: Path) -> str:
    return str(page.relative_to(DOCS))


def python_pages() -> list[Path]:
    return [p for p in pages() if any(b.language in {"python", "py"} for b in blocks(p))]


def shell_blocks() -> list[Block]:
    return [b for p in pages() for b in blocks(p) if b.language in SHELL]


def commands(block: Block) -> list[list[str]]:
    """The commands of a shell block (a console block: the lines after ``$``)."""
    lines = block.code.splitlines()
    if block.language == "console":  # a command, its continuation lines, then its output
        kept, going_on = [], False
        for line in lines:
            if line.startswith("$ ") or going_on:
                kept.append(line.removeprefix("$ "))
                going_on = line.endswith("\\")
        lines = kept
    script = "\n".join(lines).replace("\\\n", " ")
    found = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if words and not re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            found.append(words)
    return found


def check_manage_py(words: list[str], where: str) -> None:
    name, args = words[0], words[1:]
    apps = get_commands()
    assert name in apps, f"{where}: no management command {name!r}"
    parser = load_command_class(apps[name], name).create_parser("manage.py", name)
    try:
        parser.parse_args(args)
    except SystemExit as exc:  # argparse's way of saying "bad arguments"
        pytest.fail(f"{where}: manage.py {shlex.join(words)} does not parse ({exc})")


def check_pip(words: list[str], where: str) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for word in words:
        match = re.fullmatch(r"django-generic-tasks\[([\w,-]+)\]", word)
        for extra in match.group(1).split(",") if match else ():
            assert extra in extras, f"{where}: no extra {extra!r} in pyproject.toml"


def check_command(words: list[str], where: str) -> None:
    program = Path(words[0]).name
    if program.startswith("python") and "manage.py" in words:
        check_manage_py(words[words.index("manage.py") + 1 :], where)
    elif program.startswith("python") and len(words) > 1 and words[1].endswith(".py"):
        script = ROOT / words[1]
        assert script.is_file(), f"{where}: {words[1]} does not exist"
        text = script.read_text()
        for option in (w.split("=")[0] for w in words[2:] if w.startswith("--")):
            assert option in text, f"{where}: {words[1]} has no {option}"
    elif words[0].startswith("scripts/"):
        assert (ROOT / words[0]).is_file(), f"{where}: {words[0]} does not exist"
    elif program == "pip" or words[:3] == ["python", "-m", "pip"]:
        check_pip(words, where)
    elif program == "curl":
        url = next(w for w in words if "/api/tasks/" in w)
        task = url.rsplit("/api/tasks/", 1)[1].split("/")[0].split("?")[0]
        module, _, cls = task.rpartition(".")
        source = ROOT / "example" / (module.replace(".", "/") + ".py")
        assert f"class {cls}(" in source.read_text(), f"{where}: no task {task} in the example"


@pytest.mark.slow
@pytest.mark.parametrize("page", python_pages(), ids=_id)
def test_python_examples_of_the_page_run(page: Path) -> None:
    required = re.search(r"<!-- examples-require: ([\w.]+) -->", page.read_text(encoding="utf-8"))
    if required and importlib.util.find_spec(required.group(1)) is None:
        pytest.skip(f"{page.name}'s examples need {required.group(1)} (not installed here)")
    result = subprocess.run(
        [sys.executable, "-m", "tests.docs_examples", str(page)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert int(result.stdout.strip().splitlines()[-1]) > 0


@pytest.mark.parametrize("block", shell_blocks(), ids=lambda b: b.where)
def test_shell_example_parses_and_names_what_exists(block: Block) -> None:
    script = "\n".join(" ".join(shlex.quote(w) for w in c) for c in commands(block))
    syntax = subprocess.run(
        ["bash", "-n"],
        input=block.code if block.language != "console" else script,
        capture_output=True,
        text=True,
        check=False,
    )
    assert syntax.returncode == 0, f"{block.where}: {syntax.stderr}"
    for words in commands(block):
        check_command(words, block.where)


def test_every_code_block_is_python_shell_or_output() -> None:
    languages = {b.language for p in pages() for b in blocks(p)}
    assert languages <= {"python", "py", "text", *SHELL}, languages
