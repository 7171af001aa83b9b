"""signgate.signatures.trusted_root: trusted_root.json and the bare rekor.pub convenience."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from signgate.errors import ConfigError, KeyFormatError
from signgate.signatures.trusted_root import (
    TrustedRoot,
    load_trusted_root,
    parse_rfc3339,
    trusted_root_from_rekor_key,
)
from support.vectors import CONTAINERS, PRODUCTION_ROOT, PUBLIC_GOOD_ROOT, REKOR_V1_LOG_ID

REKOR_V2_LOG_ID = bytes.fromhex("cf1199155bddd051268d1f16ac5c0c75c009f6fb5a63f4177f8e18d7051e3fa0")


@pytest.fixture
def root_document(read_vector: Callable[[str], bytes]) -> dict[str, Any]:
    return json.loads(read_vector(PRODUCTION_ROOT))  # type: ignore[no-any-return]


def _load(document: dict[str, Any]) -> TrustedRoot:
    return load_trusted_root(json.dumps(document).encode())


def test_production_root_lists_rekor_v1_and_v2_ct_logs_cas_and_a_tsa(
    production_root: TrustedRoot,
) -> None:
    assert [log.base_url for log in production_root.tlogs] == [
        "https://rekor.sigstore.dev",
        "https://log2025-1.rekor.sigstore.dev",
    ]
    assert len(production_root.ctlogs) == 2
    assert len(production_root.certificate_authorities) == 2
    assert len(production_root.timestamp_authorities) == 1
    assert production_root.skipped == ()


def test_rekor_v1_key_is_found_by_its_log_id(production_root: TrustedRoot) -> None:
    log = production_root.tlog_key(REKOR_V1_LOG_ID)

    assert log is not None
    assert log.public_key.algorithm == "ECDSA P-256"
    assert log.public_key.key_id == REKOR_V1_LOG_ID
    assert log.valid_from == datetime(2021, 1, 12, 11, 53, 27, tzinfo=UTC)
    assert log.valid_until is None


def test_rekor_v2_key_is_ed25519_and_its_log_id_is_not_the_spki_hash(
    production_root: TrustedRoot,
) -> None:
    log = production_root.tlog_key(REKOR_V2_LOG_ID)

    assert log is not None
    assert log.public_key.algorithm == "Ed25519"
    assert log.public_key.key_id != REKOR_V2_LOG_ID


def test_unknown_log_id_has_no_key(production_root: TrustedRoot) -> None:
    assert production_root.tlog_key(b"\x00" * 32) is None


def test_certificate_authority_validity_keeps_fractional_seconds(
    production_root: TrustedRoot,
) -> None:
    first = production_root.certificate_authorities[0]

    assert first.uri == "https://fulcio.sigstore.dev"
    assert first.valid_until == datetime(2022, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert first.valid_at(datetime(2022, 6, 1, tzinfo=UTC))
    assert not first.valid_at(datetime(2023, 1, 1, tzinfo=UTC))
    assert all(cert.startswith(b"\x30") for cert in first.certificates)


def test_ct_log_key_is_found_by_its_log_id(production_root: TrustedRoot) -> None:
    log_id = base64.b64decode("3T0wasbHETJjGR4cmWc3AqJKXrjePK3/h4pygC8p7o4=")

    log = production_root.ctlog_key(log_id)

    assert log is not None
    assert log.base_url == "https://ctfe.sigstore.dev/2022"


def test_sigstore_go_public_good_root_loads(read_vector: Callable[[str], bytes]) -> None:
    root = load_trusted_root(read_vector(PUBLIC_GOOD_ROOT))

    assert root.tlog_key(REKOR_V1_LOG_ID) is not None
    assert root.timestamp_authorities[0].uri == ""
    assert len(root.timestamp_authorities[0].certificates) == 3


def _spki_b64(key: Any) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def test_a_log_with_an_unsupported_key_is_skipped_not_fatal(root_document: dict[str, Any]) -> None:
    root_document["tlogs"][1]["publicKey"]["rawBytes"] = _spki_b64(
        ec.generate_private_key(ec.SECP256K1())
    )
    root_document["tlogs"][1]["publicKey"]["keyDetails"] = "PKIX_ECDSA_SECP256K1"

    root = _load(root_document)

    assert [log.base_url for log in root.tlogs] == ["https://rekor.sigstore.dev"]
    (reason,) = root.skipped
    assert "log2025-1.rekor.sigstore.dev" in reason
    assert "secp256k1" in reason


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda log: log.update(hashAlgorithm="SHA2_384"), "unsupported hashAlgorithm SHA2_384"),
        (lambda log: log["publicKey"].pop("rawBytes"), "no public key bytes"),
        (
            lambda log: log["publicKey"].update(
                rawBytes=_spki_b64(rsa.generate_private_key(public_exponent=65537, key_size=1024))
            ),
            "RSA 1024",
        ),
    ],
)
def test_unusable_ct_logs_are_skipped_with_a_reason(
    root_document: dict[str, Any], mutate: Callable[[dict[str, Any]], object], reason: str
) -> None:
    mutate(root_document["ctlogs"][0])

    root = _load(root_document)

    assert len(root.ctlogs) == 1
    assert reason in root.skipped[0]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(mediaType="application/json"), "not a Sigstore trusted root"),
        (lambda d: d.pop("mediaType"), "mediaType: missing"),
        (lambda d: d.update(tlogs={}), "tlogs: expected an array"),
        (lambda d: d["tlogs"][0].pop("logId"), r"tlogs\[0\]\.logId: missing"),
        (
            lambda d: d["tlogs"][0]["publicKey"]["validFor"].update(start="2021-01-12"),
            r"tlogs\[0\]\.publicKey\.validFor\.start: not an RFC 3339 timestamp",
        ),
        (
            lambda d: d["tlogs"][0]["publicKey"]["validFor"].update(end="2020-01-01T00:00:00Z"),
            "ends before it starts",
        ),
        (
            lambda d: d["tlogs"][0]["publicKey"]["validFor"].update(start="2021-02-30T00:00:00Z"),
            "invalid timestamp",
        ),
        (
            lambda d: d["certificateAuthorities"][0]["certChain"]["certificates"][0].update(
                rawBytes="AAAA"
            ),
            "not a DER X.509 certificate",
        ),
        (
            lambda d: d["timestampAuthorities"][0]["certChain"].update(certificates=[]),
            "certificates: must not be empty",
        ),
    ],
)
def test_malformed_trusted_root_is_a_config_error(
    root_document: dict[str, Any], mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    mutate(root_document)

    with pytest.raises(ConfigError, match=message):
        _load(root_document)


@pytest.mark.parametrize("raw", [b"", b"[]", b"\xff", b'{"mediaType": 1}'])
def test_garbage_trusted_root_is_a_config_error(raw: bytes) -> None:
    with pytest.raises(ConfigError):
        load_trusted_root(raw)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-01-12T11:53:27Z", datetime(2021, 1, 12, 11, 53, 27, tzinfo=UTC)),
        ("2021-01-12T11:53:27.123456789Z", datetime(2021, 1, 12, 11, 53, 27, 123456, tzinfo=UTC)),
        ("2021-01-12T13:53:27+02:00", datetime(2021, 1, 12, 11, 53, 27, tzinfo=UTC)),
        ("2021-01-12t11:53:27z", datetime(2021, 1, 12, 11, 53, 27, tzinfo=UTC)),
    ],
)
def test_rfc3339_timestamps_become_aware_utc_datetimes(text: str, expected: datetime) -> None:
    assert parse_rfc3339(text, path="t") == expected


@pytest.mark.parametrize("text", ["2021-01-12T11:53:27", "2021-01-12 11:53:27Z", "yesterday"])
def test_timestamps_without_zone_or_in_other_formats_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="not an RFC 3339 timestamp"):
        parse_rfc3339(text, path="t")


def test_rekor_pub_alone_makes_a_root_that_trusts_it_forever(
    read_vector: Callable[[str], bytes],
) -> None:
    root = trusted_root_from_rekor_key(read_vector(f"{CONTAINERS}/internal/testdata/rekor.pub"))

    (log,) = root.tlogs
    assert log.log_id == REKOR_V1_LOG_ID
    assert log.valid_at(datetime(1971, 1, 1, tzinfo=UTC))
    assert log.valid_at(datetime(9999, 1, 1, tzinfo=UTC))


def test_an_rsa_key_is_refused_as_a_rekor_key(read_vector: Callable[[str], bytes]) -> None:
    with pytest.raises(KeyFormatError, match="a Rekor v1 key must be ECDSA, found RSA 4096"):
        trusted_root_from_rekor_key(read_vector(f"{CONTAINERS}/fixtures/some-rsa-key.pub"))
