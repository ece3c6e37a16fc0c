"""Fuzzing the tasks API from its own OpenAPI schema (schemathesis, bounded examples).

No input answers 5xx unless it is a task's own failure (a 500 carrying a run envelope with
status ``scheduled``, which tells a push queue to retry, or, for a direct call, ``failed``).
Responses match their schemas.

The example project is fuzzed from outside too: ``schemathesis run`` with every check (the
server-error rule in schemathesis/hooks.py), its coverage, fuzzing and stateful phases, against
the example served with ``DEBUG`` off (example_server.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from django_generic_tasks.backends import InMemoryBackend
from django_generic_tasks.conf import override_backend

# Requests go through Django's request signals, which touch the database connection.
pytestmark = pytest.mark.django_db

# Only the shared test tasks: other test modules may register tasks that are not for fuzzing.
OPERATIONS = [
    *[("POST", f"/api/tasks/{name}") for name in ("tests.add", "tests.flaky", "tests.async_echo")],
    *[
        ("POST", f"/api/tasks/{name}/start")
        for name in ("tests.add", "tests.flaky", "tests.async_echo")
    ],
    ("GET", "/api/tasks/runs/{run_id}"),
]
# A free-form string path parameter has no invalid values: runs/{run_id} is fuzzed positively.
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (path.endswith("{run_id}") and mode is GenerationMode.NEGATIVE)
]
IDS = [f"{method} {path} {mode.value}" for method, path, mode in CASES]


def no_server_error_unless_the_task_failed(ctx: Any, response: Any, case: Any) -> None:
    """5xx only for a run that failed and will be retried; never for bad input."""
    if response.status_code < 500:
        return
    body = response.json()
    assert response.status_code == 500, f"{response.status_code}: {response.text[:500]}"
    assert body.get("status") in {"scheduled", "failed"}, response.text[:500]
    assert body["error"]["traceback"] is None


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=IDS)
def test_api_never_answers_5xx_for_bad_input(method: str, path: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def fuzz(case: Any) -> None:
        case.call_and_validate(
            checks=[
                no_server_error_unless_the_task_failed,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ]
        )

    with override_backend(InMemoryBackend()):  # /start accepts every option and runs nothing
        fuzz()


HERE = Path(__file__).resolve().parent
ST_DIR = HERE / "schemathesis"


@pytest.fixture
def example_server(tmp_path: Path) -> Iterator[str]:
    """The example project served with ``DEBUG`` off; its OpenAPI document's URL."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "example_server.py"), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on "), line + process.stdout.read()
        yield f"http://127.0.0.1:{line.split()[-1]}/api/openapi.json"
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.slow
def test_example_api_keeps_every_promise_of_its_openapi_document(
    example_server: str, tmp_path: Path
) -> None:
    """Every check, every phase: documented input is accepted, undocumented input refused, no
    5xx but a task's declared failure, every answer as documented (the example, DEBUG off)."""
    command = [
        *(sys.executable, "-m", "schemathesis.cli"),
        *("--config-file", str(ST_DIR / "schemathesis.toml")),
        *("run", example_server, "--checks", "all"),
        *("--phases", "examples,coverage,fuzzing,stateful"),
        *("--max-examples", "50", "--workers", "1", "--seed", "22"),
        *("--generation-database", "none", "--no-color"),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(ST_DIR / "hooks.py")}
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert "Tested: 9" in output, output[-5000:]  # 4 tasks x (run, start) + runs/{run_id}
