"""Loading a stack's configuration from the flat map Pulumi passes, and reporting what is wrong with it:
one line per problem, `pgf-backup:<key path>: <what is wrong and what is allowed>`."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from pgf_backup.config.stack import ROLE_MODELS, StackConfig
from pgf_backup.constants import CONFIG_NAMESPACE


class ConfigError(Exception):
    """A stack's configuration is invalid; the message names each key path and what is allowed."""


# ---------------------------------------------------------------------------------------------
# Loading and error reporting


def _parse_value(raw: Any) -> Any:
    # Pulumi hands structured config to programs as JSON text; plain values stay strings.
    if isinstance(raw, str) and raw[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def namespace_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keys of our namespace from a flat `namespace:key -> value` map, values parsed."""
    prefix = CONFIG_NAMESPACE + ":"
    return {key[len(prefix) :]: _parse_value(value) for key, value in config.items() if key.startswith(prefix)}


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _strip(annotation: Any) -> Any:
    """The type under Annotated[...] and Optional[...]."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            inner = [a for a in get_args(annotation) if a is not type(None)]
            annotation = inner[0] if len(inner) == 1 else next((a for a in inner if _is_model(a)), inner[0])
        else:
            return annotation


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class reached by walking a validation error's location from `model`."""
    current: Any = model
    for part in loc:
        current = _strip(current)
        if _is_model(current):
            fields = current.model_fields
            field = fields.get(str(part)) or next((f for f in fields.values() if f.alias == part), None)
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) in (list, tuple):
            current = get_args(current)[0]
        else:
            return None
    current = _strip(current)
    return current if _is_model(current) else None


def _field_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> Any:
    """The annotation of the field at `loc` (its parent reached by `_model_at`), or None."""
    parent = _model_at(model, loc[:-1]) if loc else None
    field = parent.model_fields.get(str(loc[-1])) if parent else None
    return field.annotation if field else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


_ROLES = ", ".join(ROLE_MODELS)
_STACK = TypeAdapter[StackConfig](StackConfig)


def _unknown_key(role: str, loc: tuple[int | str, ...]) -> str:
    """A key refused where it stands: a key of another role's stacks, or a key no model has (a typo?)."""
    model = ROLE_MODELS[role]
    key = str(loc[-1])
    owners = [name for name, other in ROLE_MODELS.items() if len(loc) == 1 and key in other.model_fields]
    if owners:
        return model.foreign_key(role, key, owners)
    parent = _model_at(model, loc[:-1])
    allowed = _keys_of(parent) if parent else []
    # At the top, a misspelt key of another role is worth naming too (with whose it is).
    others: dict[str, list[str]] = {}
    if len(loc) == 1:
        for name, other in ROLE_MODELS.items():
            for field in other.model_fields:
                others.setdefault(field, []).append(name)
    close = difflib.get_close_matches(key, [*allowed, *(k for k in others if k not in allowed)], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    if close and close[0] not in allowed:
        hint += f" ({close[0]!r} is a key of {' and '.join(others[close[0]])} stacks)"
    return f"unknown key.{hint} Allowed keys here: {', '.join(allowed)}"


def format_errors(error: ValidationError) -> str:
    """One line per problem: `pgf-backup:<key path>: <what is wrong and what is allowed>`."""
    lines = []
    for item in error.errors():
        loc = item["loc"]
        # The discriminated union puts the role first in each location: the key path starts after it.
        role = str(loc[0]) if loc and loc[0] in ROLE_MODELS else None
        loc = loc[1:] if role else loc
        path = ".".join(str(part) for part in loc)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "union_tag_not_found":
            path, message = "role", f"required key is missing; allowed: {_ROLES}"
        elif item["type"] == "union_tag_invalid":
            path, message = "role", f"{item['ctx']['tag']!r} is not allowed; expected one of: {_ROLES}"
        elif item["type"] == "extra_forbidden" and role:
            message = _unknown_key(role, loc)
        elif item["type"] == "missing":
            message = "required key is missing"
            field = _field_at(ROLE_MODELS[role], loc) if role else None
            if field is not None and get_origin(_strip(field)) is Literal:
                message += f"; allowed: {', '.join(map(str, get_args(_strip(field))))}"
        elif item["type"] == "literal_error":
            message = f"{item.get('input')!r} is not allowed; {message[0].lower()}{message[1:]}"
        elif item["type"] == "string_pattern_mismatch":
            message = f"{item.get('input')!r} does not match the allowed pattern {item['ctx']['pattern']}"
        if path:
            lines.append(f"{CONFIG_NAMESPACE}:{path}: {message}")
        else:  # cross-key checks: each line already starts with its key path
            lines.extend(f"{CONFIG_NAMESPACE}:{line}" for line in message.splitlines())
    return "\n".join(dict.fromkeys(lines))


def load(config: Mapping[str, Any], source: str = "stack config") -> StackConfig:
    """Validate a flat Pulumi config map (`pgf-backup:key -> value`) into a `StackConfig`."""
    try:
        return _STACK.validate_python(namespace_values(config))
    except ValidationError as error:
        raise ConfigError(f"invalid configuration in {source}:\n{format_errors(error)}") from None


def load_from_pulumi() -> StackConfig:
    """Read the running program's stack config (as the Pulumi language host passes it)."""
    import pulumi
    import pulumi.runtime.config as runtime_config

    flat = {**pulumi.runtime.get_config_env(), **runtime_config.CONFIG.get()}
    return load(flat, source=f"Pulumi.{pulumi.get_stack()}.yaml")
