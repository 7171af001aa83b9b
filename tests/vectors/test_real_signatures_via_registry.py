"""Signatures made by cosign and other Sigstore clients (vendored in tests/vectors/data), pushed
through a real registry's normal API and verified by signgate end to end: this is the
interoperability proof."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from signgate.deadline import Deadline
from signgate.engine.verifier import Verifier
from signgate.policy.compiled import adhoc_key_policy
from signgate.registry import RegistryClient, RegistryOptions
from signgate.signatures.keys import load_public_key_pem
from signgate.signatures.trusted_root import load_trusted_root
from support import signer
from support.formats import Layer, signature_tag
from support.push import Pusher
from support.registry import RegistryServer
from support.vectors import push_conformance_bundle

VALID = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
MODIFIED = "sha256:d9dcafdb480aa7c475e91737b96925e45844213dcb0290b4a90017459121f71f"
FIXTURES = "containers-image/signature/fixtures"
CONFORMANCE = "sigstore-conformance/test/assets/bundle-verify"
PRODUCTION_ROOT = "sigstore-python/sigstore/_store/tuf-repo-cdn.sigstore.dev/trusted_root.json"


def key_policy(vectors: Path, relative: str, *, tlog: bool = False):  # type: ignore[no-untyped-def]
    key = load_public_key_pem((vectors / relative).read_bytes())
    return adhoc_key_policy([("vector-key", key)], requires_tlog=tlog)


def derived_layer(vectors: Path, case: str) -> Layer:
    base = vectors / "containers-image/derived" / case
    return Layer(
        (base / "payload.json").read_bytes(),
        annotations=json.loads((base / "layer-annotations.json").read_text()),
    )


def containers_image_layer(path: Path) -> Layer:
    """containers/image's storage of one cosign layer: b'\\x00sigstore-json\\n' + JSON."""
    raw = path.read_bytes()
    prefix = b"\x00sigstore-json\n"
    assert raw.startswith(prefix)
    doc = json.loads(raw[len(prefix) :])
    return Layer(base64.b64decode(doc["payload"]), doc["mimeType"], doc["annotations"])


@pytest.fixture
async def verifier(registry: RegistryServer) -> AsyncIterator[Verifier]:
    options = RegistryOptions(insecure_hosts=frozenset({registry.host}))
    async with RegistryClient(options) as client:
        yield Verifier(client, trusted_root=None)


def test_the_signed_manifest_is_what_the_payload_names(vectors: Path) -> None:
    manifest = (vectors / FIXTURES / "dir-img-cosign-valid/manifest.json").read_bytes()
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == VALID
    layer = derived_layer(vectors, "key-valid")
    payload = json.loads(layer.blob)
    assert payload["critical"]["image"]["docker-manifest-digest"] == VALID
    descriptor = json.loads(
        (vectors / "containers-image/derived/key-valid/layer-descriptor.json").read_text()
    )
    assert descriptor["digest"] == layer.digest


async def test_cosign_legacy_signature_verifies_through_the_registry(
    vectors: Path, pusher: Pusher, verifier: Verifier
) -> None:
    name = f"vectors/{secrets.token_hex(4)}"
    await signer.push_signature_manifest(
        pusher, name, signature_tag(VALID), [derived_layer(vectors, "key-valid")]
    )
    image = f"{pusher.host}/{name}@{VALID}"
    good = await verifier.verify_image(
        image, [key_policy(vectors, f"{FIXTURES}/cosign.pub")], Deadline.after(10)
    )
    assert good.allowed, good.reasons
    assert good.outcomes[0].signatures[0].format == "cosign .sig tag"

    other_key = await verifier.verify_image(
        image, [key_policy(vectors, f"{FIXTURES}/cosign2.pub")], Deadline.after(10)
    )
    assert not other_key.allowed
    assert "signature does not verify with key" in other_key.reasons[0]


async def test_cosign_signature_for_another_manifest_is_refused(
    vectors: Path, pusher: Pusher, verifier: Verifier
) -> None:
    # The genuine signature of 634a… stored as if it were the signature of the modified manifest.
    name = f"vectors/{secrets.token_hex(4)}"
    await signer.push_signature_manifest(
        pusher, name, signature_tag(MODIFIED), [derived_layer(vectors, "key-valid")]
    )
    decision = await verifier.verify_image(
        f"{pusher.host}/{name}@{MODIFIED}",
        [key_policy(vectors, f"{FIXTURES}/cosign.pub")],
        Deadline.after(10),
    )
    assert not decision.allowed
    assert f"signature is for {VALID}, not {MODIFIED}" in decision.reasons[0]


