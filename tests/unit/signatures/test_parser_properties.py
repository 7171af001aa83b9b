"""Property tests: no input makes a parser raise anything but its own documented error.

A signer controls every byte these parsers see, so an unexpected exception type (KeyError,
TypeError, UnicodeError, RecursionError...) would escape the admission path's error handling.
Inputs are arbitrary bytes, arbitrary JSON, and real documents with one node replaced or removed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signgate.errors import BundleFormatError, ConfigError, KeyFormatError, SigngateError
from signgate.signatures import _json
from signgate.signatures.bundle import parse_bundle
from signgate.signatures.dsse import parse_envelope, parse_statement
from signgate.signatures.keys import load_public_key_pem
from signgate.signatures.tlog import parse_cosign_bundle_annotation
from signgate.signatures.trusted_root import load_trusted_root
from support.vectors import CONFORMANCE, CONTAINERS, PRODUCTION_ROOT

FUZZ = settings(
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_text = st.text(
    st.characters() | st.sampled_from(["\ud800", "\udfff", "\u2014", "\x00"]), max_size=12
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
    | st.sampled_from(["", "AAAA", "0", "-1", "9223372036854775808", "MEUCIQ=="]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            _text | st.sampled_from(["sig", "payload", "hashes"]), children, max_size=4
        )
    ),
    max_leaves=12,
)


def _only(error: type[SigngateError], parse: Callable[[Any], object], value: Any) -> None:
    """Run ``parse``; success and ``error`` are fine, any other exception fails the test."""
    message: str | None = None
    try:
        parse(value)
    except error as exc:
        message = str(exc)
    if message is not None:
        assert message
        assert "\n" not in message


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node[:3]):
            paths += _paths(child, (*prefix, index))
    return paths


@st.composite
def _mutated(draw: st.DrawFn, document: object) -> object:
    """``document`` with one node replaced by arbitrary JSON, or removed."""
    doc = json.loads(json.dumps(document))
    path = draw(st.sampled_from(_paths(doc)))
    if not path:
        return draw(json_values)
    parent: Any = doc
    for step in path[:-1]:
        parent = parent[step]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return doc


def _document(read_vector: Callable[[str], bytes], relative: str) -> object:
    return json.loads(read_vector(relative))


BUNDLE_CASES = [
    "managed-key-happy-path",
    "happy-path-intoto-in-dsse-v3",
    "signature-mismatch_fail",
    "happy-path-v0.3",
]


@FUZZ
@given(raw=st.binary(max_size=300))
def test_parse_bundle_of_arbitrary_bytes_raises_only_bundle_format_error(raw: bytes) -> None:
    _only(BundleFormatError, parse_bundle, raw)


@FUZZ
@given(value=json_values)
def test_parse_bundle_of_arbitrary_json_raises_only_bundle_format_error(value: object) -> None:
    _only(BundleFormatError, parse_bundle, json.dumps(value).encode())


@pytest.mark.parametrize("case", BUNDLE_CASES)
@FUZZ
@given(data=st.data())
def test_parse_bundle_of_a_mutated_real_bundle_raises_only_bundle_format_error(
    read_vector: Callable[[str], bytes], case: str, data: st.DataObject
) -> None:
    document = _document(read_vector, f"{CONFORMANCE}/{case}/bundle.sigstore.json")

    mutated = data.draw(_mutated(document))

    _only(BundleFormatError, parse_bundle, json.dumps(mutated).encode())


@FUZZ
@given(raw=st.binary(max_size=300))
def test_parse_statement_of_arbitrary_bytes_raises_only_bundle_format_error(raw: bytes) -> None:
    _only(BundleFormatError, parse_statement, raw)


@FUZZ
@given(value=json_values)
def test_parse_statement_of_arbitrary_json_raises_only_bundle_format_error(value: object) -> None:
    _only(BundleFormatError, parse_statement, json.dumps(value).encode())


@FUZZ
@given(data=st.data())
def test_parse_statement_of_a_mutated_statement_raises_only_bundle_format_error(
    read_vector: Callable[[str], bytes], data: st.DataObject
) -> None:
    bundle = _document(
        read_vector, f"{CONFORMANCE}/happy-path-intoto-in-dsse-v3/bundle.sigstore.json"
    )
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))  # type: ignore[index]

    mutated = data.draw(_mutated(statement))

    _only(BundleFormatError, parse_statement, json.dumps(mutated).encode())


@FUZZ
@given(value=json_values)
def test_parse_envelope_of_arbitrary_json_raises_only_bundle_format_error(value: object) -> None:
    _only(BundleFormatError, parse_envelope, value)


@FUZZ
@given(data=st.data())
def test_parse_envelope_of_a_mutated_envelope_raises_only_bundle_format_error(
    read_vector: Callable[[str], bytes], data: st.DataObject
) -> None:
    bundle = _document(
        read_vector, f"{CONFORMANCE}/happy-path-intoto-in-dsse-v3/bundle.sigstore.json"
    )

    _only(BundleFormatError, parse_envelope, data.draw(_mutated(bundle["dsseEnvelope"])))  # type: ignore[index]


@FUZZ
@given(data=st.data())
def test_cosign_bundle_annotation_parser_raises_only_bundle_format_error(
    read_vector: Callable[[str], bytes], data: st.DataObject
) -> None:
    document = _document(read_vector, f"{CONTAINERS}/internal/testdata/rekor-set")
    text = data.draw(st.one_of(_text, st.builds(json.dumps, _mutated(document))))

    _only(BundleFormatError, parse_cosign_bundle_annotation, text)


@FUZZ
@given(data=st.data())
def test_trusted_root_parser_raises_only_config_error(
    read_vector: Callable[[str], bytes], data: st.DataObject
) -> None:
    document = _document(read_vector, PRODUCTION_ROOT)

    _only(ConfigError, load_trusted_root, json.dumps(data.draw(_mutated(document))).encode())


@FUZZ
@given(
    text=st.one_of(
        st.binary(max_size=200),
        _text,
        st.builds(
            lambda body: f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n",
            st.text(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n :",
                max_size=150,
            ),
        ),
    )
)
def test_public_key_pem_parser_raises_only_key_format_error(text: bytes | str) -> None:
    _only(KeyFormatError, load_public_key_pem, text)


@FUZZ
@given(data=st.binary(max_size=64))
def test_base64_in_every_allowed_spelling_decodes_to_the_same_bytes(data: bytes) -> None:
    standard = base64.b64encode(data).decode()
    urlsafe = base64.urlsafe_b64encode(data).decode()

    for spelling in (standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")):
        assert _json.b64decode(spelling, path="p", error=BundleFormatError) == data
