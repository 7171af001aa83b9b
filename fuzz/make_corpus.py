"""Write the seed corpora, ``fuzz/corpus/<target>/``, from real inputs.

Sources: the cosign and Sigstore vectors vendored in ``tests/vectors/data`` (see its README.md),
the AdmissionReviews of ``tests/unit/admission/reviews`` and of ``tests/support/reviews.py``, the
example TrustPolicies, and cosign's exact formats as ``tests/support/formats.py`` writes them.
The corpus is committed; run this again (``uv run python -m fuzz.make_corpus``) only to change it.
Every seed file is named by what it is and stays small (the largest, a bundle, is 12 KB). Files
named ``regress-*`` are inputs that once crashed a target; they are kept as they are.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fuzz import fixtures
from fuzz.harness import CORPUS_DIR, FUZZ_DIR, TARGETS, check, load, pack

REPOSITORY = FUZZ_DIR.parent
sys.path.insert(0, str(REPOSITORY / "tests"))

from support import formats, vectors  # noqa: E402
from support.reviews import KINDS, REVIEWS, pod_spec, review, workload  # noqa: E402

VECTORS = vectors.vectors_dir()
CONFORMANCE = VECTORS / vectors.CONFORMANCE
CONTAINERS = VECTORS / vectors.CONTAINERS
BUNDLE_CASES = (
    "managed-key-happy-path",
    "happy-path-v0.3",
    "happy-path-intoto-in-dsse-v3",
    "signature-mismatch_fail",
    "dsse-invalid-sig_fail",
)
MAX_SEED_BYTES = 16 * 1024
REGRESSION_PREFIX = "regress-"
"""Seeds named so are inputs that once crashed a target (kept, never rewritten here)."""

Seeds = dict[str, bytes]


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _bundle(case: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (CONFORMANCE / case / "bundle.sigstore.json").read_bytes()
    )
    return document


def _statement(envelope: dict[str, Any]) -> bytes:
    return base64.b64decode(envelope["payload"])


def reference() -> Seeds:
    digest = fixtures.VECTOR_DIGEST
    texts = [
        "nginx",
        "nginx:1.27",
        "docker.io/library/nginx:latest",
        "index.docker.io/nginx",
        "library/nginx@" + digest,
        f"localhost:5000/app@{digest}",
        "[::1]:5000/app:v1",
        f"registry.example.com/release/app:v1@{digest}",
        "a.trusted.example/team/app:v2",
        "evil.example/x.trusted.example/app",
        "a.b.trusted.example:443/app",
        "Registry.Example.COM:443/a/b",
        "ghcr.io/org/app:v1.2.3-rc.1",
        "127.0.0.1:5000/app__x/y-z.w",
        f"192.168.64.2:5000/cosign-signed-single-sample@{digest}",
        digest,
    ]
    return {f"ref-{i:02d}": t.encode() for i, t in enumerate(texts)}


def admission() -> Seeds:
    seeds: Seeds = {p.stem: p.read_bytes() for p in sorted(REVIEWS.glob("*.json"))}
    spec = pod_spec(
        [("app", "registry.example.com/release/app:v1")],
        init=[("init", "busybox:1.36")],
        ephemeral=[("debug", "busybox@" + fixtures.VECTOR_DIGEST)],
        volumes=[("models", "registry.example.com/models:v1")],
    )
    # The seeds were first written with the namespace "shop"; kept so, so they stay unchanged.
    for kind in KINDS:
        seeds[f"create-{kind.lower()}"] = _json(review(workload(kind, spec, namespace="shop")))
    old = workload(
        "Deployment", pod_spec([("app", "registry.example.com/release/app:v0")]), namespace="shop"
    )
    new = workload(
        "Deployment", pod_spec([("app", "registry.example.com/release/app:v1")]), namespace="shop"
    )
    seeds["update-deployment"] = _json(review(new, operation="UPDATE", old=old))
    seeds["delete-pod"] = _json(review(None, kind="Pod", operation="DELETE", namespace="shop"))
    return seeds


def oci() -> Seeds:
    seeds: Seeds = {
        "image-manifest": (CONTAINERS / "fixtures/dir-img-cosign-valid/manifest.json").read_bytes(),
        "modified-manifest": (
            CONTAINERS / "fixtures/dir-img-cosign-modified-manifest/manifest.json"
        ).read_bytes(),
    }
    layer = json.loads(
        (VECTORS / "containers-image/derived/key-valid/layer-descriptor.json").read_bytes()
    )
    config = formats.signature_config([layer["digest"]])
    config_descriptor = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "size": len(config),
        "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
    }
    subject = {
        "mediaType": formats.SIMPLESIGNING_MEDIA_TYPE,
        "size": 428,
        "digest": fixtures.VECTOR_DIGEST,
    }
    seeds["sig-manifest"] = formats.image_manifest(
        config_descriptor, [layer], media_type="application/vnd.oci.image.manifest.v1+json"
    )
    seeds["referrer-manifest"] = formats.image_manifest(
        {**config_descriptor, "mediaType": "application/vnd.oci.empty.v1+json"},
        [
            {
                "mediaType": formats.BUNDLE_V03_MEDIA_TYPE,
                "size": 3881,
                "digest": "sha256:" + "cd" * 32,
            }
        ],
        media_type="application/vnd.oci.image.manifest.v1+json",
        annotations={formats.BUNDLE_PREDICATE_TYPE_ANNOTATION: formats.COSIGN_SIGN_PREDICATE_TYPE},
        subject={**subject, "mediaType": "application/vnd.oci.image.manifest.v1+json"},
        artifact_type=formats.BUNDLE_V03_MEDIA_TYPE,
    )
    child = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 428,
        "digest": fixtures.VECTOR_DIGEST,
    }
    seeds["referrers-index"] = _json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    **child,
                    "artifactType": formats.BUNDLE_V03_MEDIA_TYPE,
                    "annotations": {"dev.sigstore.bundle.content": "dsse-envelope"},
                }
            ],
        }
    )
    seeds["manifest-list"] = _json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [
                {**child, "platform": {"architecture": "amd64", "os": "linux"}},
                {**child, "digest": "sha256:" + "ef" * 32, "platform": {"os": "linux"}},
            ],
        }
    )
    seeds["empty-index"] = _json({"schemaVersion": 2, "manifests": []})
    return seeds


def bundle() -> Seeds:
    return {
        case: (CONFORMANCE / case / "bundle.sigstore.json").read_bytes() for case in BUNDLE_CASES
    }


def dsse() -> Seeds:
    envelope = _bundle("happy-path-intoto-in-dsse-v3")["dsseEnvelope"]
    cosign_statement = formats.statement_v1(fixtures.VECTOR_DIGEST)
    v01 = formats.statement_v01(
        "registry.example.com/app", fixtures.VECTOR_DIGEST, "https://slsa.dev/provenance/v0.2", {}
    )
    return {
        "bundle-envelope": _json(envelope),
        "bundle-statement": _statement(envelope),
        "cosign-statement-v1": cosign_statement,
        "statement-v01": v01,
        "legacy-envelope": formats.legacy_dsse_envelope(
            v01, b"\x30\x06\x02\x01\x01\x02\x01\x01", formats.INTOTO_PAYLOAD_TYPE
        ),
    }


def simplesigning() -> Seeds:
    payload = (VECTORS / "containers-image/derived/key-valid/payload.json").read_bytes()
    document = json.loads(payload)
    document["Critical"] = document.pop("critical")
    return {
        "key-valid": payload,
        "rekor-payload": fixtures.read("rekor-payload"),
        "with-optional": formats.simple_signing_payload(
            "registry.example.com/app", fixtures.VECTOR_DIGEST, {"creator": "ci", "n": 1}
        ),
        "capitalised": _json(document),
    }


def tlog() -> Seeds:
    seeds: Seeds = {"rekor-set-annotation": fixtures.read("rekor-set")}
    for case in (
        "managed-key-happy-path",
        "happy-path-intoto-in-dsse-v3",
        "signature-mismatch_fail",
    ):
        entry = _bundle(case)["verificationMaterial"]["tlogEntries"][0]
        seeds[f"entry-{case}"] = _json(entry)
        proof = entry.get("inclusionProof")
        if proof:
            seeds[f"checkpoint-{case}"] = proof["checkpoint"]["envelope"].encode()
    return seeds


def _pem_to_der(pem: bytes) -> bytes:
    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    return base64.b64decode(body)


def certificate() -> Seeds:
    seeds: Seeds = {
        "rekor-cert-pem": fixtures.read("rekor-cert"),
        "fulcio-cert-der": _pem_to_der((CONTAINERS / "fixtures/fulcio-cert").read_bytes()),
        "fulcio-root-der": fixtures.fulcio_root_der(),
    }
    for case in ("happy-path-v0.3", "happy-path-intoto-in-dsse-v3"):
        raw = _bundle(case)["verificationMaterial"]["certificate"]["rawBytes"]
        seeds[f"leaf-{case}"] = base64.b64decode(raw)
    return seeds


def keys() -> Seeds:
    payload = (VECTORS / "containers-image/derived/key-valid/payload.json").read_bytes()
    annotations = json.loads(
        (VECTORS / "containers-image/derived/key-valid/layer-annotations.json").read_bytes()
    )
    signature = base64.b64decode(annotations["dev.cosignproject.cosign/signature"])
    rsa = (CONTAINERS / "fixtures/some-rsa-key.pub").read_bytes()
    seed = hashlib.sha256(b"signgate fuzz ed25519 seed").digest()
    ed25519 = formats.public_key_pem(Ed25519PrivateKey.from_private_bytes(seed))
    return {
        "vector-key-valid-signature": pack(fixtures.read("cosign.pub"), signature, payload),
        "vector-key-der": pack(_pem_to_der(fixtures.read("cosign.pub")), signature, payload),
        "rekor-key": pack(
            (CONTAINERS / "internal/testdata/rekor.pub").read_bytes(), signature, payload
        ),
        "rsa-key": pack(rsa, b"\x00" * 256, payload),
        "ed25519-key": pack(ed25519, b"\x01" * 64, payload),
    }


def timestamp() -> Seeds:
    doc = _bundle("managed-key-happy-path")
    token = base64.b64decode(
        doc["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0][
            "signedTimestamp"
        ]
    )
    signature = base64.b64decode(doc["messageSignature"]["signature"])
    annotation = _json({"SignedRFC3161Timestamp": base64.b64encode(token).decode()})
    return {
        "managed-key-response": pack(signature, token),
        "managed-key-annotation": pack(signature, annotation),
        "other-signature": pack(b"not the signature", token),
    }


def _control(mode: str, authority: int, rule: int = 0) -> bytes:
    from fuzz.targets.verify import MODES

    return bytes([MODES.index(mode), authority, rule])


def verify() -> Seeds:
    payload = (VECTORS / "containers-image/derived/key-valid/payload.json").read_bytes()
    annotations = (
        VECTORS / "containers-image/derived/key-valid/layer-annotations.json"
    ).read_bytes()
    rekor_annotations = _json(
        {
            "dev.cosignproject.cosign/signature": fixtures.read("rekor-sig").decode(),
            "dev.sigstore.cosign/certificate": fixtures.read("rekor-cert").decode(),
            "dev.sigstore.cosign/bundle": fixtures.read("rekor-set").decode(),
        }
    )
    rekor_digest = json.loads(fixtures.read("rekor-payload"))["critical"]["image"][
        "docker-manifest-digest"
    ]
    vector, artifact = fixtures.VECTOR_DIGEST.encode(), fixtures.ARTIFACT_DIGEST.encode()
    signed_payload = formats.simple_signing_payload(
        "192.168.64.2:5000/cosign-signed-single-sample", fixtures.VECTOR_DIGEST
    )
    statement = formats.statement_v1(fixtures.VECTOR_DIGEST)
    provenance = formats.statement_v1(
        fixtures.VECTOR_DIGEST,
        "https://slsa.dev/provenance/v1",
        {
            "buildDefinition": {
                "buildType": "https://example.com/t",
                "resolvedDependencies": [{"uri": "a"}],
            },
            "runDetails": {"builder": {"id": "https://example.com/builder"}},
        },
    )
    envelope = formats.legacy_dsse_envelope(
        provenance,
        fixtures.harness_sign(formats.pae(formats.INTOTO_PAYLOAD_TYPE, provenance)),
        formats.INTOTO_PAYLOAD_TYPE,
    )
    legacy_signed = _json(
        {
            "dev.cosignproject.cosign/signature": base64.b64encode(
                fixtures.harness_sign(signed_payload)
            ).decode()
        }
    )
    dsse_entry = _bundle("happy-path-intoto-in-dsse-v3")["verificationMaterial"]["tlogEntries"][0]
    seeds: Seeds = {
        "legacy-vector-key": pack(_control("legacy", 2), payload, annotations, vector),
        "legacy-keyless-rekor": pack(
            _control("legacy", 5),
            fixtures.read("rekor-payload"),
            rekor_annotations,
            rekor_digest.encode(),
        ),
        "legacy-harness-identity": pack(
            _control("legacy", 0, 1), signed_payload, legacy_signed, vector
        ),
        "legacy-signed-repositories": pack(
            _control("legacy-signed", 0, 2), signed_payload, b"{}", vector
        ),
        "legacy-signed-tlog": pack(
            _control("legacy-signed", 1),
            signed_payload,
            _json({"dev.sigstore.cosign/bundle": fixtures.read("rekor-set").decode()}),
            vector,
        ),
        "attestation": pack(_control("attestation", 0, 0x80), envelope, b"{}", vector),
        "attestation-signed": pack(_control("attestation-signed", 0), provenance, b"{}", vector),
        "bundle-signed-statement": pack(_control("bundle-signed", 0), statement, b"{}", vector),
        "bundle-signed-tlog": pack(
            _control("bundle-signed", 1), statement, _json({"tlogEntries": [dsse_entry]}), vector
        ),
        "bundle-message": pack(_control("bundle-message", 0), b"{}", b"{}", vector),
        "unusable": pack(_control("unusable", 0), b"layer is not a signature", b"", vector),
    }
    for case, authority in (
        ("managed-key-happy-path", 3),
        ("happy-path-v0.3", 4),
        ("happy-path-intoto-in-dsse-v3", 4),
        ("signature-mismatch_fail", 4),
    ):
        raw = (CONFORMANCE / case / "bundle.sigstore.json").read_bytes()
        seeds[f"bundle-{case}"] = pack(_control("bundle", authority, 0x80), raw, b"", artifact)
    return seeds


def predicate() -> Seeds:
    provenance = json.loads(_statement(_bundle("happy-path-intoto-in-dsse-v3")["dsseEnvelope"]))
    predicate = _json(provenance["predicate"])
    return {
        "build-type": pack(b"buildDefinition.buildType", predicate),
        "list-index": pack(b"buildDefinition.resolvedDependencies.0.uri", predicate),
        "builder-id": pack(b"runDetails.builder.id", predicate),
        "scalars": pack(b"a.1", _json({"a": [True, 1, 1.5, None, "x"]})),
        "unicode-digit": pack("buildDefinition.resolvedDependencies.²".encode(), predicate),
    }


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.strip().splitlines())


def policy() -> Seeds:
    key = _indent(fixtures.read("cosign.pub").decode(), 12)
    root = _indent(fixtures.read("fulcio_v1.crt.pem").decode(), 12)
    full = f"""apiVersion: signgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: full}}
