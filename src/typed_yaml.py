"""Plain YAML mappings -> frozen dataclasses, by their type hints: one clear error per bad key.

Generic: it knows no params section. `src/config.py` declares the sections and validates them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing

from src.errors import SafetynetError


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build(cls, raw, where: str):
    if not isinstance(raw, dict):
        raise SafetynetError(f"{where or 'top level'}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SafetynetError(
            f"unknown key '{where + '.' if where else ''}{unknown[0]}' (known: {', '.join(fields)})"
        )
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name not in raw:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise SafetynetError(f"{key}: missing key")
        values[name] = coerce(hints[name], raw[name], key)
    return cls(**values)


def coerce(hint, value, key: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(inner[0], value, key)
    if origin is typing.Literal:
        if value not in args:
            raise SafetynetError(f"{key}: '{value}' is not one of {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SafetynetError(f"{key}: expected a list, got {value!r}")
        item = args[0]
        return tuple(coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise SafetynetError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if hint is dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise SafetynetError(f"{key}: '{value}' is not a YYYY-MM-DD date") from None
    if hint is bool:
        if not isinstance(value, bool):
            raise SafetynetError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SafetynetError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SafetynetError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SafetynetError(f"{key}: expected text, got {value!r}")
        return value
    raise TypeError(f"unsupported type {hint} for {key}")
