"""Public keys (`signgate.signatures.keys`): PEM as in a TrustPolicy or ``--key``, DER as in a
bundle, a Rekor entry or a trusted root; then a signature check, which must answer True or False
and never raise, whatever the signature bytes.

Input: three fields (see `fuzz.harness.fields`): key (PEM or DER), signature, message.
"""

from __future__ import annotations

from fuzz.harness import fields, refused
from signgate.errors import KeyFormatError
from signgate.signatures.keys import PublicKey, load_public_key_pem, public_key_from_der
from signgate.signatures.trusted_root import trusted_root_from_rekor_key

ACCEPTED: tuple[type[Exception], ...] = (KeyFormatError,)


def _use(key: PublicKey, signature: bytes, message: bytes) -> None:
    assert key.verify(signature, message) in (True, False)
    _ = key.fingerprint, key.algorithm
    assert public_key_from_der(key.der) == key


def run(data: bytes) -> None:
    material, signature, message = fields(data, 3)
    with refused(*ACCEPTED):
        _use(public_key_from_der(material), signature, message)
    with refused(*ACCEPTED):
        trusted_root_from_rekor_key(material)
    _use(load_public_key_pem(material), signature, message)