spec:
  images: ["registry.example.com/release/**", "*.trusted.example/**"]
  excludeImages: ["registry.example.com/release/sandbox/*"]
  mode: Warn
  namespaceSelector:
    matchLabels: {{team: a}}
    matchExpressions: [{{key: env, operator: In, values: [prod]}}]
  authorities:
    - name: release-key
      key:
        pem: |
{key}
      transparencyLog: Require
    - name: own-ca
      certificateAuthority:
        subjectRegExp: ".*@example\\\\.com"
        pem: |
{root}
    - name: ci
      keyless: {{issuer: https://token.actions.githubusercontent.com, subject: https://github.com/o/r}}
  threshold: 2
  required: [release-key]
  signatureRepository: registry.example.com/signatures
  requireDigest: true
  attestations:
    - predicateType: https://slsa.dev/provenance/v1
      authorities: [release-key, ci]
      conditions:
        - {{field: runDetails.builder.id, matches: "https://github\\\\.com/org/.*"}}
        - {{field: buildDefinition.resolvedDependencies.0.uri, oneOf: [a, b]}}
  signedIdentity: {{match: Repositories, repositories: ["registry.example.com/**"]}}
  indexCoversChildren: true
"""
    seeds: Seeds = {
        "example": (REPOSITORY / "examples/policy.yaml").read_bytes(),
        "full": full.encode(),
        "two-documents": (REPOSITORY / "examples/policy.yaml").read_bytes()
        + b"\n---\n"
        + full.replace("name: full", "name: second").encode(),
    }
    seeds["dated"] = (
        (REPOSITORY / "examples/policy.yaml")
        .read_bytes()
        .replace(b"name: release-images", b"name: dated\n  annotations: {reviewed: 2024-01-31}")
    )
    for path in sorted((REPOSITORY / "deploy/examples").glob("*.yaml")):
        seeds[f"deploy-{path.stem}"] = path.read_bytes()
    return seeds


def trusted_root() -> Seeds:
    return {
        "public-good": (VECTORS / vectors.PUBLIC_GOOD_ROOT).read_bytes(),
        "production": (VECTORS / vectors.PRODUCTION_ROOT).read_bytes(),
    }


BUILDERS: dict[str, Callable[[], Seeds]] = {
    "reference": reference,
    "admission": admission,
    "oci": oci,
    "bundle": bundle,
    "dsse": dsse,
    "simplesigning": simplesigning,
    "tlog": tlog,
    "certificate": certificate,
    "keys": keys,
    "timestamp": timestamp,
    "verify": verify,
    "predicate": predicate,
    "policy": policy,
    "trusted_root": trusted_root,
}


def write(names: Iterable[str]) -> None:
    for name in names:
        seeds = BUILDERS[name]()
        directory = CORPUS_DIR / name
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            if not old.name.startswith(REGRESSION_PREFIX):
                old.unlink()
        target = load(name)
        for seed_name, data in sorted(seeds.items()):
            if len(data) > MAX_SEED_BYTES:
                raise SystemExit(f"{name}/{seed_name} is {len(data)} bytes, over {MAX_SEED_BYTES}")
            (directory / seed_name).write_bytes(data)
            crash = check(target, data)
            status = "ok" if crash is None else f"CRASH {crash.signature}"
            print(f"{name}/{seed_name}: {len(data)} bytes, {status}")


if __name__ == "__main__":
    assert set(BUILDERS) == set(TARGETS)
    write(sys.argv[1:] or TARGETS)
