"""A test signer that writes cosign signatures to a real registry in cosign's exact formats.

Independent of signgate by design: it builds bytes with :mod:`support.formats` and writes them with
:class:`support.push.Pusher`. Formats (as cosign and go-containerregistry write them):

* :func:`sign_legacy`      -- format A, ``sha256-<hex>.sig`` tag, simple-signing layers (appended);
* :func:`sign_referrer_v2` -- format B, the same layer in a referrer manifest (v2 ``oci-1-1`` mode);
* :func:`sign_bundle_v3`   -- format C, Sigstore bundle v0.3 referrer (cosign v3 default);
* :func:`attest_legacy`    -- ``sha256-<hex>.att`` tag, DSSE layers.

Formats B and C keep the ``sha256-<hex>`` fallback index up to date exactly like ggcr's
``commitSubjectReferrers`` (distribution 2.8 has no referrers API).

Raw building blocks for attack fixtures: :func:`push_signature_manifest` (any layers, any count,
any annotations), :func:`push_referrer`, :func:`update_fallback_index`, and
:meth:`support.push.Pusher.copy_manifest` (replay another image's ``.sig``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes

from support.formats import (
    BUNDLE_CONTENT_ANNOTATION,
    BUNDLE_PREDICATE_TYPE_ANNOTATION,
    BUNDLE_V03_MEDIA_TYPE,
    COSIGN_SIG_ARTIFACT_TYPE,
    COSIGN_SIGN_PREDICATE_TYPE,
    CREATED_ANNOTATION,
    DSSE_MEDIA_TYPE,
    INTOTO_PAYLOAD_TYPE,
    MAX_SIGNATURE_LAYERS,
    PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    DSSEContent,
    Layer,
    MessageSignature,
    PrivateKey,
    append_to_config,
    bundle_v03,
    fallback_tag,
    image_manifest,
    legacy_dsse_envelope,
    pae,
    sign_bytes,
    signature_config,
    signature_tag,
    simple_signing_payload,
    statement_v01,
    statement_v1,
    verify_bytes,
)
from support.push import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Pusher,
    descriptor,
    go_descriptor,
    go_json,
    sha256_digest,
)


@dataclass(frozen=True, slots=True)
class PushedSignature:
    """What a signing call wrote, for assertions and for building attacks from real parts."""

    repo: str
    """Repository holding the signature manifest."""
    tag: str | None
    """``sha256-<hex>.sig``/``.att`` for tag formats; None for referrers (pushed by digest)."""
    manifest_digest: str
    manifest: bytes
    """Exact manifest bytes pushed."""
    layer: Layer
    """The signature layer this call added (blob, media type, annotations)."""
    signed_bytes: bytes
    """Exactly what the signature covers (payload, PAE, or image manifest bytes)."""
    signature: bytes
    """Raw signature bytes (DER for ECDSA)."""
    fallback_index_digest: str | None = None
    """Digest of the updated ``sha256-<hex>`` index (referrer formats only)."""

    @property
    def signature_b64(self) -> str:
        """The signature as cosign writes it in annotations and bundles."""
        return base64.b64encode(self.signature).decode("ascii")


# -- raw building blocks ---------------------------------------------------------------------------


async def push_signature_manifest(
    pusher: Pusher,
    repo: str,
    ref: str | None,
    layers: Sequence[Layer],
    *,
    docker_media_types: bool = False,
    config_media_type: str | None = None,
    subject: Mapping[str, Any] | None = None,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> tuple[str, bytes]:
    """Push a cosign-style signature manifest with exactly ``layers`` (no append, no checks).

    Blobs are uploaded once per distinct digest, so ``[layer] * 1000`` is cheap. The config is the
    dummy ``.sig`` config with one diff ID per layer.

    Args:
        pusher: where to write.
        repo: repository.
        ref: tag, or None to push by digest.
        layers: the layers, in order.
        docker_media_types: Docker schema 2 manifest and config media types.
        config_media_type: override the config descriptor's media type.
        subject: a ``subject`` descriptor (makes it a referrer; no fallback index update here).
        artifact_type: manifest ``artifactType``.
        annotations: manifest annotations.

    Returns:
        ``(digest, manifest bytes)``.
    """
    for blob in {layer.digest: layer.blob for layer in layers}.values():
        await pusher.push_blob(repo, blob)
    config = signature_config([layer.digest for layer in layers])
    await pusher.push_blob(repo, config)
    default_config_type = DOCKER_CONFIG if docker_media_types else OCI_CONFIG
    media_type = DOCKER_MANIFEST if docker_media_types else OCI_MANIFEST
    body = image_manifest(
        descriptor(config_media_type or default_config_type, config),
        [layer.descriptor() for layer in layers],
        media_type=media_type,
        annotations=annotations,
        subject=subject,
        artifact_type=artifact_type,
    )
    digest = await pusher.push_manifest(repo, ref or sha256_digest(body), body, media_type)
    return digest, body


async def update_fallback_index(
    pusher: Pusher,
    repo: str,
    subject_digest: str,
    referrer: Mapping[str, Any],
) -> str | None:
    """Add ``referrer`` to the ``sha256-<hex>`` fallback index like ggcr ``commitSubjectReferrers``.

    Skipped (returns None) if the registry answers the referrers API with 200. Otherwise: start
    from the existing OCI index (or an empty one on 404), do nothing if the digest is already
    listed, append, sort descriptors by digest, re-marshal through ggcr's structs (unknown fields
    dropped), and ``PUT`` it under the fallback tag. There is no locking, as in ggcr.

    Returns:
        The index digest, or None if the registry has a referrers API.
    """
    if await pusher.referrers_api_supported(repo, subject_digest):
        return None
    tag = fallback_tag(subject_digest)
    existing = await pusher.find_manifest(repo, tag, accept=OCI_INDEX)
    if existing is None:
        manifests = [dict(referrer)]
    else:
        index = existing.json()
        if index.get("schemaVersion") != 2 or index.get("mediaType") != OCI_INDEX:
            raise ValueError(f"fallback tag {tag} is not an OCI image index")
        manifests = list(index.get("manifests") or [])
        if any(m.get("digest") == referrer["digest"] for m in manifests):
            return existing.digest
        manifests.append(dict(referrer))
    manifests.sort(key=lambda m: str(m.get("digest", "")))
    body = go_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [go_descriptor(m) for m in manifests],
        }
    )
    return await pusher.push_manifest(repo, tag, body, OCI_INDEX)


async def push_referrer(
    pusher: Pusher,
    repo: str,
    subject: Mapping[str, Any],
    layers: Sequence[Layer],
    *,
    artifact_type: str | None,
    config_media_type: str = OCI_EMPTY,
    config_artifact_type: str | None = None,
    config_blob: bytes = EMPTY_JSON,
    annotations: Mapping[str, str] | None = None,
    old_ggcr_fallback: bool = False,
    fallback_annotations: bool = False,
) -> tuple[str, bytes, str | None]:
    """Push a referrer manifest by digest and update the fallback index (formats B/C, SBOMs, …).

    Args:
        pusher: where to write.
        repo: repository for the referrer and its fallback tag.
        subject: the subject descriptor ``{mediaType, size, digest}``.
        layers: the referrer's layers.
        artifact_type: manifest ``artifactType`` (None: omitted).
        config_media_type: config descriptor media type (default the OCI empty type).
        config_artifact_type: ``artifactType`` inside the config descriptor (cosign v3 sets it).
        config_blob: config bytes (default ``{}``).
        annotations: manifest annotations.
        old_ggcr_fallback: index entry ``artifactType`` = ``config.mediaType`` (ggcr <= v0.21.5,
            cosign <= v3.0.x) instead of the manifest's ``artifactType`` (ggcr >= v0.21.6).
        fallback_annotations: also copy the manifest annotations into the index entry, as the OCI
            distribution spec asks. ggcr does **not** do this on write, at any version.

    Returns:
        ``(referrer digest, manifest bytes, fallback index digest or None)``.
    """
    for layer in layers:
        await pusher.push_blob(repo, layer.blob)
    await pusher.push_blob(repo, config_blob)
    config = descriptor(config_media_type, config_blob, artifact_type=config_artifact_type)
    body = image_manifest(
        config,
        [layer.descriptor() for layer in layers],
        media_type=OCI_MANIFEST,
        annotations=annotations,
        subject=subject,
        artifact_type=artifact_type,
    )
    digest = await pusher.push_manifest(repo, sha256_digest(body), body, OCI_MANIFEST)
    entry: dict[str, Any] = {"mediaType": OCI_MANIFEST, "size": len(body), "digest": digest}
    if fallback_annotations and annotations:
        entry["annotations"] = dict(annotations)
    entry["artifactType"] = (
        config_media_type if old_ggcr_fallback or not artifact_type else artifact_type
    )
    index_digest = await update_fallback_index(pusher, repo, subject["digest"], entry)
    return digest, body, index_digest


async def _subject(pusher: Pusher, repo: str, image_digest: str) -> dict[str, Any]:
    found = await pusher.head_descriptor(repo, image_digest)
    if found is None:
        raise ValueError(f"{repo}@{image_digest} does not exist; push the image first")
    return found


async def _append_layer(
    pusher: Pusher,
    repo: str,
    tag: str,
    layer: Layer,
    key: PrivateKey,
    *,
    docker_media_types: bool,
    ed25519ph: bool,
) -> tuple[str, bytes]:
    """cosign's append: read the tag, skip duplicates (``remote.dd.Find``), append, re-push."""
    existing = await pusher.find_manifest(repo, tag)
    if existing is None:
        media_type = DOCKER_MANIFEST if docker_media_types else OCI_MANIFEST
        config_type = DOCKER_CONFIG if docker_media_types else OCI_CONFIG
        old_layers: list[dict[str, Any]] = []
        config_doc: dict[str, Any] = {}
    else:
        doc = existing.json()
        media_type = existing.media_type
        config_type = doc["config"]["mediaType"]
        old_layers = list(doc.get("layers") or [])
        config_doc = json.loads(await pusher.get_blob(repo, doc["config"]["digest"]))
        for old in old_layers:
            if await _is_duplicate(pusher, repo, old, layer, key, ed25519ph=ed25519ph):
                return existing.digest, existing.body
    if len(old_layers) + 1 > MAX_SIGNATURE_LAYERS:
        raise ValueError(f"{tag} already has {len(old_layers)} layers (cosign max 1000)")
    await pusher.push_blob(repo, layer.blob)
    config = append_to_config(config_doc, layer.digest)
    await pusher.push_blob(repo, config)
    body = image_manifest(
        descriptor(config_type, config),
        [*old_layers, layer.descriptor()],
        media_type=media_type,
    )
    return await pusher.push_manifest(repo, tag, body, media_type), body


