"""``bench/run.py``: runs each benchmark module, survives one that crashes, reports it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_runner", ROOT / "bench" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_runner()
    (tmp_path / "bench_boom.py").write_text("def main(quick):\n    raise RuntimeError('boom')\n")
    (tmp_path / "bench_ok.py").write_text("def main(quick):\n    print('| ok |', quick)\n")
    (tmp_path / "helper.py").write_text("raise AssertionError('not a benchmark')\n")
    monkeypatch.setattr(module, "HERE", tmp_path)
    return module


@pytest.mark.slow
def test_a_crashing_module_is_reported_and_the_others_still_run(
    runner: ModuleType, capfd: pytest.CaptureFixture[str]
) -> None:
    assert runner.discover() == ["bench_boom", "bench_ok"]
    assert runner.main(["--quick"]) == 1
    out, err = capfd.readouterr()
    assert "**bench_boom crashed**" in out
    assert "RuntimeError: boom" in err
    assert "| ok | True" in out
    assert "Crashed: bench_boom" in err


@pytest.mark.slow
def test_only_runs_the_named_module_and_succeeds(
    runner: ModuleType, capfd: pytest.CaptureFixture[str]
) -> None:
    assert runner.main(["--only", "ok"]) == 0
    out, _ = capfd.readouterr()
    assert "| ok | False" in out
    assert "boom" not in out


def test_an_unknown_module_name_is_a_usage_error(runner: ModuleType) -> None:
    with pytest.raises(SystemExit) as info:
        runner.main(["--only", "nope"])
    assert info.value.code == 2


@pytest.mark.parametrize("path", sorted((ROOT / "bench").glob("bench_*.py")), ids=lambda p: p.stem)
def test_every_benchmark_module_takes_the_quick_flag_the_runner_passes(path: Path) -> None:
    import ast

    tree = ast.parse(path.read_text())
    (main,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    positional = [a.arg for a in main.args.posonlyargs + main.args.args]
    assert positional[:1] == ["quick"], f"{path.name}: main({', '.join(positional)})"
