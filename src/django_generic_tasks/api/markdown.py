"""Docstrings (reStructuredText, as Sphinx reads them) as Markdown, for OpenAPI descriptions.

Swagger UI and ReDoc render descriptions as Markdown, where ``double backticks``, Sphinx
roles such as :class:`Task` and ``::`` literal blocks show up raw. ``rst_to_markdown`` covers
what docstrings commonly hold: inline literals, roles, links, literal and doctest blocks,
``code-block`` and admonition directives, and ``:param:``-style field lists; paragraphs stay
paragraphs, and anything else passes through unchanged.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

__all__ = ["markdown_descriptions", "rst_to_markdown"]

_ROLE = re.compile(r":(?:[\w-]+:)*(?P<role>[\w-]+):`(?P<body>[^`]+)`")
_LITERAL = re.compile(r"``(?P<body>[^`]+?)``")
_LINK = re.compile(r"`(?P<text>[^`<]+?)\s*<(?P<url>[^`>]+)>`__?")
_REFERENCE = re.compile(r"`(?P<text>[^`<]+)`__?(?![\w`])")
_FIELD = re.compile(r"^:(?P<kind>[\w-]+)(?:\s+(?P<arg>[^:]+))?:\s*(?P<text>.*)$")
_DIRECTIVE = re.compile(r"^\.\.\s+(?P<name>[\w-]+)::\s*(?P<arg>.*)$")
_PLAIN_ROLES = frozenset({"ref", "doc", "term", "abbr", "command", "program", "dfn"})
_CODE_DIRECTIVES = frozenset({"code-block", "code", "sourcecode"})
_FIELD_LABELS = {
    "return": "Returns",
    "returns": "Returns",
    "rtype": "Return type",
    "raise": "Raises",
    "raises": "Raises",
    "param": "",
    "parameter": "",
    "arg": "",
    "argument": "",
    "key": "",
    "keyword": "",
}


def _role(match: re.Match[str]) -> str:
    body = match["body"].strip()
    title = re.match(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>$", body)
    if title:
        body = title["title"]
    elif body.startswith(("~", "!")):
        body = body.lstrip("~!").rsplit(".", 1)[-1]
    else:
        body = body.lstrip("!")
    return body if match["role"] in _PLAIN_ROLES else f"`{body}`"


def _inline(line: str) -> str:
    """Inline markup of one line of text (not of a code block)."""
    line = _ROLE.sub(_role, line)
    line = _LITERAL.sub(lambda m: f"`{m['body']}`", line)
    line = _LINK.sub(lambda m: f"[{m['text']}]({m['url']})", line)
    return _REFERENCE.sub(lambda m: m["text"], line)


def _field(line: str) -> str:
    match = _FIELD.match(line)
    if match is None or match["kind"] not in _FIELD_LABELS:
        return _inline(line)
    label, arg, text = _FIELD_LABELS[match["kind"]], match["arg"], _inline(match["text"])
    if not label:
        return f"- `{(arg or '').split()[-1]}`: {text}" if arg else f"- {text}"
    return f"- {label}{f' `{arg.strip()}`' if arg else ''}: {text}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block(lines: list[str], start: int, base: int) -> tuple[list[str], int]:
    """The lines indented deeper than ``base`` from ``start`` (blank ones kept inside),
    dedented, and the index after them."""
    while start < len(lines) and not lines[start].strip():
        start += 1
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    body = lines[start:end]
    depth = min((_indent(line) for line in body if line.strip()), default=0)
    return [line[depth:] for line in body], end


def _fenced(out: list[str], body: list[str], language: str = "") -> None:
    """Append ``body`` to ``out`` as a fenced code block, with a blank line either side."""
    if out and out[-1]:
        out.append("")
    out += [f"```{language}", *body, "```", ""]


def _dedented(text: str) -> list[str]:
    """``text``'s lines without the docstring's indentation.

    ``inspect.cleandoc`` takes the margin from the lines after the first, which is wrong when
    those are all a deeper-indented literal block; the whitespace before the closing quotes
    (kept up to Python 3.12) gives the real margin, so it wins when present.
    """
    raw = text.expandtabs().splitlines()
    if len(raw) > 1 and raw[-1] and not raw[-1].strip():
        margin = len(raw[-1])
        if all(not line.strip() or line[:margin].isspace() for line in raw[1:]):
            body = [raw[0].strip(), *(line[margin:] for line in raw[1:])]
            return "\n".join(body).strip("\n").splitlines()
    return inspect.cleandoc(text).splitlines()


def rst_to_markdown(text: str | None) -> str:
    """``text`` (a docstring, indentation and all) as Markdown; ``""`` for ``None``."""
    lines = _dedented(text or "")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped, base = line.strip(), _indent(line)
        directive = _DIRECTIVE.match(stripped)
        if directive:
            body, i = _block(lines, i + 1, base)
            name = directive["name"]
            if name in _CODE_DIRECTIVES:
                _fenced(out, body, directive["arg"].strip())
                continue
            title = name.replace("-", " ").capitalize()
            content = [_inline(b) for b in body if not b.lstrip().startswith(":")]
            arg = _inline(directive["arg"].strip())
            first = " ".join(part for part in (f"**{title}:**", arg) if part)
            out += [first, *content] if content else [first]
            continue
        if stripped.startswith(">>>") and (not out or not out[-1].strip()):
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            _fenced(out, [line[base:] for line in lines[i:end]], "python")
            i = end
            continue
        if stripped.endswith("::"):
            head = stripped[:-2].rstrip()
            if head and not stripped[:-2].endswith((" ", "\t")):
                head += ":"
            if head:
                out.append(" " * base + _field(head))
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            body, i = _block(lines, i, base)
            if body:
                _fenced(out, body)
            continue
        if stripped or (out and out[-1]):
            out.append(" " * base + _field(stripped) if stripped else "")
        i += 1
    return "\n".join(out).strip()


def markdown_descriptions(node: Any) -> Any:
    """A JSON schema (or any JSON data) with every ``description`` string as Markdown."""
    if isinstance(node, list):
        return [markdown_descriptions(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: rst_to_markdown(value)
        if key == "description" and isinstance(value, str)
        else markdown_descriptions(value)
        for key, value in node.items()
    }
