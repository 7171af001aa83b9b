"""Conditions on an attestation's predicate: a field, and what its value must be. No I/O.

A deliberately small form (field path, then exactly one of equals / matches / oneOf) rather than an
expression language: a policy author can read every condition at a glance, and nothing a predicate
contains can make evaluation slow or ambiguous. A field that is absent, or that names an object or
a list, never satisfies a condition.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from signgate.errors import truncate

ConditionOperator = Literal["equals", "matches", "oneOf"]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class PredicateCondition:
    """``field`` (dot-separated keys; a number indexes a list) compared with ``operator``."""

    field: str
    operator: ConditionOperator
    values: tuple[str, ...]
    """One value for equals and matches (a full-match regexp); the candidates for oneOf."""

    def describe(self) -> str:
        """The condition as a person would write it."""
        if self.operator == "oneOf":
            return f"{self.field} one of [{', '.join(self.values)}]"
        if self.operator == "matches":
            return f"{self.field} matches /{self.values[0]}/"
        return f"{self.field} = {self.values[0]}"

    def failure(self, predicate: object) -> str | None:
        """Why ``predicate`` does not meet this condition; None when it does."""
        value = _lookup(predicate, self.field)
        if value is _MISSING:
            return f"predicate has no field {self.field}"
        text = _scalar_text(value)
        if text is None:
            return f"predicate field {self.field} is not a string, number or boolean"
        if self.operator == "equals":
            ok = text == self.values[0]
        elif self.operator == "matches":
            ok = re.fullmatch(self.values[0], text) is not None
        else:
            ok = text in self.values
        if ok:
            return None
        return f"predicate field {self.field} is {truncate(text, 200)!r}, not {self.describe()}"


def _lookup(document: object, path: str) -> object:
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, list) and part.isascii() and part.isdigit():  # not '²'
            index = int(part)
            if index >= len(current):
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


def _scalar_text(value: object) -> str | None:
    # Numbers and booleans compare as their JSON text, so a policy can stay all strings.
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return None


def first_failure(conditions: Sequence[PredicateCondition], predicate: object) -> str | None:
    """The first condition ``predicate`` does not meet, and why; None when it meets them all."""
    for condition in conditions:
        reason = condition.failure(predicate)
        if reason is not None:
            return reason
    return None
