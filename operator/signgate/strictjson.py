"""Strict JSON for everything signgate reads from others (registries, signers, the apiserver).

JSON must be UTF-8 without a byte order mark, must not repeat a key anywhere (two parsers that pick
different duplicates are a classic signature and admission bypass), and must not contain
NaN/Infinity or floats that overflow.
"""

from __future__ import annotations

import json
import math
import re
from typing import NoReturn

from signgate.errors import SigngateError, truncate

ErrorType = type[SigngateError]


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        key.encode("utf-8")  # a lone-surrogate key raises UnicodeEncodeError, a ValueError
        if key in obj:
            raise ValueError(f"duplicate key {truncate(key, 64)!r}")
        obj[key] = value
    return obj


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # The common case, at C speed: only when sizes differ is there a duplicate to name.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        return _reject_duplicates(pairs)
    return obj


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""A JSON escape of a UTF-16 surrogate: the only way a key can hold a lone surrogate."""


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {truncate(text, 32)} overflows")
    return value


def loads(raw: bytes | str, *, what: str, error: ErrorType) -> object:
    """Decode strict JSON.

    Args:
        raw: UTF-8 bytes (no BOM) or text.
        what: what the document is, for the message (``"sigstore bundle"``).
        error: the `SigngateError` subclass to raise.

    Returns:
        The decoded value (dicts, lists, str, int, float, bool, None).

    Raises:
        SigngateError: of type ``error`` when the input is not strict JSON.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if text.startswith("\ufeff"):
            _reject_constant("a byte order mark")
        return json.loads(
            text,
            # Text decoded from UTF-8 holds no lone surrogate, so only an escape can make one.
            object_pairs_hook=(
                _unique_keys
                if isinstance(raw, bytes) and not _SURROGATE_ESCAPE.search(text)
                else _reject_duplicates
            ),
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    # RecursionError: absurdly deep nesting; ValueError covers JSONDecodeError, UnicodeDecodeError
    # and the interpreter's int-digits limit.
    except (ValueError, RecursionError) as exc:
        raise error(f"{what} is not valid JSON: {truncate(str(exc), 120)}") from exc


def json_kind(value: object) -> str:
    """Name a decoded JSON value's type the way a JSON user would."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__  # pragma: no cover - json only produces the types above
