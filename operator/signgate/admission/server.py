"""The webhook's HTTPS server: exact routes, fail-closed answers, hot-reloaded certificates.

Not Kopf's built-in admission server, which answers ``allowed: true`` on a path that names no
handler and keeps per-UID memory on UPDATE (python-stack.md §1.4). Here only ``/validate`` and
``/mutate`` ever answer an AdmissionReview; every other path is a 404.

Two answer channels (as Kopf and the apiserver expect): a request that is not a valid
AdmissionReview gets HTTP 400 with a one-line reason (the apiserver then applies
``failurePolicy: Fail``, i.e. denies); a valid review always gets HTTP 200 with ``allowed`` and,
when denied, a message naming each image, policy and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from signgate.admission.decide import PolicySource, decide_review, internal_error
from signgate.admission.metrics import Metrics
from signgate.admission.review import AdmissionRequest, parse_review
from signgate.engine.verifier import Verifier
from signgate.errors import AdmissionRequestError, ConfigError
from signgate.policy.evaluate import ImageDecision
from signgate.registry import CredentialStore

log = logging.getLogger(__name__)

MAX_REVIEW_BYTES = 3 * 1024 * 1024
"""The apiserver caps request bodies at 3 MiB; an AdmissionReview wraps one object."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How the webhook listens and how long it may think."""

    tls_cert: Path
    tls_key: Path
    address: str = "0.0.0.0"  # noqa: S104 - a webhook is reached by the apiserver over the network
    port: int = 8443
    deadline_seconds: float = 8.0
    """Per request; below the webhook configuration's ``timeoutSeconds`` (10 by default)."""
    cert_check_interval: float = 5.0


class CertificateReloader:
    """Keeps one SSLContext serving the certificate files' current contents.

    New TLS handshakes use the new certificate as soon as it is loaded; connections already open
    carry on undisturbed, so rotation (cert-manager renewing a Secret) drops nothing.
    """

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp: tuple[float, int, float, int] | None = None
        self.reloads = 0
        self.load()

    def _current_stamp(self) -> tuple[float, int, float, int]:
        cert, key = os.stat(self.cert), os.stat(self.key)
        return (cert.st_mtime, cert.st_size, key.st_mtime, key.st_size)

    def load(self) -> None:
        """Load the files now.

        Raises:
            ConfigError: unreadable or mismatched certificate and key.
        """
        try:
            stamp = self._current_stamp()
            # Try the pair on a scratch context first: OpenSSL drops the live context's key as soon
            # as a certificate that does not match it is loaded, so a half-written rotation
            # (new certificate, old key) would leave the server unable to complete any handshake.
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self.cert, self.key)
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load TLS certificate {self.cert} / key {self.key}: {exc}"
            ) from exc
        self._stamp = stamp
        self.reloads += 1

    def check(self) -> bool:
        """Reload if the files changed; True if a new certificate is now served."""
        try:
            stamp = self._current_stamp()
        except OSError as exc:
            log.warning("TLS certificate files unreadable, keeping the current one: %s", exc)
            return False
        if stamp == self._stamp:
            return False
        try:
            self.load()
        except ConfigError as exc:
            # Mid-rotation the cert and key can briefly disagree; keep serving the old pair.
            log.warning("%s; keeping the current certificate", exc)
            return False
        log.info("TLS certificate reloaded from %s", self.cert)
        return True

    async def watch(self, interval: float) -> None:
        """Check the files every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.check()


_ENGINE = web.AppKey("engine", Verifier)
_POLICIES = web.AppKey("policies", object)
_METRICS = web.AppKey("metrics", Metrics)
_SETTINGS = web.AppKey("settings", ServerSettings)
_ON_DENIED = web.AppKey("on_denied", object)

DenialHook = Callable[[AdmissionRequest, str], None]
"""Called for every denied (non-dry-run) request with its message: e.g. to post an Event."""

CredentialsHook = Callable[[AdmissionRequest], Awaitable[CredentialStore | None]]
"""Gives the registry credentials for a request's images (e.g. its imagePullSecrets)."""

_CREDENTIALS_FOR = web.AppKey("credentials_for", object)

VerdictHook = Callable[[AdmissionRequest, Sequence[ImageDecision]], None]
"""Called once per admission (not dry runs) with its image decisions."""

_ON_VERDICT = web.AppKey("on_verdict", object)


