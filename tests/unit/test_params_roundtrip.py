"""Params round-trip JSON exactly (Hypothesis): dump -> validate, and through real backends."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import django_generic_tasks as tasks
from django_generic_tasks.backends import ImmediateBackend, InMemoryBackend
from django_generic_tasks.core.params import _CAN_OVERRIDE_EXTRA, dump_params, validate_params


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    street: str
    number: int | None = None


class Order(BaseModel):
    id: uuid.UUID
    placed_at: datetime
    due: date
    amount: Decimal
    weight: float
    count: int
    colour: Colour
    level: Level
    address: Address
    history: list[Address]
    tags: list[str]
    counts: dict[str, int]
    note: str | None = None
    wait: timedelta = timedelta(0)
    ship_to: Address | None = None
    label: str = Field(default="", alias="Label")


text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
offsets = st.builds(
    timezone,
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
        lambda m: timedelta(minutes=m)
    ),
)
# JSON (ISO 8601) offsets have whole minutes; Pydantic truncates the seconds of historical
# local-mean-time offsets such as Africa/Monrovia's -0:44:30 before 1972 (a documented limit).
aware = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.one_of(offsets, st.timezones()),
).filter(lambda moment: moment.utcoffset() % timedelta(minutes=1) == timedelta(0))
addresses = st.builds(Address, street=text, number=st.none() | st.integers())
orders = st.builds(
    Order,
    id=st.uuids(),
    placed_at=aware,
    due=st.dates(),
    amount=st.decimals(allow_nan=False, allow_infinity=False),
    weight=st.floats(allow_nan=False, allow_infinity=False),
    count=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    colour=st.sampled_from(Colour),
    level=st.sampled_from(Level),
    address=addresses,
    history=st.lists(addresses, max_size=3),
    tags=st.lists(text, max_size=3),
    counts=st.dictionaries(text, st.integers(min_value=-(2**53), max_value=2**53), max_size=3),
    note=st.none() | text,
    wait=st.timedeltas(min_value=timedelta(days=-999), max_value=timedelta(days=999)),
    ship_to=st.none() | addresses,
    Label=text,
)


def assert_exactly_equal(got: Order, want: Order) -> None:
    """Equal, and equal in the details ``==`` forgives: offsets, Decimal digits, enum types.

    The datetime is compared as wall-clock time plus UTC offset: ``==`` between a zoneinfo
    datetime in a DST fold or gap and a fixed-offset one is always False (PEP 495).
    """
    got_at, want_at = got.placed_at, want.placed_at
    assert got_at.replace(tzinfo=None) == want_at.replace(tzinfo=None)
    assert got_at.utcoffset() == want_at.utcoffset()
    assert got.model_copy(update={"placed_at": want_at}) == want
    assert str(got.amount) == str(want.amount)
    assert type(got.colour) is Colour
    assert type(got.level) is Level
    assert dump_params(got) == dump_params(want)


@given(orders)
def test_params_round_trip_json_exactly(order: Order) -> None:
    assert_exactly_equal(validate_params(Order, dump_params(order)), order)


@given(orders)
def test_params_round_trip_through_dump_then_dict(order: Order) -> None:
    import json

    assert_exactly_equal(validate_params(Order, json.loads(dump_params(order))), order)


seen: list[Order] = []


class OrderTask(tasks.Task[Order]):
    """Records the params it ran with."""

    name = "tests.params_roundtrip.order"

    def run(self) -> None:
        seen.append(self.params)


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders)
def test_params_round_trip_through_the_immediate_backend(order: Order) -> None:
    seen.clear()
    OrderTask(order).start(backend=ImmediateBackend())
    (got,) = seen
    assert got is not order
    assert_exactly_equal(got, order)


@settings(max_examples=50)
@given(st.lists(orders, min_size=1, max_size=3))
def test_params_round_trip_through_the_in_memory_backend(batch: list[Order]) -> None:
    seen.clear()
    backend = InMemoryBackend()
    OrderTask.start_many(batch, backend=backend)
    backend.run_all()
    assert len(seen) == len(batch)
    for got, want in zip(seen, batch, strict=True):
        assert_exactly_equal(got, want)


# --- unknown fields -------------------------------------------------------------------------


class Strict(BaseModel):
    address: Address
    items: list[Address] = []


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")

    street: str


class HoldsLoose(BaseModel):
    loose: Loose


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"address": {"street": "s"}, "typo": 1}, ("typo",)),
        ({"address": {"street": "s", "numbr": 1}}, ("address", "numbr")),
        ({"address": {"street": "s"}, "items": [{"street": "x", "n": 1}]}, ("items", 0, "n")),
    ],
)
@pytest.mark.skipif(not _CAN_OVERRIDE_EXTRA, reason="Pydantic < 2.12 checks the top level only")
@pytest.mark.parametrize("as_json", [False, True])
def test_unknown_fields_are_rejected_at_every_level(
    data: dict[str, Any], loc: tuple[Any, ...], as_json: bool
) -> None:
    import json

    with pytest.raises(ValidationError) as info:
        validate_params(Strict, json.dumps(data) if as_json else data)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(loc, "extra_forbidden")]


@pytest.mark.parametrize("as_json", [False, True])
def test_a_model_that_sets_extra_keeps_its_own_policy(as_json: bool) -> None:
    import json

    data = {"street": "s", "floor": 3}
    got = validate_params(Loose, json.dumps(data) if as_json else data)
    assert got.model_extra == {"floor": 3}


@pytest.mark.parametrize("as_json", [False, True])
def test_a_nested_model_that_sets_extra_keeps_its_policy_and_the_top_still_rejects(
    as_json: bool,
) -> None:
    import json

    nested = {"loose": {"street": "s", "floor": 3}}
    got = validate_params(HoldsLoose, json.dumps(nested) if as_json else nested)
    assert got.loose.model_extra == {"floor": 3}
    bad = {**nested, "typo": 1}
    with pytest.raises(ValidationError, match="extra_forbidden"):
        validate_params(HoldsLoose, json.dumps(bad) if as_json else bad)


class Aliased(BaseModel):
    label: str = Field(alias="Label")


def test_fields_are_read_by_alias_and_the_python_name_is_not_silently_dropped() -> None:
    assert validate_params(Aliased, {"Label": "x"}).label == "x"
    assert validate_params(Aliased, '{"Label": "x"}').label == "x"
    with pytest.raises(ValidationError) as info:
        validate_params(Aliased, {"label": "x"})
    assert {e["type"] for e in info.value.errors()} == {"missing", "extra_forbidden"}


class AliasedWithLoose(BaseModel):
    """Top-level-only checking (a nested model sets ``extra``) still knows aliases."""

    label: str = Field(alias="Label")
    code: str = Field(default="", validation_alias="Code")
    loose: Loose | None = None


@pytest.mark.parametrize("as_json", [False, True])
def test_aliases_are_known_fields_when_only_the_top_level_is_checked(as_json: bool) -> None:
    import json

    data = {"Label": "x", "Code": "c", "loose": {"street": "s", "any": 1}}
    got = validate_params(AliasedWithLoose, json.dumps(data) if as_json else data)
    assert (got.label, got.code) == ("x", "c")
    bad = {**data, "label2": 1}
    with pytest.raises(ValidationError, match="extra_forbidden"):
        validate_params(AliasedWithLoose, json.dumps(bad) if as_json else bad)


def test_invalid_json_is_reported_by_pydantic_in_every_mode() -> None:
    for model in (Strict, AliasedWithLoose, Loose):
        with pytest.raises(ValidationError, match="json_invalid"):
            validate_params(model, "{not json")
