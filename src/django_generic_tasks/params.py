"""Validating and serialising task params (Pydantic models) so they round-trip JSON exactly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails


def validate_params[P: BaseModel](model: type[P], data: P | Mapping[str, Any] | str | bytes) -> P:
    """Return ``data`` as an instance of ``model``, validating dicts and JSON.

    Unknown fields are rejected unless the model sets ``extra`` in its ``model_config``
    (a typo in a param name must not silently lose data).
    """
    if isinstance(data, model):
        return data
    if isinstance(data, str | bytes):
        if _rejects_unknown_fields(model):
            return _validate_json(model, data)
        return model.model_validate_json(data)
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
    if _rejects_unknown_fields(model):
        _raise_on_unknown_fields(model, data)
    return model.model_validate(dict(data))


def dump_params(params: BaseModel) -> str:
    """Serialise params to the JSON text that ``validate_params`` reads back."""
    return params.model_dump_json(by_alias=True)


def _validate_json[P: BaseModel](model: type[P], data: str | bytes) -> P:
    import json

    try:
        decoded = json.loads(data)
    except ValueError:
        return model.model_validate_json(data)  # let Pydantic word the JSON error
    if isinstance(decoded, dict):
        _raise_on_unknown_fields(model, decoded)
    return model.model_validate_json(data)


def _rejects_unknown_fields(model: type[BaseModel]) -> bool:
    return "extra" not in model.model_config


def _known_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for field_name, info in model.model_fields.items():
        names.add(field_name)
        if info.alias:
            names.add(info.alias)
        if isinstance(info.validation_alias, str):
            names.add(info.validation_alias)
    return names


def _raise_on_unknown_fields(model: type[BaseModel], data: Mapping[str, Any]) -> None:
    unknown = [key for key in data if key not in _known_names(model)]
    if unknown:
        errors = [
            InitErrorDetails(type="extra_forbidden", loc=(key,), input=data[key]) for key in unknown
        ]
        raise ValidationError.from_exception_data(model.__name__, errors)
