"""Text from callers, made safe to print: control characters shown as escapes.

A caller's string (a model ref's pk, a task's error message, a run id from a URL) can hold a
newline that forges a log line, or terminal escapes that clear an operator's screen or retitle
their terminal. ``printable()`` shows every such character as a Python escape; the log filter
applies it to every argument of this package's log records.
"""

from __future__ import annotations

import logging

_INVISIBLE = [
    *range(0x00, 0x20),  # C0
    0x7F,  # DEL
    *range(0x80, 0xA0),  # C1
    0x2028,  # line and paragraph separators: new lines to many log viewers
    0x2029,
    0x200E,  # bidi controls: text that reads otherwise than it is
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
_ESCAPES = {code: (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}") for code in _INVISIBLE}
_ESCAPES.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})


def printable(text: str) -> str:
    """``text`` with control characters (C0, C1, line separators, bidi controls) escaped."""
    return text.translate(_ESCAPES)


class PrintableArgs(logging.Filter):
    """Escapes control characters in the string and exception arguments of a log record
    (the format strings are ours; the arguments may come from callers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record.args`` in place; never drops a record."""
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(_printable_arg(arg) for arg in args)
        return True


def _printable_arg(arg: object) -> object:
    if isinstance(arg, str):
        return printable(arg)
    if isinstance(arg, BaseException):
        return printable(str(arg))
    return arg


_FILTER = PrintableArgs()


def install_log_filter() -> None:
    """Put the filter on this package's loggers (once)."""
    for name in ("django_generic_tasks", "django_generic_tasks.worker"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
