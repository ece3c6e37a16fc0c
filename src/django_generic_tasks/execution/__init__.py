"""The one path that runs an attempt, used by every backend and by the HTTP endpoint.

look the task up by name -> validate its params -> run the task's middleware chain (built once
per task class and backend: ``middleware``) around the call of ``run()`` -> an ``Outcome``
(how the attempt ended, and the retry policy's decision). Carrying the decision out (a row,
a requeue, an HTTP status) is the caller's job, through ``retry.settle()``: ``execute()``
never raises for a task's failure.
"""

from __future__ import annotations

import logging
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from pydantic import ValidationError

from ..core.params import validate_params
from ..core.registry import registry
from ..core.status import TaskStatus
from ..exceptions import UnknownTaskError
from ..middleware import (
    AsyncHandler,
    Handler,
    async_chain_for,
    async_chains,
    chain_for,
    chains,
    poisoned_chain,
)
from ..middleware.coroutines import awaited, run_coroutine
from ..middleware.timeout import is_async, run_plain, runner_for
from .attempts import (
    FINAL,
    Attempt,
    Decision,
    Outcome,
    error_info,
    failed,
    requeue_lost_connections,
)
from .timeouts import with_timeout

if TYPE_CHECKING:
    from ..core.task import Task

__all__ = [
    "FINAL",
    "Attempt",
    "Decision",
    "Outcome",
    "error_info",
    "execute",
    "execute_async",
    "loop_chain",
    "requeue_lost_connections",
]

logger = logging.getLogger("django_generic_tasks")
_DEBUG = logging.DEBUG
_SUCCEEDED = TaskStatus.SUCCEEDED


def execute(attempt: Attempt) -> Outcome:
    """Run ``attempt`` and report its outcome.

    An unknown task name or params that no longer validate end the run as ``FAILED`` with no
    retry (retrying cannot fix them). ``CapacityExceededError`` is raised, before the task
    runs, when a middleware refuses the attempt for now (e.g. this process has too many
    timed-out runs still running: ``TASKS_MAX_ABANDONED_THREADS``): the attempt did not
    happen, so it is not an outcome.
    """
    try:
        task_class = registry.get(attempt.task_name)
    except UnknownTaskError as exc:
        return _poisoned(None, attempt, attempt.max_attempts or attempt.attempt, exc)
    try:
        task = task_class(validate_params(task_class.params_model, attempt.params))
    except (ValidationError, TypeError) as exc:
        return _poisoned(task_class, attempt, attempt.max_attempts or task_class.max_attempts, exc)
    # The task's run: ``Task.context`` builds a RunContext from it on first use (most runs
    # never ask) and ``attempts.run_info()`` reads it.
    task._run_context = attempt  # type: ignore[assignment]  # a RunContext once built
    backend = attempt.backend
    try:
        chain = chains[backend][task_class]
    except KeyError:
        chain = chain_for(task_class, backend, _terminal(task_class))
    return chain(task, attempt)


def loop_chain(task_name: str, backend: str) -> AsyncHandler | None:
    """The async chain to await attempts of ``task_name`` with on an event loop
    (``execute_async``); ``None``: run them with ``execute()`` on a thread (not an
    ``async def run()`` task, an unknown one, or a middleware in its chain has no async path)."""
    try:
        task_class = registry.get(task_name)
    except UnknownTaskError:
        return None
    try:
        return async_chains[backend][task_class]
    except KeyError:
        pass
    terminal = _async_terminal(task_class) if is_async(task_class) else None
    return async_chain_for(task_class, backend, terminal)


async def execute_async(attempt: Attempt, chain: AsyncHandler) -> Outcome:
    """``execute()`` on an event loop: await ``attempt`` through ``chain`` (``loop_chain``
    of its task). ``run()`` is awaited on the loop, cancelled at the task's ``timeout``."""
    task_class = registry.get(attempt.task_name)
    try:
        task = task_class(validate_params(task_class.params_model, attempt.params))
    except (ValidationError, TypeError) as exc:
        limit = attempt.max_attempts or task_class.max_attempts
        return await sync_to_async(_poisoned)(task_class, attempt, limit, exc)
    task._run_context = attempt  # type: ignore[assignment]  # a RunContext once built
    return await chain(task, attempt)


def _async_terminal(task_class: type[Task[Any]]) -> AsyncHandler:
    """The innermost step of an async chain: await ``run()`` (cancelled at the timeout)."""
    name, default_limit, timeout = task_class.name, task_class.max_attempts, task_class.timeout

    async def call_async(task: Task[Any], attempt: Attempt) -> Outcome:
        debug = logger.isEnabledFor(_DEBUG)
        if debug:
            _log_started(attempt)
        try:
            if timeout is None:
                result = await task.run()
            else:
                result = await with_timeout(task.run(), timeout)  # type: ignore[arg-type]
        except Exception as exc:
            return failed(task, exc)
        if debug:
            _log_succeeded(attempt)
        limit = attempt.max_attempts or default_limit
        return Outcome(attempt.run_id, name, attempt.attempt, limit, _SUCCEEDED, result)

    return call_async


def _terminal(task_class: type[Task[Any]]) -> Handler:
    """The innermost step of a chain: call ``run()``; its exception becomes the outcome."""
    name, default_limit, run = task_class.name, task_class.max_attempts, runner_for(task_class)
    if run is run_plain:  # the hot path: a plain sync task, run() called inline

        def call_plain(task: Task[Any], attempt: Attempt) -> Outcome:
            debug = logger.isEnabledFor(_DEBUG)
            if debug:
                _log_started(attempt)
            try:
                result = task.run()
                if result is not None and isawaitable(result):
                    result = run_coroutine(awaited(result))
            except Exception as exc:
                return failed(task, exc)
            if debug:
                _log_succeeded(attempt)
            return Outcome(
                attempt.run_id,
                name,
                attempt.attempt,
                attempt.max_attempts or default_limit,
                _SUCCEEDED,
                result,
            )

        return call_plain

    def call(task: Task[Any], attempt: Attempt) -> Outcome:
        debug = logger.isEnabledFor(_DEBUG)
        if debug:
            _log_started(attempt)
        try:
            result = run(task)
        except Exception as exc:
            return failed(task, exc)
        if debug:
            _log_succeeded(attempt)
        limit = attempt.max_attempts or default_limit
        return Outcome(attempt.run_id, name, attempt.attempt, limit, _SUCCEEDED, result)

    return call


def _log_started(attempt: Attempt) -> None:
    logger.debug(
        "Task %s (run %s) attempt %d started", attempt.task_name, attempt.run_id, attempt.attempt
    )


def _log_succeeded(attempt: Attempt) -> None:
    logger.debug(
        "Task %s (run %s) succeeded on attempt %d",
        attempt.task_name,
        attempt.run_id,
        attempt.attempt,
    )


def _poisoned(
    task_class: type[Task[Any]] | None, attempt: Attempt, limit: int, exc: BaseException
) -> Outcome:
    logger.error(
        "Task %s (run %s) cannot run: %s",
        attempt.task_name,
        attempt.run_id,
        exc,
        extra={
            "task_name": attempt.task_name,
            "run_id": attempt.run_id,
            "attempt": attempt.attempt,
        },
    )
    outcome = Outcome(
        attempt.run_id,
        attempt.task_name,
        attempt.attempt,
        limit,
        TaskStatus.FAILED,
        None,
        error_info(exc),
    )

    def terminal(task: Task[Any], attempt: Attempt) -> Outcome:
        return outcome

    return poisoned_chain(task_class, attempt.backend, terminal)(None, attempt)  # type: ignore[arg-type]  # no task
