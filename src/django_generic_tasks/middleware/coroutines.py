"""Running a coroutine to its end from sync code (``run()`` and hooks may be ``async def``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

__all__ = ["awaited", "run_coroutine"]


async def awaited(awaitable: Any) -> Any:
    """A coroutine that awaits ``awaitable`` (any awaitable, e.g. a future)."""
    return await awaitable


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to its end and return its result (raise its exception)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a running event loop (e.g. an async view): run on a fresh thread.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="django-generic-tasks-async")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")
