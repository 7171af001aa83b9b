"""The signgate test world: real registries, a token server, a pusher, a cosign-format signer and a
fault-injecting proxy.

Modules:
    registry     -- start/stop real ``docker-registry`` (CNCF distribution 2.8) processes.
    token_server -- the Docker/OCI Bearer token endpoint that the ``token`` registry trusts.
    push         -- write blobs, manifests, images and indexes through the registry's normal API.
    formats      -- byte-exact cosign building blocks (keys, payloads, DSSE, bundles, manifests).
    signer       -- write cosign signatures and attestations in cosign's storage formats A/B/C.
    memory_sigstore -- an in-memory Rekor log and Fulcio CA (+ CT log), keyless signatures in them.
    vectors      -- where the vendored cosign/Sigstore vectors are (and the paths inside).
    reviews      -- AdmissionReview requests as the apiserver sends them.
    clock        -- a fake monotonic clock, for TTLs that pass when a test says so.
    fault_proxy  -- a reverse proxy that injects faults a real registry cannot produce.
    rawhttp      -- a minimal second client, used by proof tests to read back independently.
    tls          -- the session CA and loopback certificates.
    kube         -- a fake Kubernetes API (kmock's emulator, made stricter) and Kopf runners.
    kubeapi      -- a real control plane (etcd + kube-apiserver on loopback), kubectl, webhooks.

Fixtures (tests/conftest.py): ``registry`` (HTTP, anonymous), ``registry_basic`` (HTTPS +
htpasswd), ``registry_token`` (HTTPS + Bearer tokens) -- one process each per session;
``pusher`` (for ``registry``), ``fault_proxy`` (in front of ``registry``), ``make_fault_proxy``
(in front of any registry, optionally TLS), ``tls_ca``, ``kube`` (a fresh fake Kubernetes API
per test), ``apiserver`` (a real kube-apiserver, one per session).

Typical use::

    async def test_x(registry_token):
        async with Pusher.for_registry(registry_token) as pusher:
            digest = await pusher.push_random_image("team/app", "v1")
            await signer.sign_bundle_v3(pusher, "team/app", digest, generate_key())

The registry, the pusher, ``formats`` and ``signer`` never import ``signgate``: what they write must
stay independent of the code under test. ``cosign_key``, ``engine`` and ``memory_sigstore`` build
signgate's own types and import it.
"""
