"""Validating and serialising task params (Pydantic models) so they round-trip JSON exactly.

Unknown fields are rejected, at every level of nesting, unless a model sets ``extra`` in its
``model_config``: a typo in a param name must not silently lose data.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails

# Pydantic >= 2.12 can forbid unknown fields for one validation call, nested models included.
_CAN_OVERRIDE_EXTRA = "extra" in inspect.signature(BaseModel.model_validate_json).parameters


def validate_params[P: BaseModel](model: type[P], data: P | Mapping[str, Any] | str | bytes) -> P:
    """Return ``data`` as an instance of ``model``, validating dicts and JSON.

    Unknown fields raise ``ValidationError`` (``extra_forbidden``) unless the model, or the
    nested model they belong to, sets ``extra`` in its ``model_config``.
    """
    if type(data) is str or isinstance(data, str | bytes):  # str first: the hot path
        mode = _unknown_fields_mode(model)
        if mode == "forbid":  # model_validate_json(data, extra="forbid"), minus its plumbing
            return model.__pydantic_validator__.validate_json(data, extra="forbid")  # type: ignore[no-any-return]
        if mode == "top-level":
            _raise_on_unknown_json_fields(model, data)
        return model.model_validate_json(data)
    if isinstance(data, model):
        return data
    mode = _unknown_fields_mode(model)
    if isinstance(data, BaseModel):
        raise TypeError(
            f"{model.__name__} expected, got an instance of {type(data).__name__}; "
            f"pass a {model.__name__} or a dict of its fields."
        )
    if not isinstance(data, Mapping):
        raise TypeError(
            f"{model.__name__} params must be a {model.__name__} or a mapping, "
            f"not {type(data).__name__}."
        )
    as_dict = data if isinstance(data, dict) else dict(data)
    if mode == "forbid":
        return model.model_validate(as_dict, extra="forbid")
    if mode == "top-level":
        _raise_on_unknown_fields(model, as_dict)
    return model.model_validate(as_dict)


def dump_params(params: BaseModel) -> str:
    """Serialise params to the JSON text that ``validate_params`` reads back."""
    # what model_dump_json(by_alias=True) does, minus its keyword-argument plumbing (hot path)
    return params.__pydantic_serializer__.to_json(params, by_alias=True).decode()


@cache
def _unknown_fields_mode(model: type[BaseModel]) -> str:
    """``"allow"``: the model decides; ``"forbid"``: reject everywhere; ``"top-level"``: only
    at the top (a nested model sets ``extra`` itself, or Pydantic is too old to override)."""
    if "extra" in model.model_config:
        return "allow"
    if _CAN_OVERRIDE_EXTRA and not any(
        "extra" in nested.model_config for nested in _nested_models(model)
    ):
        return "forbid"
    return "top-level"


def _nested_models(model: type[BaseModel]) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    pending: list[Any] = [info.annotation for info in model.model_fields.values()]
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found and annotation is not model:
                found.add(annotation)
                pending.extend(info.annotation for info in annotation.model_fields.values())
            continue
        pending.extend(get_args(annotation))
    return found


def _known_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for field_name, info in model.model_fields.items():
        names.add(field_name)
        if info.alias:
            names.add(info.alias)
        if isinstance(info.validation_alias, str):
            names.add(info.validation_alias)
    return names


def _raise_on_unknown_json_fields(model: type[BaseModel], data: str | bytes) -> None:
    import json

    try:
        decoded = json.loads(data)
    except ValueError:
        return  # model_validate_json words the JSON error
    if isinstance(decoded, dict):
        _raise_on_unknown_fields(model, decoded)


def _raise_on_unknown_fields(model: type[BaseModel], data: Mapping[str, Any]) -> None:
    unknown = [key for key in data if key not in _known_names(model)]
    if unknown:
        errors = [
            InitErrorDetails(type="extra_forbidden", loc=(key,), input=data[key]) for key in unknown
        ]
        raise ValidationError.from_exception_data(model.__name__, errors)
