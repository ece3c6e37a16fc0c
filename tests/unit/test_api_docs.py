"""OpenAPI descriptions are Markdown: docstrings' reStructuredText is converted, not shown raw."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from pydantic import BaseModel, Field

import django_generic_tasks as tasks
from django_generic_tasks.api.markdown import rst_to_markdown

pytestmark = pytest.mark.django_db
URL = "/api/tasks/"


class GreetingParams(BaseModel):
    """Who to greet, as a ``User`` primary key."""

    user_id: int = Field(description="The :attr:`~django.contrib.auth.models.User.pk` to greet.")


class GreetTask(tasks.Task[GreetingParams]):
    """Sends ``hello`` to one :class:`~django.contrib.auth.models.User`.

    Uses :func:`django.core.mail.send_mail` and ``settings.DEFAULT_FROM_EMAIL``; see
    `the e-mail docs <https://docs.djangoproject.com/en/stable/topics/email/>`_.

    Start it like this::

        GreetTask({"user_id": 1}).start()

    :param user_id: the ``User`` to greet
    """

    name = "tests.api_docs.greet"

    def run(self) -> None:
        pass


@pytest.fixture
def openapi() -> dict[str, Any]:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_task_descriptions_in_the_openapi_document_are_markdown(openapi: dict[str, Any]) -> None:
    for path in (f"{URL}{GreetTask.name}", f"{URL}{GreetTask.name}/start"):
        operation = openapi["paths"][path]["post"]
        assert operation["description"] == (
            "Sends `hello` to one `User`.\n"
            "\n"
            "Uses `django.core.mail.send_mail` and `settings.DEFAULT_FROM_EMAIL`; see\n"
            "[the e-mail docs](https://docs.djangoproject.com/en/stable/topics/email/).\n"
            "\n"
            "Start it like this:\n"
            "\n"
            "```\n"
            'GreetTask({"user_id": 1}).start()\n'
            "```\n"
            "\n"
            "- `user_id`: the `User` to greet"
        )
    assert openapi["paths"][f"{URL}{GreetTask.name}"]["post"]["summary"] == (
        "Sends `hello` to one `User`."
    )


def test_params_descriptions_in_the_openapi_document_are_markdown(
    openapi: dict[str, Any],
) -> None:
    body = openapi["paths"][f"{URL}{GreetTask.name}"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["description"] == "Who to greet, as a `User` primary key."
    assert schema["properties"]["user_id"]["description"] == "The `pk` to greet."


def test_no_description_in_the_openapi_document_shows_raw_restructuredtext(
    openapi: dict[str, Any],
) -> None:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"description", "summary"} and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(openapi)
    assert found
    rst = re.compile(r"(?<!`)``(?!`)|:(class|func|meth|attr|mod|ref):`")
    raw = [text for text in found if rst.search(text)]
    assert raw == []
    run_out = openapi["components"]["schemas"]["RunOut"]["description"]
    assert "`POST <mount>/<Task.name>`" in run_out


@pytest.mark.parametrize(
    ("rst", "markdown"),
    [
        ("``x``", "`x`"),
        (":class:`~a.b.C`", "`C`"),
        (":py:meth:`a.B.c`", "`a.B.c`"),
        (":ref:`retries <retry-policy>`", "retries"),
        (":class:`the task <a.Task>`", "`the task`"),
        ("`text <https://e.com/>`_", "[text](https://e.com/)"),
        ("A\nB\n\nC", "A\nB\n\nC"),
        ("A.\n\nExample::\n\n    code()\n", "A.\n\nExample:\n\n```\ncode()\n```"),
        ("A.\n\nExample ::\n\n    code()\n", "A.\n\nExample\n\n```\ncode()\n```"),
        ("A.\n\n::\n\n    code()\n", "A.\n\n```\ncode()\n```"),
        (">>> 1 + 1\n2", "```python\n>>> 1 + 1\n2\n```"),
        ("A.\n\n.. code-block:: python\n\n    x = 1\n", "A.\n\n```python\nx = 1\n```"),
        (".. note:: Runs ``once``.", "**Note:** Runs `once`."),
        (":returns: the ``sum``", "- Returns: the `sum`"),
        (":raises ValueError: when bad", "- Raises `ValueError`: when bad"),
        ("Plain *emphasis* and **strong** stay.", "Plain *emphasis* and **strong** stay."),
        (None, ""),
    ],
)
def test_rst_to_markdown(rst: str | None, markdown: str) -> None:
    assert rst_to_markdown(rst) == markdown


def test_docstring_indentation_does_not_turn_paragraphs_into_code_blocks() -> None:
    doc = """First line.

        Second paragraph, indented in the source
        by eight spaces.
        """
    assert rst_to_markdown(doc) == (
        "First line.\n\nSecond paragraph, indented in the source\nby eight spaces."
    )


def test_a_docstring_whose_only_other_paragraph_is_a_literal_block_keeps_it() -> None:
    doc = "Run it like this::\n\n        Task().start()\n    "  # as Python 3.12 keeps it
    assert rst_to_markdown(doc) == "Run it like this:\n\n```\nTask().start()\n```"


class QuoteOut(BaseModel):
    total: int


class TypedTask(tasks.Task[GreetingParams, QuoteOut]):
    """Returns a typed result."""

    name = "tests.api_docs.typed"

    def run(self) -> QuoteOut:
        return QuoteOut(total=self.params.user_id)


def test_a_typed_task_documents_its_result_type(openapi: dict[str, Any]) -> None:
    responses = openapi["paths"][f"{URL}{TypedTask.name}"]["post"]["responses"]
    name = responses["200"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    result = openapi["components"]["schemas"][name]["properties"]["result"]
    assert {"$ref": "#/components/schemas/QuoteOut"} in result["anyOf"]
    assert openapi["components"]["schemas"]["QuoteOut"]["properties"]["total"]["type"] == "integer"
    untyped = openapi["paths"][f"{URL}{GreetTask.name}"]["post"]["responses"]["200"]
    assert untyped["content"]["application/json"]["schema"]["$ref"].endswith("/RunOut")
