"""RFC 3161 timestamps: a real public-good token and tokens from a TSA made here. (The real cosign
against the fake TSA is in tests/integration/test_cosign_timestamps.py: it needs the binaries.)

`TestTsa` writes tokens byte by byte (DER written here from RFC 3161 and RFC 5652, independently
of the code under test) so each case can break exactly one thing: the imprint hash, the EKU, a
certificate's validity, a CA flag, the status, the signer.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signgate.engine.trusted_root_file import default_trusted_root
from signgate.errors import SignatureError, TimestampError
from signgate.signatures.bundle import SigstoreBundle, parse_bundle
from signgate.signatures.timestamp import (
    MAX_TOKEN_SIZE,
    parse_cosign_timestamp_annotation,
    verify_rfc3161,
)
from signgate.signatures.trusted_root import (
    CertificateAuthority,
    TrustedRoot,
    load_trusted_root,
)
from support.vectors import PUBLIC_GOOD_ROOT

HAPPY_PATH = "managed-key-happy-path"
GEN_TIME = datetime(2025, 12, 18, 17, 4, 39, tzinfo=UTC)
"""genTime of the public-good TSA token in the happy-path conformance bundle."""
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SIGNATURE = b"\x30\x45" + b"raw signature bytes".ljust(69, b".")
IGNORE_NEGATIVE_SERIALS = pytest.mark.filterwarnings(
    # cryptography warns (and, in these tests, would raise) about fuzzed certificate serials.
    "ignore::cryptography.utils.CryptographyDeprecationWarning"
)


@pytest.fixture(scope="module")
def happy(conformance: Callable[[str], bytes]) -> SigstoreBundle:
    return parse_bundle(conformance(HAPPY_PATH))


@pytest.fixture(scope="module")
def token(happy: SigstoreBundle) -> bytes:
    (der,) = happy.rfc3161_timestamps
    return der


def with_authorities(root: TrustedRoot, *authorities: CertificateAuthority) -> TrustedRoot:
    return dataclasses.replace(root, timestamp_authorities=authorities)


def error(token_der: bytes, signature: bytes, root: TrustedRoot) -> str:
    with pytest.raises(TimestampError) as caught:
        verify_rfc3161(token_der, signature, root)
    assert isinstance(caught.value, SignatureError)
    return str(caught.value)


# -- DER, written from X.690 for the test TSA --------------------------------------------------


def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def set_of(*parts: bytes) -> bytes:
    return tlv(0x31, b"".join(sorted(parts)))  # DER: SET OF elements in ascending order


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def octets(value: bytes) -> bytes:
    return tlv(0x04, value)


def explicit(number: int, content: bytes) -> bytes:
    return tlv(0xA0 + number, content)


ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_CT_TSTINFO = "1.2.840.113549.1.9.16.1.4"
ID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
HASH_OIDS = {
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
    "sha1": "1.3.14.3.2.26",
}


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    valid: tuple[datetime, datetime],
    eku: x509.ExtendedKeyUsage | None = None,
    eku_critical: bool = True,
) -> x509.Certificate:
    issuer_name, issuer_key = (issuer[0].subject, issuer[1]) if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = dict.fromkeys(
            ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "encipher_only", "decipher_only"),
            False,
        )  # fmt: skip
        builder = builder.add_extension(
            x509.KeyUsage(key_cert_sign=True, crl_sign=True, **usage), critical=True
        )
    if eku is not None:
        builder = builder.add_extension(eku, critical=eku_critical)
    return builder.sign(issuer_key, hashes.SHA256())


TIME_STAMPING = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING])
NEEDS_EKU = "(the signing certificate needs a critical EKU of timeStamping only)"
LONG_AGO, FAR_AHEAD = datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)


@dataclasses.dataclass
class TestTsa:
    """A TSA with a root CA, optionally an intermediate, and a signing certificate."""

    __test__ = False  # not a test class

    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    intermediates: list[x509.Certificate]
    signer: x509.Certificate
    signer_key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(
        cls,
        *,
        signer_valid: tuple[datetime, datetime] = (LONG_AGO, FAR_AHEAD),
        eku: x509.ExtendedKeyUsage | None = TIME_STAMPING,
        eku_critical: bool = True,
        intermediate_is_ca: bool | None = None,
    ) -> TestTsa:
        """``intermediate_is_ca``: None for no intermediate, else its CA flag."""
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _certificate("test tsa root", root_key, None, ca=True, valid=(LONG_AGO, FAR_AHEAD))
        issuer, intermediates = (root, root_key), []
        if intermediate_is_ca is not None:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _certificate(
                "test tsa intermediate", key, issuer, ca=intermediate_is_ca,
                valid=(LONG_AGO, FAR_AHEAD),
            )  # fmt: skip
            issuer, intermediates = (cert, key), [cert]
        signer_key = ec.generate_private_key(ec.SECP256R1())
        signer = _certificate(
            "test tsa signing", signer_key, issuer, ca=False, valid=signer_valid, eku=eku,
            eku_critical=eku_critical,
        )  # fmt: skip
        return cls(root, root_key, intermediates, signer, signer_key)

    def authority(
        self,
        *,
        valid_from: datetime = LONG_AGO,
        valid_until: datetime | None = None,
        with_signer: bool = True,
    ) -> CertificateAuthority:
        chain = ([self.signer] if with_signer else []) + [*self.intermediates, self.root]
        return CertificateAuthority(
            uri="https://tsa.test/api/v1/timestamp",
            certificates=tuple(c.public_bytes(serialization.Encoding.DER) for c in chain),
            valid_from=valid_from,
            valid_until=valid_until,
        )

    def trusted_root(self, **authority: Any) -> TrustedRoot:
        return TrustedRoot(tlogs=(), timestamp_authorities=(self.authority(**authority),))

    def stamp(
        self,
        signature: bytes,
        *,
        when: datetime = NOW,
        hash_name: str = "sha256",
        embed: bool = False,
        status: int = 0,
        status_text: str | None = None,
        bare: bool = False,
        nonce: int | None = None,
    ) -> bytes:
        """A DER TimeStampResp (or, ``bare``, the TimeStampToken) over ``hash(signature)``."""
        digest = hashlib.new(hash_name, signature).digest()
        tst_info = seq(
            integer(1),
            oid("1.3.6.1.4.1.57264.2"),
            seq(seq(oid(HASH_OIDS[hash_name]), b"\x05\x00"), octets(digest)),
            integer(secrets.randbits(64)),
            tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode()),
            integer(nonce) if nonce is not None else b"",
        )
        attributes = [
            seq(oid(ID_CONTENT_TYPE), set_of(oid(ID_CT_TSTINFO))),
            seq(oid(ID_MESSAGE_DIGEST), set_of(octets(hashlib.sha256(tst_info).digest()))),
        ]
        signed_attributes = set_of(*attributes)
        signature_value = self.signer_key.sign(signed_attributes, ec.ECDSA(hashes.SHA256()))
        signer_info = seq(
            integer(1),
            seq(self.signer.issuer.public_bytes(), integer(self.signer.serial_number)),
            seq(oid(HASH_OIDS["sha256"])),
            b"\xa0" + signed_attributes[1:],  # [0] IMPLICIT SET OF Attribute
            seq(oid(ECDSA_WITH_SHA256)),
            octets(signature_value),
        )
        certificates = (
            tlv(0xA0, self.signer.public_bytes(serialization.Encoding.DER)) if embed else b""
        )
        signed_data = seq(
            integer(3),
            set_of(seq(oid(HASH_OIDS["sha256"]))),
            seq(oid(ID_CT_TSTINFO), explicit(0, octets(tst_info))),
            certificates,
            set_of(signer_info),
        )
        content_info = seq(oid(ID_SIGNED_DATA), explicit(0, signed_data))
        if bare:
            return content_info
        texts = seq(tlv(0x0C, status_text.encode())) if status_text else b""
        return seq(seq(integer(status), texts), content_info if status in (0, 1) else b"")


@pytest.fixture(scope="module")
def tsa() -> TestTsa:
    return TestTsa.create()


# -- the real public-good token ------------------------------------------------------------------


def test_real_public_good_token_verifies(
    happy: SigstoreBundle, token: bytes, production_root: TrustedRoot
) -> None:
    # The imprint is sha256 of the raw messageSignature bytes (cosign and sigstore-go).
    assert verify_rfc3161(token, happy.signature, production_root) == GEN_TIME
    assert verify_rfc3161(token, happy.signature, default_trusted_root()) == GEN_TIME


def test_real_token_over_other_bytes_is_refused(
    happy: SigstoreBundle, token: bytes, production_root: TrustedRoot
) -> None:
    message = error(token, happy.signature[:-1] + b"\x00", production_root)
    assert message == (
        "the timestamp is for other data: its message imprint is not the SHA-256 of this signature"
    )
    # The imprint is over the signature, not over the artifact digest.
    assert happy.message_signature is not None
    assert "message imprint" in error(token, happy.message_signature.digest, production_root)


def test_tsa_missing_from_the_trusted_root_is_refused(
    happy: SigstoreBundle,
    token: bytes,
    production_root: TrustedRoot,
    read_vector: Callable[[str], bytes],
) -> None:
    # sigstore-go's older public-good root lists only GitHub's TSA.
    github_only = load_trusted_root(read_vector(PUBLIC_GOOD_ROOT))
    message = error(token, happy.signature, github_only)
    assert message.startswith(
        "the timestamp (2025-12-18T17:04:39Z) is not from a trusted timestamp authority: "
    )
    assert "it was not signed by this authority (signer certificate not found)" in message
    assert error(token, happy.signature, with_authorities(production_root)) == (
        "the trusted root has no timestamp authority to check the timestamp"
    )


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "period"),
    [
        (GEN_TIME + timedelta(seconds=1), None, "from 2025-12-18T17:04:40Z"),
        (
            datetime(2025, 7, 4, tzinfo=UTC),
            GEN_TIME - timedelta(seconds=1),
            "from 2025-07-04T00:00:00Z to 2025-12-18T17:04:38Z",
        ),
    ],
    ids=["starts-after", "ended-before"],
)
def test_tsa_valid_for_must_cover_gen_time(
    happy: SigstoreBundle,
    token: bytes,
    production_root: TrustedRoot,
    valid_from: datetime,
    valid_until: datetime | None,
    period: str,
) -> None:
    (authority,) = production_root.timestamp_authorities
    moved = dataclasses.replace(authority, valid_from=valid_from, valid_until=valid_until)
    message = error(token, happy.signature, with_authorities(production_root, moved))
    assert message.endswith(
        "https://timestamp.sigstore.dev/api/v1/timestamp signed it, but the trusted root trusts "
        f"that authority only {period}, not at 2025-12-18T17:04:39Z"
    )
    # The same TSA listed again with a period that covers genTime is enough.
    both = with_authorities(production_root, moved, authority)
    assert verify_rfc3161(token, happy.signature, both) == GEN_TIME
    exact = dataclasses.replace(authority, valid_from=GEN_TIME, valid_until=GEN_TIME)
    assert verify_rfc3161(token, happy.signature, with_authorities(production_root, exact)) == (
        GEN_TIME
    )


def test_bare_timestamp_token_verifies_like_the_response(
    happy: SigstoreBundle, token: bytes, production_root: TrustedRoot
) -> None:
    # TimeStampResp = SEQUENCE { PKIStatusInfo (30 03 02 01 00), TimeStampToken }.
    assert token[4:9] == b"\x30\x03\x02\x01\x00"
    bare = token[9:]
    assert verify_rfc3161(bare, happy.signature, production_root) == GEN_TIME


@pytest.mark.parametrize(
    ("offset_of", "expected"),
    [
        # genTime 2025-12-18 -> 2025-12-19 inside the signed TSTInfo.
        (lambda t: t.find(b"20251218") + 7, "its signature does not verify (digest failure"),
        # The last byte of the ECDSA signature value.
        (lambda t: len(t) - 1, "its signature does not verify ("),
        # The imprint itself.
        (lambda t: t.find(bytes.fromhex("2e47cf4a")), "message imprint is not the SHA-256"),
    ],
    ids=["gen-time", "cms-signature", "imprint"],
)
def test_tampered_token_is_refused(
    happy: SigstoreBundle,
    token: bytes,
    production_root: TrustedRoot,
    offset_of: Callable[[bytes], int],
    expected: str,
) -> None:
    offset = offset_of(token)
    assert offset > 0
    tampered = bytearray(token)
    tampered[offset] ^= 0x01
    assert expected in error(bytes(tampered), happy.signature, production_root)


@pytest.mark.parametrize(
    ("garbage", "expected"),
    [
        (b"", "not an RFC 3161 timestamp (neither a DER TimeStampResp nor a TimeStampToken)"),
        (b"\x30\x00", "not an RFC 3161 timestamp"),
        (b"not DER at all", "not an RFC 3161 timestamp"),
        (b"\x30\x80\x30\x03\x02\x01\x00\x00\x00", "not an RFC 3161 timestamp"),  # BER
        (b"\x30\x05\x30\x03\x02\x01\x00", "the timestamp token is malformed: Missing SignedData"),
        (b"\x30\x05\x30\x03\x02\x01\x07", "did not grant the timestamp (status 7)"),
        (b"\x30\x03\x30\x01\x00", "the timestamp does not parse as RFC 3161 DER"),
        (seq(oid(ID_SIGNED_DATA), explicit(0, seq())), "the timestamp does not parse"),
        (b"\x30\x84\x00\x01\x00\x00" + bytes(MAX_TOKEN_SIZE), f"than the {MAX_TOKEN_SIZE} allowed"),
    ],
    ids=[
        "empty", "empty-sequence", "text", "ber", "no-token", "status-7", "bad-status",
        "empty-signed-data", "huge",
    ],
)  # fmt: skip
def test_garbage_is_a_timestamp_error(
    garbage: bytes, expected: str, production_root: TrustedRoot
) -> None:
    assert expected in error(garbage, SIGNATURE, production_root)


@pytest.mark.parametrize("cut", [1, 2, 100, 400])
def test_truncated_token_is_refused(token: bytes, production_root: TrustedRoot, cut: int) -> None:
    assert "not an RFC 3161 timestamp" in error(token[:-cut], SIGNATURE, production_root)


def test_certificate_is_not_a_timestamp(production_root: TrustedRoot) -> None:
    (authority,) = production_root.timestamp_authorities
    assert "does not parse" in error(authority.certificates[0], SIGNATURE, production_root)


@IGNORE_NEGATIVE_SERIALS
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=1024))
def test_random_bytes_are_a_timestamp_error(tsa: TestTsa, data: bytes) -> None:
    with pytest.raises(TimestampError):
        verify_rfc3161(data, SIGNATURE, tsa.trusted_root())


@IGNORE_NEGATIVE_SERIALS
@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1))
def test_mutated_real_token_never_escapes_as_another_error(
    happy: SigstoreBundle,
    token: bytes,
    production_root: TrustedRoot,
    edits: list[tuple[int, int]],
) -> None:
    mutated = bytearray(token)
    for position, mask in edits:
        mutated[position % len(mutated)] ^= mask
    try:
        when = verify_rfc3161(bytes(mutated), happy.signature, production_root)
    except TimestampError:
        return
    # A few bytes are outside what is signed (CMS and SignerInfo versions, the unused
    # signatureAlgorithm parameters): changing them leaves the signed time as it was.
    assert when == GEN_TIME


# -- tokens from a TSA made here -------------------------------------------------------------


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
def test_imprint_hash_algorithms(tsa: TestTsa, hash_name: str) -> None:
    token = tsa.stamp(SIGNATURE, hash_name=hash_name)
    assert verify_rfc3161(token, SIGNATURE, tsa.trusted_root()) == NOW
    name = {"sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512"}[hash_name]
    assert f"message imprint is not the {name} of this signature" in error(
        token, SIGNATURE + b"!", tsa.trusted_root()
    )


def test_other_imprint_hash_algorithms_are_refused(tsa: TestTsa) -> None:
    token = tsa.stamp(SIGNATURE, hash_name="sha1")
    assert error(token, SIGNATURE, tsa.trusted_root()) == (
        "the timestamp uses hash algorithm 1.3.14.3.2.26; "
        "only SHA-256, SHA-384 and SHA-512 are accepted"
    )


def test_nonce_is_ignored_and_bare_tokens_verify(tsa: TestTsa) -> None:
    root = tsa.trusted_root()
    assert verify_rfc3161(tsa.stamp(SIGNATURE, nonce=2**100 + 7), SIGNATURE, root) == NOW
    assert verify_rfc3161(tsa.stamp(SIGNATURE, bare=True), SIGNATURE, root) == NOW


def test_embedded_signer_and_chain_without_the_signer(tsa: TestTsa) -> None:
    # The root lists only CAs: the token must then carry its signing certificate.
    cas_only = tsa.trusted_root(with_signer=False)
    assert verify_rfc3161(tsa.stamp(SIGNATURE, embed=True), SIGNATURE, cas_only) == NOW
    assert "signer certificate not found" in error(tsa.stamp(SIGNATURE), SIGNATURE, cas_only)
    # Listed first in the root, the signing certificate is pinned; embedding it is fine too.
    assert verify_rfc3161(tsa.stamp(SIGNATURE, embed=True), SIGNATURE, tsa.trusted_root()) == NOW


def test_another_signer_of_the_same_ca_is_refused_when_the_root_pins_one() -> None:
    first = TestTsa.create()
    second = TestTsa.create()
    second_signed_by_first_root = dataclasses.replace(
        second,
        root=first.root,
        signer=_certificate(
            "test tsa signing 2", second.signer_key, (first.root, first.root_key),
            ca=False, valid=(LONG_AGO, FAR_AHEAD), eku=TIME_STAMPING,
        ),
    )  # fmt: skip
    token = second_signed_by_first_root.stamp(SIGNATURE, embed=True)
    assert verify_rfc3161(token, SIGNATURE, first.trusted_root(with_signer=False)) == NOW
    assert "signed by another certificate than the TSA certificate the root names" in error(
        token, SIGNATURE, first.trusted_root()
    )


def test_timestamp_from_an_impostor_tsa_is_refused(tsa: TestTsa) -> None:
    # Same names as the trusted TSA, other keys: found by name, refused by signature.
    impostor = TestTsa.create()
    token = impostor.stamp(SIGNATURE, embed=True)
    assert "the TSA certificate chain does not verify: certificate signature failure" in error(
        token, SIGNATURE, tsa.trusted_root(with_signer=False)
    )
    assert "signer certificate not found" in error(
        impostor.stamp(SIGNATURE), SIGNATURE, tsa.trusted_root()
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("eku-not-critical", f"does not verify: unsuitable certificate purpose {NEEDS_EKU}"),
        ("no-eku", f"does not verify: unsuitable certificate purpose {NEEDS_EKU}"),
        ("code-signing-eku", f"does not verify: unsuitable certificate purpose {NEEDS_EKU}"),
        ("expired", "the TSA certificate chain does not verify: certificate has expired"),
        ("not-yet-valid", "does not verify: certificate is not yet valid"),
        ("intermediate-not-ca", "the TSA certificate chain does not verify: invalid CA"),
    ],
)
def test_signing_certificate_rules(kind: str, expected: str) -> None:
    options: dict[str, dict[str, Any]] = {
        "eku-not-critical": {"eku_critical": False},
        "no-eku": {"eku": None},
        "code-signing-eku": {"eku": x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING])},
        "expired": {"signer_valid": (LONG_AGO, NOW - timedelta(seconds=1))},
        "not-yet-valid": {"signer_valid": (NOW + timedelta(seconds=1), FAR_AHEAD)},
        "intermediate-not-ca": {"intermediate_is_ca": False},
    }
    bad = TestTsa.create(**options[kind])
    message = error(bad.stamp(SIGNATURE), SIGNATURE, bad.trusted_root())
    assert expected in message
    assert message.endswith(", checked at the timestamp's time")


def test_certificates_are_checked_at_gen_time_not_now() -> None:
    # Valid only around genTime (long expired today): accepted, as sigstore-go does.
    window = (NOW - timedelta(minutes=5), NOW + timedelta(minutes=5))
    brief = TestTsa.create(signer_valid=window, intermediate_is_ca=True)
    assert verify_rfc3161(brief.stamp(SIGNATURE), SIGNATURE, brief.trusted_root()) == NOW


def test_refused_status_is_reported(tsa: TestTsa) -> None:
    rejected = tsa.stamp(SIGNATURE, status=2, status_text="bad message digest")
    assert error(rejected, SIGNATURE, tsa.trusted_root()) == (
        "the timestamp authority did not grant the timestamp (status rejection: bad message digest)"
    )
    with_mods = tsa.stamp(SIGNATURE, status=1)
    assert "(status granted_with_mods)" in error(with_mods, SIGNATURE, tsa.trusted_root())


# -- cosign's legacy annotation -----------------------------------------------------------------


def test_cosign_annotation_holds_the_der(token: bytes) -> None:
    text = json.dumps({"SignedRFC3161Timestamp": base64.b64encode(token).decode()})
    assert parse_cosign_timestamp_annotation(text) == token


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "cosign rfc3161timestamp annotation"),
        ("[]", "rfc3161timestamp: expected a JSON object"),
        ("{}", "rfc3161timestamp.SignedRFC3161Timestamp"),
        ('{"SignedRFC3161Timestamp": 5}', "rfc3161timestamp.SignedRFC3161Timestamp"),
        ('{"SignedRFC3161Timestamp": "%%%"}', "not base64"),
        ('{"SignedRFC3161Timestamp": ""}', "rfc3161timestamp.SignedRFC3161Timestamp"),
    ],
)
def test_bad_cosign_annotation(text: str, expected: str) -> None:
    with pytest.raises(TimestampError) as caught:
        parse_cosign_timestamp_annotation(text)
    assert expected in str(caught.value)
