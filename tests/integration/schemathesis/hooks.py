"""Schemathesis hooks for fuzzing the example project: the one server-error rule.

Loaded by ``schemathesis run`` through ``SCHEMATHESIS_HOOKS`` (see test_schemathesis.py).
"""

from __future__ import annotations

from typing import Any

import schemathesis

DECLARED_FAILURES: dict[str, set[str]] = {}
"""Exception types a task of the example may fail with for params it accepts (task name →
types). None: with e-mails written to files, every accepted input runs to completion."""


@schemathesis.check
def no_server_error_unless_the_task_failed(ctx: Any, response: Any, case: Any) -> None:
    """5xx only for a run envelope of a task's own declared failure; never for input."""
    if response.status_code < 500:
        return
    text = response.text[:500]
    assert response.status_code == 500, f"{response.status_code}: {text}"
    body = response.json()
    assert isinstance(body, dict), text
    assert body.get("status") in {"scheduled", "failed"}, text
    error = body.get("error") or {}
    assert error.get("traceback") is None, f"a traceback with DEBUG off: {text}"
    declared = DECLARED_FAILURES.get(str(body.get("task")), set())
    assert error.get("type") in declared, f"the task failed on accepted params: {text}"
