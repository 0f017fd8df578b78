"""Strict construction of config dataclasses from JSON/YAML mappings.

``from_mapping(cls, data, where=...)`` rejects unknown keys and values of the wrong type with one
message naming the place (file, section) and the key; lists become tuples where a field is a tuple.
Range checks stay in each dataclass's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return len(value) == len(args) and all(_type_ok(v, a) for v, a in zip(value, args))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True  # nested dataclasses are built by their owners


def _describe(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def from_mapping(cls: type[T], data: Any, *, where: str, **built: Any) -> T:
    """``cls(**data)`` after checking keys and value types; ``built`` supplies already-built fields."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(names)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        if key in built:
            continue
        if not _type_ok(value, hints[key]):
            raise ValueError(f"{where}: {key} must be {_describe(hints[key])}, got {value!r}")
        values[key] = tuple(value) if typing.get_origin(hints[key]) is tuple else value
    try:
        return cls(**values, **built)
    except TypeError as err:
        raise ValueError(f"{where}: {err}") from None
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
