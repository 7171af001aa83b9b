"""Strict JSON and base64 decoding for signer-supplied wire formats (internal, unstable).

Everything a signer hands us is parsed here first, so the rules are in one place:

* JSON must be UTF-8, must not repeat a key anywhere (two parsers that pick different duplicates are
  a classic signature-bypass), and must not contain NaN/Infinity or floats that overflow.
* Base64 follows the protobuf JSON mapping and the DSSE spec: standard or URL-safe alphabet,
  padded or not, but never a mix of the two alphabets and never whitespace or other characters.
* int64 fields follow the protobuf JSON mapping: a decimal string (what every Sigstore client
  writes) or a JSON integer, range-checked.

`JsonObject` wraps one decoded object and names the field path in every error, so a rejection
says exactly which field was wrong (``verificationMaterial.tlogEntries[0].logIndex: ...``).
Unknown fields are tolerated and never read (style: "signer payloads are lenient").
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

from signgate.errors import SigngateError, truncate
from signgate.strictjson import json_kind as kind
from signgate.strictjson import loads as loads  # one strict loader for the whole project

ErrorType = type[SigngateError]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

_STD_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_URL_B64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$@.\-\[\]]{1,64}")


def b64decode(text: str, *, path: str, error: ErrorType) -> bytes:
    """Decode base64 as protobuf JSON and DSSE allow: std or URL-safe, padded or not.

    Args:
        text: the encoded string.
        path: field path for the message.
        error: the `SigngateError` subclass to raise.

    Returns:
        The decoded bytes.

    Raises:
        SigngateError: of type ``error`` for any character outside one alphabet, or a bad length.
    """
    if _STD_B64.fullmatch(text):
        altchars = None
    elif _URL_B64.fullmatch(text):
        altchars = b"-_"
    else:
        raise error(f"{path}: not base64 (unexpected characters)")
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if len(body) % 4 == 1 or (padding and len(text) % 4 != 0):
        raise error(f"{path}: not base64 (bad length or padding)")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), altchars=altchars, validate=True)
    except binascii.Error as exc:  # pragma: no cover - the checks above make this unreachable
        raise error(f"{path}: not base64 ({exc})") from exc


def parse_int64(value: object, *, path: str, error: ErrorType, minimum: int = INT64_MIN) -> int:
    """Read a protobuf JSON int64: a decimal string or a JSON integer.

    Raises:
        SigngateError: of type ``error`` for other types, non-canonical text or out-of-range values.
    """
    if isinstance(value, bool):  # bool is an int subclass; true is not 1 here
        raise error(f"{path}: expected an integer, got a boolean")
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value) or len(value) > 20:
            raise error(f"{path}: expected a decimal integer, got {truncate(value, 40)!r}")
        number = int(value)
    elif isinstance(value, int):
        number = value
    else:
        raise error(f"{path}: expected an integer, got {kind(value)}")
    if not INT64_MIN <= number <= INT64_MAX:
        raise error(f"{path}: {number} is outside the int64 range")
    if number < minimum:
        raise error(f"{path}: {number} is below the minimum {minimum}")
    return number


def check_text(value: str, *, path: str, error: ErrorType) -> str:
    """Reject strings that cannot be encoded as UTF-8 (lone surrogates from ``\\ud800`` escapes).

    Raises:
        SigngateError: of type ``error``.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(f"{path}: string is not valid Unicode") from exc
    return value


