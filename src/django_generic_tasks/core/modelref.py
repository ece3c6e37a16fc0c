"""``ModelRef[Model]``: a Django model instance as a params field, sent as its primary key.

Callers pass an instance (or its pk); the JSON carries the pk only. Validated from JSON, a field
holds a ``PendingRef`` until the execution path calls ``resolve_model_refs()`` in the worker,
inside the attempt: every reference of a params object is loaded in one query per model.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_args

from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

from ..exceptions import ModelNotFoundError

if TYPE_CHECKING:
    from django.db.models import Model

__all__ = ["ModelNotFoundError", "ModelRef", "PendingRef", "has_model_refs", "resolve_model_refs"]

M = TypeVar("M", bound="Model")


class PendingRef:
    """A reference read from JSON and not loaded yet: the model class and the primary key."""

    __slots__ = ("model", "pk")

    def __init__(self, model: type[Model], pk: Any) -> None:
        self.model = model
        self.pk = pk

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PendingRef):
            return self.model is other.model and self.pk == other.pk
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.model, self.pk))

    def __repr__(self) -> str:
        return f"<{self.model.__name__} pk={self.pk!r} (not loaded)>"


class _RefMarker:
    """The ``Annotated`` metadata of ``ModelRef[M]``: builds the field's core schema."""

    __slots__ = ("model",)

    def __init__(self, model: type[Model]) -> None:
        self.model = model

    def __repr__(self) -> str:
        return f"ModelRef[{self.model.__name__}]"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        model = self.model
        pk_schema = _pk_schema(model)
        label = model._meta.label

        def from_pk(pk: Any) -> PendingRef:
            if type(pk) is str and "\x00" in pk:  # PostgreSQL refuses NUL in any query
                raise PydanticCustomError(
                    "model_ref_nul", "a {label} key never holds a NUL character", {"label": label}
                )
            return PendingRef(model, pk)

        def from_python(value: Any) -> Any:
            if isinstance(value, model):
                if value.pk is None or value._state.adding:
                    raise PydanticCustomError(
                        "unsaved_instance",
                        "{label} instance is not saved; save it before starting a task with it",
                        {"label": label},
                    )
                return value
            if isinstance(value, PendingRef):
                if value.model is not model:
                    raise PydanticCustomError(
                        "model_ref_type",
                        "expected a reference to {label}",
                        {"label": label},
                    )
                return value
            if isinstance(value, BaseModel) or hasattr(value, "_meta"):
                raise PydanticCustomError(
                    "model_ref_type",
                    "expected a {label} instance or its primary key, got {got}",
                    {"label": label, "got": type(value).__name__},
                )
            return from_pk(_pk_validator(model).validate_python(value))

        def to_pk(value: Any) -> Any:
            pk = value.pk
            if pk is None:
                raise ValueError(f"{label} instance is not saved; it has no primary key.")
            return pk

        json = core_schema.chain_schema(
            [pk_schema, core_schema.no_info_plain_validator_function(from_pk)]
        )
        return core_schema.json_or_python_schema(
            json_schema=json,
            python_schema=core_schema.no_info_plain_validator_function(
                from_python, json_schema_input_schema=pk_schema
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                to_pk, return_schema=pk_schema, when_used="always"
            ),
        )


if TYPE_CHECKING:
    ModelRef = Annotated[M, _RefMarker]
    """``ModelRef[User]`` is ``User`` to type checkers."""
else:

    class ModelRef:
        """A params field type: ``tasks.ModelRef[User]`` holds a ``User``, sent as its pk.

        ``run()`` receives the instance, loaded when the task runs (all references of the
        params in one query per model). A row that no longer exists ends the run as discarded
        with ``ModelNotFoundError``, unless the task sets ``missing_models_fail = True``.
        """

        def __class_getitem__(cls, model: type[Model]) -> Any:
            if not (isinstance(model, type) and hasattr(model, "_meta")):
                raise TypeError(f"ModelRef[...] takes a Django model class, not {model!r}.")
            return Annotated[model, _RefMarker(model)]


@cache
def _pk_validator(model: type[Model]) -> Any:
    from pydantic_core import SchemaValidator

    return SchemaValidator(_pk_schema(model))