@pytest.mark.parametrize("key", ["cosign.pub", "cosign2.pub"])
async def test_signature_by_an_unknown_key_is_refused(
    vectors: Path, pusher: Pusher, verifier: Verifier, key: str
) -> None:
    name = f"vectors/{secrets.token_hex(4)}"
    await signer.push_signature_manifest(
        pusher, name, signature_tag(VALID), [derived_layer(vectors, "unknown-key")]
    )
    decision = await verifier.verify_image(
        f"{pusher.host}/{name}@{VALID}",
        [key_policy(vectors, f"{FIXTURES}/{key}")],
        Deadline.after(10),
    )
    assert not decision.allowed
    assert "does not verify with key" in decision.reasons[0]


async def test_other_attachment_is_not_a_signature(
    vectors: Path, pusher: Pusher, verifier: Verifier
) -> None:
    layer = containers_image_layer(
        vectors / FIXTURES / "dir-img-cosign-other-attachment/signature-1"
    )
    assert layer.media_type == "text/plain"
    name = f"vectors/{secrets.token_hex(4)}"
    await signer.push_signature_manifest(pusher, name, signature_tag(VALID), [layer])
    decision = await verifier.verify_image(
        f"{pusher.host}/{name}@{VALID}",
        [key_policy(vectors, f"{FIXTURES}/cosign.pub")],
        Deadline.after(10),
    )
    assert not decision.allowed
    assert "'text/plain' carries a signature annotation" in decision.reasons[0]


async def test_containers_image_signature_file_matches_derived_layer(vectors: Path) -> None:
    layer = containers_image_layer(vectors / FIXTURES / "dir-img-cosign-valid/signature-1")
    assert layer.blob == derived_layer(vectors, "key-valid").blob


async def test_managed_key_bundle_verifies_with_its_rekor_entry(
    vectors: Path, pusher: Pusher, registry: RegistryServer
) -> None:
    image = await push_conformance_bundle(pusher, vectors, "managed-key-happy-path")
    policy = key_policy(vectors, f"{CONFORMANCE}/managed-key-happy-path/key.pub", tlog=True)
    root = load_trusted_root((vectors / PRODUCTION_ROOT).read_bytes())
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({registry.host}))) as client:
        with_log = await Verifier(client, trusted_root=root).verify_image(
            image, [policy], Deadline.after(10)
        )
        assert with_log.allowed, with_log.reasons
        assert with_log.outcomes[0].signatures[0].tlog_index == 771488337
        # Requiring the log without a trusted root to check it against is a denial, not a pass.
        no_root = await Verifier(client).verify_image(image, [policy], Deadline.after(10))
        assert not no_root.allowed
        assert "no trusted root configured" in no_root.reasons[0]


async def test_real_bundle_attached_to_another_digest_is_refused(
    vectors: Path, pusher: Pusher, verifier: Verifier
) -> None:
    # A genuine bundle replayed onto another image: the message signature cannot cover it.
    image = await push_conformance_bundle(
        pusher, vectors, "managed-key-happy-path", digest="sha256:" + "1" * 64
    )
    policy = key_policy(vectors, f"{CONFORMANCE}/managed-key-happy-path/key.pub")
    decision = await verifier.verify_image(image, [policy], Deadline.after(10))
    assert not decision.allowed
    assert "does not verify with key" in decision.reasons[0]


async def test_corrupted_key_is_a_configuration_error(vectors: Path) -> None:
    from signgate.errors import KeyFormatError

    with pytest.raises(KeyFormatError):
        load_public_key_pem(
            (vectors / CONFORMANCE / "managed-key-wrong-key_fail/key.pub").read_bytes()
        )


async def test_cli_requires_the_log_and_checks_it_offline(
    vectors: Path, pusher: Pusher, tmp_path: Path
) -> None:
    import asyncio
    import sys

    image = await push_conformance_bundle(pusher, vectors, "managed-key-happy-path")
    key = str(vectors / CONFORMANCE / "managed-key-happy-path/key.pub")
    root = str(vectors / PRODUCTION_ROOT)

    async def run(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "signgate", "verify", "--key", key, image,
            "--insecure-registry", pusher.host, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await run("--tlog", "require", "--trusted-root", root, "--output", "json")
    assert code == 0, (out, err)
    assert json.loads(out)["authorities"][0]["tlogIndex"] == 771488337
    # Without --trusted-root, the public-good root shipped with signgate checks it (offline).
    code, out, err = await run("--tlog", "require", "--output", "json")
    assert code == 0, (out, err)
    assert json.loads(out)["authorities"][0]["tlogIndex"] == 771488337
    # A root without that Rekor log: the entry cannot be trusted, so the image is denied.
    document = json.loads((vectors / PRODUCTION_ROOT).read_text())
    document["tlogs"] = []
    other_root = tmp_path / "no-rekor.json"
    other_root.write_text(json.dumps(document))
    code, out, _ = await run("--tlog", "require", "--trusted-root", str(other_root))
    assert code == 1
    assert "entry is from an untrusted log (logID c0d23d6a" in out, out
    broken = vectors / CONFORMANCE / "a.txt"
    code, _, err = await run("--tlog", "require", "--trusted-root", str(broken))
    assert code == 2
    assert "a.txt" in err