class JsonObject:
    """A read-only view of one decoded JSON object whose errors name the field path.

    ``null`` counts as absent, as in the protobuf JSON mapping.
    """

    __slots__ = ("_data", "_error", "path")

    def __init__(self, data: object, *, path: str, error: ErrorType) -> None:
        """Wrap ``data``.

        Raises:
            SigngateError: of type ``error`` if ``data`` is not a JSON object.
        """
        if not isinstance(data, dict):
            raise error(f"{path}: expected a JSON object, got {kind(data)}")
        self._data: dict[str, object] = data
        self._error = error
        self.path = path

    def _sub(self, key: str) -> str:
        # Keys come from the signer: quote anything unusual so a message stays one readable line.
        name = key if _PLAIN_KEY.fullmatch(key) else repr(truncate(key, 40))
        return f"{self.path}.{name}" if self.path else name

    def fail(self, key: str, message: str) -> SigngateError:
        """Build (not raise) the error for ``key`` so call sites read ``raise obj.fail(...)``."""
        return self._error(f"{self._sub(key)}: {message}")

    def has(self, key: str) -> bool:
        """True if ``key`` is present and not null."""
        return self._data.get(key) is not None

    def keys(self) -> list[str]:
        """The object's keys, in document order."""
        return list(self._data)

    def raw_dict(self) -> dict[str, object]:
        """A shallow copy of the undecoded object."""
        return dict(self._data)

    def raw(self, key: str) -> object:
        """The undecoded value of ``key`` (None if absent)."""
        return self._data.get(key)

    def _required(self, key: str) -> object:
        value = self._data.get(key)
        if value is None:
            raise self.fail(key, "missing")
        return value

    def string(self, key: str, *, allow_empty: bool = False) -> str:
        """A required string field.

        Raises:
            SigngateError: missing, not a string, empty (unless allowed) or not valid Unicode.
        """
        value = self._required(key)
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {kind(value)}")
        if not value and not allow_empty:
            raise self.fail(key, "must not be empty")
        return check_text(value, path=self._sub(key), error=self._error)

    def optional_string(self, key: str) -> str | None:
        """An optional string field (absent or null gives None).

        Raises:
            SigngateError: present but not a string.
        """
        return self.string(key, allow_empty=True) if self.has(key) else None

    def obj(self, key: str) -> JsonObject:
        """A required object field.

        Raises:
            SigngateError: missing or not an object.
        """
        return JsonObject(self._required(key), path=self._sub(key), error=self._error)

    def optional_obj(self, key: str) -> JsonObject | None:
        """An optional object field.

        Raises:
            SigngateError: present but not an object.
        """
        return self.obj(key) if self.has(key) else None

    def array(self, key: str, *, max_items: int, allow_empty: bool = False) -> list[object]:
        """A required array field with a count cap.

        Raises:
            SigngateError: missing, not an array, empty (unless allowed) or longer than the cap.
        """
        value = self._required(key)
        if not isinstance(value, list):
            raise self.fail(key, f"expected an array, got {kind(value)}")
        if not value and not allow_empty:
            raise self.fail(key, "must not be empty")
        if len(value) > max_items:
            raise self.fail(key, f"{len(value)} items, more than the limit of {max_items}")
        return value

    def objects(
        self, key: str, *, max_items: int, allow_empty: bool = False
    ) -> Iterator[JsonObject]:
        """Iterate a required array of objects.

        Raises:
            SigngateError: as `array`, or an item that is not an object.
        """
        items = self.array(key, max_items=max_items, allow_empty=allow_empty)
        for index, item in enumerate(items):
            yield JsonObject(item, path=f"{self._sub(key)}[{index}]", error=self._error)

    def b64(self, key: str, *, allow_empty: bool = False) -> bytes:
        """A required base64 string field, decoded.

        Raises:
            SigngateError: missing, not a string, not base64, or empty (unless allowed).
        """
        decoded = b64decode(
            self.string(key, allow_empty=True), path=self._sub(key), error=self._error
        )
        if not decoded and not allow_empty:
            raise self.fail(key, "must not be empty")
        return decoded

    def optional_b64(self, key: str) -> bytes | None:
        """An optional base64 field; absent, null or "" gives None.

        Raises:
            SigngateError: present but not base64.
        """
        if not self.has(key):
            return None
        return self.b64(key, allow_empty=True) or None

    def int64(self, key: str, *, minimum: int = INT64_MIN) -> int:
        """A required int64 field.

        Raises:
            SigngateError: missing or not an int64 (see `parse_int64`).
        """
        return parse_int64(
            self._required(key), path=self._sub(key), error=self._error, minimum=minimum
        )

    def number(self, key: str, *, minimum: int = INT64_MIN) -> int:
        """A required int64 field written as a JSON number (Go ``int``/``int64`` struct fields).

        Raises:
            SigngateError: missing, a string, a boolean, a float, or out of range.
        """
        value = self._required(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"expected an integer, got {kind(value)}")
        return parse_int64(value, path=self._sub(key), error=self._error, minimum=minimum)

    def optional_int64(self, key: str, *, minimum: int = INT64_MIN) -> int | None:
        """An optional int64 field.

        Raises:
            SigngateError: present but not an int64.
        """
        return self.int64(key, minimum=minimum) if self.has(key) else None
