"""``tasks.ModelRef[Model]``: params that carry a model's pk and give ``run()`` the instance."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import django_generic_tasks as tasks
from django_generic_tasks.backends import ImmediateBackend
from django_generic_tasks.core.modelref import PendingRef
from django_generic_tasks.core.params import dump_params, validate_params
from django_generic_tasks.core.status import TaskStatus
from django_generic_tasks.execution import Attempt, execute
from tests.testapp.models import Country, Customer, Gadget

pytestmark = pytest.mark.django_db

seen: list[Any] = []


class Plain(BaseModel):
    n: int


class Inner(BaseModel):
    country: tasks.ModelRef[Country]


class RefParams(BaseModel):
    customer: tasks.ModelRef[Customer]
    gadgets: list[tasks.ModelRef[Gadget]] = []
    extra_customers: list[tasks.ModelRef[Customer]] = []
    maybe: tasks.ModelRef[Country] | None = None
    inner: Inner | None = None


class GreetCustomer(tasks.Task[RefParams]):
    name = "tests.modelref.greet"

    def run(self) -> str:
        seen.append(self.params)
        return self.params.customer.name


class StrictGreet(tasks.Task[RefParams]):
    name = "tests.modelref.strict"
    missing_models_fail = True
    max_attempts = 2
    backoff_base = 0

    def run(self) -> None:
        seen.append(self.params)


class PlainTask(tasks.Task[Plain]):
    name = "tests.modelref.plain"

    def run(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _clear() -> None:
    seen.clear()


def test_dump_emits_the_primary_key_only() -> None:
    customer = Customer.objects.create(name="Ann")
    gadget = Gadget.objects.create(label="g")
    params = RefParams(customer=customer, gadgets=[gadget], maybe=Country.objects.create(code="FR"))
    assert json.loads(dump_params(params)) == {
        "customer": customer.pk,
        "gadgets": [str(gadget.pk)],
        "extra_customers": [],
        "maybe": "FR",
        "inner": None,
    }


def test_a_pk_is_accepted_in_place_of_an_instance() -> None:
    params = validate_params(RefParams, {"customer": 7})
    assert params.customer == PendingRef(Customer, 7)
    assert json.loads(dump_params(params))["customer"] == 7


def test_json_round_trip_is_exact_with_references() -> None:
    customer = Customer.objects.create(name="Ann")
    gadget = Gadget.objects.create(label="g")
    country = Country.objects.create(code="DE")
    text = dump_params(RefParams(customer=customer, gadgets=[gadget], inner=Inner(country=country)))
    assert dump_params(validate_params(RefParams, text)) == text


def test_run_receives_instances_loaded_in_one_query_per_model() -> None:
    customers = [Customer.objects.create(name=f"c{i}") for i in range(3)]
    gadgets = [Gadget.objects.create(label=f"g{i}") for i in range(5)]
    country = Country.objects.create(code="IT", name="Italy")
    text = dump_params(
        RefParams(
            customer=customers[0],
            extra_customers=customers[1:],
            gadgets=gadgets,
            maybe=country,
            inner=Inner(country=country),
        )
    )
    with CaptureQueriesContext(connection) as queries:
        outcome = execute(Attempt(task_name=GreetCustomer.name, params=text, run_id="r1"))
    assert outcome.status is TaskStatus.SUCCEEDED, outcome.error
    assert outcome.result == "c0"
    assert len(queries) == 3  # Customer, Gadget, Country: one each, however many references
    params = seen[0]
    assert params.customer == customers[0]
    assert params.extra_customers == customers[1:]
    assert params.gadgets == gadgets
    assert params.maybe == country
    assert params.inner.country == country
    assert isinstance(params.gadgets[0], Gadget)


def test_a_deleted_row_discards_the_run_naming_model_and_pk() -> None:
    customer = Customer.objects.create(name="Ann")
    text = dump_params(RefParams(customer=customer))
    pk = customer.pk
    customer.delete()
    outcome = execute(
        Attempt(task_name=GreetCustomer.name, params=text, run_id="r2", max_attempts=3)
    )
    assert outcome.status is TaskStatus.DISCARDED
    assert outcome.error is not None
    assert outcome.error.type == "django_generic_tasks.exceptions.ModelNotFoundError"
    assert "testapp.Customer" in outcome.error.message
    assert str(pk) in outcome.error.message
    assert seen == []


def test_a_deleted_uuid_row_is_named_in_the_error() -> None:
    gadget = Gadget.objects.create(label="g")
    text = dump_params(RefParams(customer=Customer.objects.create(), gadgets=[gadget]))
    pk = gadget.pk
    gadget.delete()
    outcome = execute(Attempt(task_name=GreetCustomer.name, params=text, run_id="r3"))
    assert outcome.status is TaskStatus.DISCARDED
    assert outcome.error is not None
    assert f"testapp.Gadget with pk {pk} " in outcome.error.message


def test_missing_models_fail_makes_a_missing_row_a_retried_failure() -> None:
    customer = Customer.objects.create(name="Ann")
    text = dump_params(RefParams(customer=customer))
    customer.delete()
    first = execute(Attempt(task_name=StrictGreet.name, params=text, run_id="r4", attempt=1))
    assert (first.status, first.will_retry) == (TaskStatus.FAILED, True)
    last = execute(Attempt(task_name=StrictGreet.name, params=text, run_id="r4", attempt=2))
    assert last.status is TaskStatus.FAILED
    assert last.error is not None
    assert last.error.type.endswith("ModelNotFoundError")


def test_unsaved_instances_are_refused_before_start() -> None:
    with pytest.raises(ValidationError, match=r"testapp.Customer instance is not saved"):
        GreetCustomer(RefParams(customer=Customer(name="new"))).start(backend=ImmediateBackend())
    with pytest.raises(ValidationError, match=r"testapp.Gadget instance is not saved"):
        GreetCustomer({"customer": 1, "gadgets": [Gadget(label="has a default pk")]})


def test_an_instance_of_another_model_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"expected a testapp.Customer instance"):
        RefParams(customer=Country.objects.create(code="ES"))


def test_a_bad_pk_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        validate_params(RefParams, '{"customer": 1, "gadgets": ["not-a-uuid"]}')
    with pytest.raises(ValidationError, match="int_parsing"):
        GreetCustomer({"customer": "abc"})


def test_start_on_the_immediate_backend_runs_with_instances() -> None:
    customer = Customer.objects.create(name="Bo")
    gadget = Gadget.objects.create(label="g")
    handle = GreetCustomer(RefParams(customer=customer.pk, gadgets=[gadget.pk])).start(
        backend=ImmediateBackend(), on_commit=False
    )
    assert handle.status is TaskStatus.SUCCEEDED
    assert seen[0].customer == customer
    assert seen[0].gadgets == [gadget]


def test_tasks_decide_at_definition_whether_to_load_references() -> None:
    assert GreetCustomer._has_model_refs
    assert not PlainTask._has_model_refs


def test_openapi_schema_shows_the_pk_types() -> None:
    schema = Client().get("/api/openapi.json").json()
    paths = [path for path in schema["paths"] if path.endswith(f"/{GreetCustomer.name}")]
    body = schema["paths"][paths[0]]["post"]["requestBody"]["content"]["application/json"]
    properties = body["schema"]["properties"]
    assert properties["customer"]["type"] == "integer"
    assert properties["gadgets"]["items"] == {"type": "string", "format": "uuid"}
    assert {"type": "string"} in properties["maybe"]["anyOf"]


def test_model_ref_refuses_what_is_not_a_model() -> None:
    with pytest.raises(TypeError, match="Django model class"):
        tasks.ModelRef[int]


def test_a_text_pk_with_a_nul_character_is_refused_at_validation() -> None:
    # No row can have it, and PostgreSQL refuses NUL in any query (a 500 over HTTP).
    with pytest.raises(ValidationError, match="NUL"):
        validate_params(RefParams, '{"customer": 1, "maybe": "F\\u0000"}')


def test_round_trip_of_a_uuid_pk_keeps_its_type() -> None:
    key = uuid.uuid4()
    params = validate_params(RefParams, {"customer": 1, "gadgets": [str(key)]})
    assert params.gadgets == [PendingRef(Gadget, key)]


@settings(max_examples=50)
@given(
    customer=st.integers(min_value=1, max_value=2**63 - 1),
    gadgets=st.lists(st.uuids()),
    country=st.none()
    | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=2),
)
def test_json_of_references_round_trips_exactly(
    customer: int, gadgets: list[uuid.UUID], country: str | None
) -> None:
    text = json.dumps(
        {
            "customer": customer,
            "gadgets": [str(g) for g in gadgets],
            "extra_customers": [],
            "maybe": country,
            "inner": None,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert dump_params(validate_params(RefParams, text)) == text


class LaterParams(BaseModel):
    customer: tasks.ModelRef[Customer]
    later: Later | None = None  # defined below: the model is not complete yet


class LaterTask(tasks.Task[LaterParams]):
    name = "tests.modelref.later"

    def run(self) -> None:
        seen.append(self.params.customer)


class Later(BaseModel):
    x: int


def test_references_load_when_the_params_model_was_incomplete_at_definition() -> None:
    customer = Customer.objects.create(name="Cy")
    outcome = execute(
        Attempt(task_name=LaterTask.name, params=f'{{"customer": {customer.pk}}}', run_id="r5")
    )
    assert outcome.status is TaskStatus.SUCCEEDED, outcome.error
    assert seen == [customer]
