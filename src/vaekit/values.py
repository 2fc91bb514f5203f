"""Typed values from text: a ``key=value`` string from the command line, or a JSON/YAML value,
converted to the type a settings field declares (:mod:`vaekit.config`), with one-line errors."""

from __future__ import annotations

import json
import math
import typing
from typing import Any, Literal

from vaekit.errors import ConfigError


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (a string from the command line, or a JSON/YAML value) to type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:  # Optional[X], or one of several types (compile: true, false or auto)
        return _coerce_union(value, args, key)
    if origin is Literal:
        text = value if isinstance(value, str) else json.dumps(value)
        if text not in args:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, args))}, not {text!r}")
        return text
    if origin is tuple:
        if isinstance(value, str):
            parts = [p for p in value.replace(" ", "").split(",")]
        elif isinstance(value, (list, tuple)):
            parts = list(value)
        else:
            parts = [value]
        if not parts or any(p == "" for p in parts):
            raise ConfigError(f"{key} must be a comma-separated list, e.g. 200,200; got {value!r}")
        return tuple(coerce(p, args[0], key) for p in parts)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"{key} must be true or false, not {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be an integer, not {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{key} must be an integer, not {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be a number, not {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, not {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{key} must be a finite number, not {value!r}")
        return number
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key} must be a string, not {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - all fields are covered above


def _coerce_union(value: Any, args: tuple, key: str) -> Any:
    if type(None) in args:  # Optional[X]
        none = value is None or (isinstance(value, str) and value.lower() in ("none", "null", ""))
        return None if none else coerce(value, [a for a in args if a is not type(None)][0], key)
    for alternative in args:  # the first type that takes the value (compile: a bool or "auto")
        try:
            return coerce(value, alternative, key)
        except ConfigError:
            pass
    raise ConfigError(f"{key} must be one of true, false, auto; not {value!r}")