async def _review(request: web.Request, *, mutate: bool) -> web.Response:
    metrics = request.app[_METRICS]
    webhook = "mutate" if mutate else "validate"
    started = time.perf_counter()
    body = await request.read()
    try:
        review = parse_review(body, max_bytes=MAX_REVIEW_BYTES)
    except AdmissionRequestError as exc:
        metrics.bad_requests.inc()
        log.warning("rejected a malformed AdmissionReview on /%s: %s", webhook, exc)
        return web.json_response({"error": str(exc)}, status=400)
    policies: PolicySource = request.app[_POLICIES]  # type: ignore[assignment]
    credentials_for = request.app.get(_CREDENTIALS_FOR)
    credentials = await credentials_for(review.request) if callable(credentials_for) else None
    # One deadline for the whole request: time spent reading pull secrets is not given back.
    remaining = request.app[_SETTINGS].deadline_seconds - (time.perf_counter() - started)
    try:
        verdict = await decide_review(
            review.request,
            mutate=mutate,
            engine=request.app[_ENGINE],
            policies=policies,
            deadline_seconds=max(remaining, 0.05),
            credentials=credentials,
        )
    except Exception as exc:
        # decide_review never raises for bad input; a bug must still be a denial with a reason,
        # not an HTTP 500 (which the apiserver turns into a denial that explains nothing).
        log.exception("internal error deciding uid=%s on /%s", review.request.uid, webhook)
        verdict = internal_error(review.request, exc)
    metrics.admission[webhook, "allowed" if verdict.allowed else "denied"].inc()
    on_denied = request.app.get(_ON_DENIED)
    if not verdict.allowed and not mutate and callable(on_denied):
        _call_hook("denial", on_denied, review.request, verdict.message)
    # Count each admission's images once: at /validate, or at /mutate when it denies, because
    # the apiserver then never calls the validating webhook.
    counted = not mutate or not verdict.allowed
    on_verdict = request.app.get(_ON_VERDICT)
    if counted and not review.request.dry_run and callable(on_verdict):
        _call_hook("verdict", on_verdict, review.request, verdict.images)
    if counted:
        for decision in verdict.images:
            failed = decision.warnings or decision.audit  # let through by Warn or Audit mode
            state = "denied" if not decision.allowed else "warned" if failed else "allowed"
            metrics.image[state].inc()
        if verdict.pending:
            metrics.image["pending"].inc(len(verdict.pending))
    metrics.duration[webhook].observe(time.perf_counter() - started)
    req = review.request
    # Denials are logged; admissions only with -v: at thousands a second, formatting a log
    # record per admission costs a third of the server's time, and the apiserver's audit log
    # already has every admission with signgate's audit annotations.
    warned = any(d.warnings for d in verdict.images)
    level = logging.DEBUG if verdict.allowed and not warned else logging.INFO
    if not log.isEnabledFor(level):
        return web.json_response(verdict.response)
    log.log(
        level,
        "%s uid=%s %s %s/%s images=%d allowed=%s%s",
        webhook,
        req.uid,
        req.kind.kind,
        req.namespace or "-",
        req.name or "-",
        len(verdict.images) + len(verdict.pending),
        verdict.allowed,
        " dryRun" if req.dry_run else "",
        extra={
            "uid": req.uid,
            "webhook": webhook,
            "kind": req.kind.kind,
            "namespace": req.namespace,
            "object": req.name,
            "allowed": verdict.allowed,
            "denied_images": [d.pinned or d.image for d in verdict.images if not d.allowed],
        },
    )
    return web.json_response(verdict.response)


def _call_hook(what: str, hook: Callable[..., None], *args: object) -> None:
    """Report a decision (Events, status counts); a failure here never changes the answer."""
    try:
        hook(*args)
    except Exception:
        log.exception("the %s hook failed; the answer stands", what)


async def _validate(request: web.Request) -> web.Response:
    return await _review(request, mutate=False)


async def _mutate(request: web.Request) -> web.Response:
    return await _review(request, mutate=True)


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    policies: PolicySource = request.app[_POLICIES]  # type: ignore[assignment]
    if policies.ready():
        return web.Response(text=f"ok: {len(policies.current())} TrustPolicies\n")
    return web.Response(status=503, text="TrustPolicies not loaded yet\n")


async def _metrics(request: web.Request) -> web.Response:
    output = generate_latest(request.app[_METRICS].registry)
    return web.Response(body=output, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(
    *,
    engine: Verifier,
    policies: PolicySource,
    settings: ServerSettings,
    metrics: Metrics,
    on_denied: DenialHook | None = None,
    credentials_for: CredentialsHook | None = None,
    on_verdict: VerdictHook | None = None,
) -> web.Application:
    """The webhook application: exactly five routes, everything else 404."""
    app = web.Application(client_max_size=MAX_REVIEW_BYTES + 64 * 1024)
    app[_ON_DENIED] = on_denied
    app[_CREDENTIALS_FOR] = credentials_for
    app[_ON_VERDICT] = on_verdict
    app[_ENGINE] = engine
    app[_POLICIES] = policies
    app[_METRICS] = metrics
    app[_SETTINGS] = settings
    app.router.add_post("/validate", _validate)
    app.router.add_post("/mutate", _mutate)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app


@contextlib.asynccontextmanager
async def running_server(
    app: web.Application, settings: ServerSettings
) -> AsyncIterator[tuple[web.AppRunner, CertificateReloader, int]]:
    """Serve ``app`` over HTTPS until the context exits; yields the runner, reloader and port."""
    reloader = CertificateReloader(settings.tls_cert, settings.tls_key)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    # aiohttp's default listen backlog (128) overflows when many apiserver connections (re)open at
    # once, e.g. after a restart: the kernel drops their SYNs and each retries 1 s, 3 s, 7 s later.
    site = web.TCPSite(
        runner, settings.address, settings.port, ssl_context=reloader.context, backlog=1024
    )
    await site.start()
    port = settings.port
    if port == 0 and runner.addresses:
        port = runner.addresses[0][1]
    watcher = asyncio.create_task(
        reloader.watch(settings.cert_check_interval), name="signgate:cert-reloader"
    )
    try:
        yield runner, reloader, port
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await runner.cleanup()