def _pk_schema(model: type[Model]) -> core_schema.CoreSchema:
    """The core schema of ``model``'s primary key (following a parent link or a FK pk)."""
    from django.db import models

    field: Any = model._meta.pk
    while field is not None and field.is_relation:
        field = field.target_field
    if isinstance(field, models.UUIDField):
        return core_schema.uuid_schema()
    if isinstance(field, models.IntegerField | models.AutoField):
        low, high = _integer_range(field)
        return core_schema.int_schema(strict=False, ge=low, le=high)
    return core_schema.str_schema()


def _integer_range(field: Any) -> tuple[int, int]:
    """The values ``field``'s column holds (Django's ranges per field type; 64 bits when the
    type is not listed), so an out-of-range pk is a validation error, never a database one."""
    from django.db.backends.base.operations import BaseDatabaseOperations

    ranges = BaseDatabaseOperations.integer_field_ranges
    return ranges.get(field.get_internal_type(), ranges["BigIntegerField"])


def has_model_refs(model: type[BaseModel]) -> bool:
    """Whether ``model`` (or a model nested in it) has a ``ModelRef`` field.

    True also while a model is not complete (a forward reference not resolved yet): loading
    then costs a walk over the params that finds nothing.
    """
    found = _known_refs.get(model)
    if found is None:
        found = _has_model_refs(model)
        if found is not None:
            _known_refs[model] = found
    return found is not False


_known_refs: dict[type[BaseModel], bool] = {}


def _has_model_refs(model: type[BaseModel]) -> bool | None:
    seen: set[type[BaseModel]] = set()
    pending: list[Any] = [model]
    while pending:
        item = pending.pop()
        if isinstance(item, _RefMarker):
            return True
        if isinstance(item, type) and issubclass(item, BaseModel):
            if item in seen:
                continue
            if not item.__pydantic_complete__:
                return None
            seen.add(item)
            for info in item.model_fields.values():
                pending.extend(info.metadata)
                pending.append(info.annotation)
            continue
        pending.extend(get_args(item))
        pending.extend(getattr(item, "__metadata__", ()))
    return False


def resolve_model_refs(params: BaseModel) -> None:
    """Load every ``PendingRef`` of ``params`` in place (one query per model).

    Raises ``ModelNotFoundError`` naming the model and pk of a row that does not exist.
    """
    found: dict[type[Model], set[Any]] = defaultdict(set)
    _collect(params, found)
    if not found:
        return
    loaded: dict[type[Model], dict[Any, Model]] = {}
    for model, pks in found.items():
        rows = model._default_manager.in_bulk(list(pks))
        missing = sorted((pk for pk in pks if pk not in rows), key=str)
        if missing:
            raise ModelNotFoundError(
                # repr: a caller's string pk cannot put a new line into a log line
                f"{model._meta.label} with pk {', '.join(_quoted(pk) for pk in missing)} "
                f"does not exist (any more); the run's reference cannot be loaded."
            )
        loaded[model] = rows
    _replace_fields(params, loaded)


def _quoted(pk: Any) -> str:
    return repr(pk) if isinstance(pk, str) else str(pk)


def _collect(value: Any, found: dict[type[Model], set[Any]]) -> None:
    if isinstance(value, PendingRef):
        found[value.model].add(value.pk)
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _collect(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect(item, found)


def _replace_fields(model: BaseModel, loaded: dict[type[Model], dict[Any, Model]]) -> None:
    fields = model.__dict__
    for name, value in fields.items():
        fields[name] = _replaced(value, loaded)


def _replaced(value: Any, loaded: dict[type[Model], dict[Any, Model]]) -> Any:
    if isinstance(value, PendingRef):
        return loaded[value.model][value.pk]
    if isinstance(value, BaseModel):
        _replace_fields(value, loaded)
        return value
    if isinstance(value, dict):
        return type(value)((key, _replaced(item, loaded)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return type(value)(_replaced(item, loaded) for item in value)
    if isinstance(value, set | frozenset):
        return type(value)(_replaced(item, loaded) for item in value)
    return value
