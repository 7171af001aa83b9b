"""strictjson: duplicate keys and lone-surrogate keys are refused on both of its paths (the fast
one for UTF-8 bytes without surrogate escapes, and the careful one)."""

from __future__ import annotations

import pytest

from signgate.errors import SigngateError
from signgate.strictjson import loads


class Refused(SigngateError):
    pass


@pytest.mark.parametrize(
    "document",
    [
        b'{"a": 1, "a": 2}',
        b'{"x": {"k": 1, "k": 1}}',
        b'[{"a": 1}, {"b": 2, "b": 3}]',
        '{"a": 1, "a": 2}',
        b'{"\\ud800": 1}',  # an escaped lone surrogate as a key
        b'{"ok": "\\ud83d\\ude00", "a": 1, "a": 2}',  # a surrogate pair elsewhere, then a duplicate
        '{"\ud800": 1}',  # a lone surrogate in text handed over as str
    ],
)
def test_refused(document: bytes | str) -> None:
    with pytest.raises(Refused, match="is not valid JSON"):
        loads(document, what="doc", error=Refused)


def test_accepted_on_both_paths() -> None:
    assert loads(b'{"a": {"b": [1, 2]}, "c": "d"}', what="doc", error=Refused) == {
        "a": {"b": [1, 2]},
        "c": "d",
    }
    assert loads(b'{"emoji": "\\ud83d\\ude00"}', what="doc", error=Refused) == {"emoji": "😀"}
    assert loads('{"a": 1}', what="doc", error=Refused) == {"a": 1}