async def _is_duplicate(
    pusher: Pusher,
    repo: str,
    old: Mapping[str, Any],
    new: Layer,
    key: PrivateKey,
    *,
    ed25519ph: bool,
) -> bool:
    """cosign ``dd.Find``: same digest, media type and non-signature annotations, and the old
    signature verifies with the signer's key over the new payload."""
    old_annotations = old.get("annotations") or {}
    for name, value in new.annotations.items():
        if name != SIGNATURE_ANNOTATION and old_annotations.get(name) != value:
            return False
    if old.get("digest") != new.digest or old.get("mediaType") != new.media_type:
        return False
    old_signature = old_annotations.get(SIGNATURE_ANNOTATION, "")
    if not old_signature:
        return False
    try:
        raw = base64.b64decode(old_signature, validate=True)
    except ValueError:
        return False
    return verify_bytes(key, raw, new.blob, ed25519ph=ed25519ph)


# -- format A: legacy .sig tag ---------------------------------------------------------------------


async def sign_legacy(
    pusher: Pusher,
    repo: str,
    image_digest: str,
    key: PrivateKey,
    *,
    docker_media_types: bool = False,
    docker_reference: str | None = None,
    sig_repo: str | None = None,
    payload_override: bytes | None = None,
    annotations: Mapping[str, str] | None = None,
    optional: Mapping[str, Any] | None = None,
    ed25519ph: bool = False,
    ecdsa_hash: hashes.HashAlgorithm | None = None,
) -> PushedSignature:
    """Sign like ``cosign sign --key k --tlog-upload=false`` in the legacy format (A).

    Appends one simple-signing layer to ``<sig_repo>:sha256-<hex>.sig`` (created if missing), with
    cosign's duplicate detection: re-signing the same payload with the same key adds nothing.

    Args:
        pusher: where to write.
        repo: the image's repository.
        image_digest: the signed manifest/index digest.
        key: signing key.
        docker_media_types: a new ``.sig`` manifest uses Docker media types
            (``COSIGN_DOCKER_MEDIA_TYPES=1``); an existing one keeps its own.
        docker_reference: payload ``docker-reference``; default ``<host>/<repo>``.
        sig_repo: where signatures live (``COSIGN_REPOSITORY``); default ``repo``.
        payload_override: sign and store these bytes instead of the generated payload.
        annotations: extra layer annotations (certificate, chain, bundle, …).
        optional: payload ``optional`` map (``cosign sign -a k=v``).
        ed25519ph: Ed25519 keys sign with Ed25519ph, as cosign's payload signer does.
        ecdsa_hash: override the curve's default hash.
    """
    target = sig_repo or repo
    payload = payload_override or simple_signing_payload(
        docker_reference or f"{pusher.host}/{repo}", image_digest, optional
    )
    signature = sign_bytes(key, payload, ed25519ph=ed25519ph, ecdsa_hash=ecdsa_hash)
    layer = Layer(
        payload,
        SIMPLESIGNING_MEDIA_TYPE,
        {**(annotations or {}), SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
    )
    tag = signature_tag(image_digest, "sig")
    digest, body = await _append_layer(
        pusher, target, tag, layer, key, docker_media_types=docker_media_types, ed25519ph=ed25519ph
    )
    return PushedSignature(target, tag, digest, body, layer, payload, signature)


async def attest_legacy(
    pusher: Pusher,
    repo: str,
    image_digest: str,
    key: PrivateKey,
    predicate_type: str,
    predicate: Mapping[str, Any],
    *,
    docker_media_types: bool = False,
    sig_repo: str | None = None,
    statement_override: bytes | None = None,
    annotations: Mapping[str, str] | None = None,
) -> PushedSignature:
    """Attest like legacy ``cosign attest --key k --tlog-upload=false`` (``.att`` tag).

    One layer ``application/vnd.dsse.envelope.v1+json`` whose blob is the DSSE envelope over an
    in-toto v0.1 statement (subject name ``<host>/<repo>``), annotations ``predicateType`` and an
    empty ``dev.cosignproject.cosign/signature``. Always appended (cosign's duplicate detector
    never matches an empty signature annotation).
    """
    target = sig_repo or repo
    statement = statement_override or statement_v01(
        f"{pusher.host}/{repo}", image_digest, predicate_type, predicate
    )
    signed = pae(INTOTO_PAYLOAD_TYPE, statement)
    signature = sign_bytes(key, signed)
    layer = Layer(
        legacy_dsse_envelope(statement, signature, INTOTO_PAYLOAD_TYPE),
        DSSE_MEDIA_TYPE,
        {
            **(annotations or {}),
            PREDICATE_TYPE_ANNOTATION: predicate_type,
            SIGNATURE_ANNOTATION: "",
        },
    )
    tag = signature_tag(image_digest, "att")
    digest, body = await _append_layer(
        pusher, target, tag, layer, key, docker_media_types=docker_media_types, ed25519ph=False
    )
    return PushedSignature(target, tag, digest, body, layer, signed, signature)


# -- format B: v2 OCI 1.1 referrer with a legacy payload -------------------------------------------


async def sign_referrer_v2(
    pusher: Pusher,
    repo: str,
    image_digest: str,
    key: PrivateKey,
    *,
    docker_reference: str | None = None,
    sig_repo: str | None = None,
    payload_override: bytes | None = None,
    annotations: Mapping[str, str] | None = None,
    optional: Mapping[str, Any] | None = None,
    ed25519ph: bool = False,
) -> PushedSignature:
    """Sign like cosign v2 ``--registry-referrers-mode=oci-1-1`` (format B).

    The ``.sig``-style manifest (one simple-signing layer, dummy config) with
    ``config.mediaType = artifactType = application/vnd.dev.cosign.artifact.sig.v1+json`` and a
    ``subject``, pushed by digest; then the fallback index is updated.
    """
    target = sig_repo or repo
    payload = payload_override or simple_signing_payload(
        docker_reference or f"{pusher.host}/{repo}", image_digest, optional
    )
    signature = sign_bytes(key, payload, ed25519ph=ed25519ph)
    layer = Layer(
        payload,
        SIMPLESIGNING_MEDIA_TYPE,
        {**(annotations or {}), SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
    )
    subject = await _subject(pusher, repo, image_digest)
    digest, body = await push_signature_manifest(
        pusher,
        target,
        None,
        [layer],
        config_media_type=COSIGN_SIG_ARTIFACT_TYPE,
        subject=subject,
        artifact_type=COSIGN_SIG_ARTIFACT_TYPE,
    )
    entry = {
        "mediaType": OCI_MANIFEST,
        "size": len(body),
        "digest": digest,
        "artifactType": COSIGN_SIG_ARTIFACT_TYPE,
    }
    index_digest = await update_fallback_index(pusher, target, image_digest, entry)
    return PushedSignature(target, None, digest, body, layer, payload, signature, index_digest)


# -- format C: cosign v3 Sigstore bundle referrer --------------------------------------------------


async def sign_bundle_v3(
    pusher: Pusher,
    repo: str,
    image_digest: str,
    key: PrivateKey,
    *,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
    predicate: Mapping[str, Any] | None = None,
    subject_digest: str | None = None,
    subject_annotations: Mapping[str, Any] | None = None,
    message_signature: bool = False,
    old_ggcr_fallback: bool = False,
    fallback_annotations: bool = False,
    sig_repo: str | None = None,
    statement_override: bytes | None = None,
    emit_empty_tlog_entries: bool = False,
    created: str | None = None,
) -> PushedSignature:
    """Sign (or attest) like cosign v3 ``sign --key k --tlog-upload=false`` (format C).

    An in-toto Statement v1 (subject = ``subject_digest`` or the image, no ``name``) in a DSSE
    envelope, in a Sigstore bundle v0.3 with ``publicKey.hint`` and no tlog entries; the bundle is
    the only layer of a referrer manifest (empty config ``{}``, ``artifactType`` on the manifest and
    on the config descriptor, ``subject`` = the image, annotations created/content/predicateType),
    pushed by digest; then the fallback index is updated. ``cosign attest`` v3 writes the same with
    another ``predicate_type``.

    ``message_signature=True`` writes a ``messageSignature`` bundle instead: the signature covers
    the **image manifest bytes** (whose sha256 is the image digest, so ``messageDigest`` equals the
    image digest). cosign does not store this form for images; signgate should treat it as
    unsupported or verify it against the manifest bytes. Its manifest annotations are
    ``dev.sigstore.bundle.content: message-signature`` and no predicateType.

    ``old_ggcr_fallback`` / ``fallback_annotations``: see :func:`push_referrer`.
    """
    target = sig_repo or repo
    if message_signature:
        artifact = (await pusher.get_manifest(repo, image_digest)).body
        signed = artifact
        signature = sign_bytes(key, signed)
        content: DSSEContent | MessageSignature = MessageSignature(artifact, signature)
        annotations = {BUNDLE_CONTENT_ANNOTATION: "message-signature"}
    else:
        statement = statement_override or statement_v1(
            subject_digest or image_digest,
            predicate_type,
            predicate,
            subject_annotations=subject_annotations,
        )
        signed = pae(INTOTO_PAYLOAD_TYPE, statement)
        signature = sign_bytes(key, signed)
        content = DSSEContent(statement, signature)
        annotations = {
            BUNDLE_CONTENT_ANNOTATION: "dsse-envelope",
            BUNDLE_PREDICATE_TYPE_ANNOTATION: predicate_type,
        }
    annotations[CREATED_ANNOTATION] = created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    layer = Layer(
        bundle_v03(key, content, emit_empty_tlog_entries=emit_empty_tlog_entries),
        BUNDLE_V03_MEDIA_TYPE,
    )
    subject = await _subject(pusher, repo, image_digest)
    digest, body, index_digest = await push_referrer(
        pusher,
        target,
        subject,
        [layer],
        artifact_type=BUNDLE_V03_MEDIA_TYPE,
        config_artifact_type=BUNDLE_V03_MEDIA_TYPE,
        annotations=annotations,
        old_ggcr_fallback=old_ggcr_fallback,
        fallback_annotations=fallback_annotations,
    )
    return PushedSignature(target, None, digest, body, layer, signed, signature, index_digest)
