"""The webhook's HTTPS server: exact routes, fail-closed answers, hot-reloaded certificates.

Not Kopf's built-in admission server, which answers ``allowed: true`` on a path that names no
handler and keeps per-UID memory on UPDATE (python-stack.md §1.4). Here only ``/validate`` and
``/mutate`` ever answer an AdmissionReview; every other path is a 404.

Two answer channels (as Kopf and the apiserver expect): a request that is not a valid
AdmissionReview gets HTTP 400 with a one-line reason (the apiserver then applies
``failurePolicy: Fail``, i.e. denies); a valid review always gets HTTP 200 with ``allowed`` and,
when denied, a message naming each image, policy and reason.

Only the apiserver may ask for a decision (``ServerSettings.client_ca``, off by default). A
decision has side effects: it reads the pull secrets of the namespace the review names, posts a
Warning Event with the review's text on the object it names, moves TrustPolicy status counts and
fills caches. The apiserver calls admission only after it has authenticated the request's user
and authorised the change (RBAC), so behind it those effects only ever follow from a change
someone was allowed to make; a forged review posted straight to the port skips all of that. With
a client CA the TLS context asks every client for a certificate and verifies one, if sent,
against that CA alone (no system roots); ``/validate`` and ``/mutate`` then refuse, with HTTP 403
and before reading the body, a connection that presented no verified certificate or one whose
subject CN and DNS names are all outside ``client_names``. ``ssl.CERT_OPTIONAL``, not
``CERT_REQUIRED``, and only those two paths, because the other callers cannot present a
certificate: the kubelet's probes (``/healthz``, ``/readyz``) and Prometheus (``/metrics``) share
the port, and what those paths reveal is not worth authenticating. A certificate that is sent and
does not verify fails the handshake on every path. The apiserver sends its webhook client
certificate only when its AdmissionConfiguration names one (docs/operations.md, "Only the
apiserver may call the webhook").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

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
    client_ca: Path | None = None
    """PEM CA certificates: when set, only callers presenting a certificate one of them issued may
    POST to ``/validate`` and ``/mutate`` (the apiserver's webhook client certificate)."""
    client_names: tuple[str, ...] = ()
    """With ``client_ca``: that certificate's subject CN or one of its DNS names must be one of
    these; empty, any certificate the CA issued will do."""

    def __post_init__(self) -> None:
        if self.client_names and self.client_ca is None:
            raise ConfigError("client names need a client CA to check certificates against")


def trust_client_ca(context: ssl.SSLContext, ca_file: Path) -> None:
    """Make ``context`` ask TLS clients for a certificate and verify one, if sent, against
    ``ca_file`` (``ssl.CERT_OPTIONAL``: callers without one still connect; see the module).

    Raises:
        ConfigError: the file cannot be read or holds no CA certificate.
    """
    try:
        context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:  # before OSError, its base class
        raise ConfigError(f"client CA {ca_file} holds no PEM certificate") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read client CA {ca_file}: {exc.strerror or exc}") from exc
    if not context.cert_store_stats()["x509_ca"]:
        raise ConfigError(f"client CA {ca_file} holds no CA certificate")
    context.verify_mode = ssl.CERT_OPTIONAL


def check_client_ca(ca_file: Path) -> None:
    """Fail now, at start-up, if ``ca_file`` cannot serve as the client CA.

    Raises:
        ConfigError: the file cannot be read or holds no CA certificate.
    """
    trust_client_ca(_server_context(), ca_file)


def _server_context() -> ssl.SSLContext:
    # Trusts no root (a server-side default context loads none of the system's): the client CA,
    # added by trust_client_ca, must be the only one, or any public CA's client certificates
    # would verify. tests/integration/test_webhook.py holds this.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class CertificateReloader:
    """Keeps one SSLContext serving the certificate files' current contents.

    New TLS handshakes use the new certificate as soon as it is loaded; connections already open
    carry on undisturbed, so rotation (cert-manager renewing a Secret) drops nothing. The client
    CA (``client_ca``) is read once, here: a reload replaces the certificate and key only, so
    client certificates stay required across rotations.
    """

    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self.cert = cert
        self.key = key
        self.context = _server_context()
        if client_ca is not None:
            trust_client_ca(self.context, client_ca)
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
            _server_context().load_cert_chain(self.cert, self.key)
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


@dataclass(frozen=True, slots=True)
class _ClientAuth:
    names: frozenset[str]
    refused: Mapping[tuple[str, str], Counter]  # (webhook, reason) -> its labelled counter


_CLIENT_AUTH = web.AppKey("client_auth", object)


def _certificate_names(peercert: dict[str, Any]) -> set[str]:
    """The subject CNs and DNS names of a verified certificate (``SSLSocket.getpeercert()``)."""
    names = {
        value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"
    }
    names.update(value for kind, value in peercert.get("subjectAltName", ()) if kind == "DNS")
    return names


def _refuse_caller(request: web.Request, auth: _ClientAuth, webhook: str) -> web.Response | None:
    """HTTP 403 unless the connection presented a verified certificate with an allowed name.

    Called before the body is read: a refused caller causes no parse, Secret read, Event, status
    count or cache entry. The log line names the peer and the certificate, never the request.
    """
    peercert = request.get_extra_info("peercert")
    if not peercert:  # None: no certificate; {}: not verified (CERT_NONE: client auth is off)
        reason, detail = "no-certificate", "without a client certificate"
    elif auth.names:
        names = _certificate_names(peercert)
        if not names.isdisjoint(auth.names):
            return None
        reason = "name"
        shown = ", ".join(repr(n[:64]) for n in sorted(names)[:4]) or "no name"
        detail = f"with a client certificate for {shown}, not an allowed --client-name"
    else:
        return None
    auth.refused[webhook, reason].inc()
    log.warning("refused a caller on /%s from %s %s", webhook, request.remote or "?", detail)
    why = "none was presented" if reason == "no-certificate" else "its names are not allowed"
    message = (
        f"signgate: only the kube-apiserver may call /{webhook}, presenting a client certificate "
        f"from signgate's client CA; {why} (docs/operations.md)"
    )
    # Also shaped as a Kubernetes Status: an apiserver that sends no certificate (or the wrong
    # one) then shows this message in its "failed calling webhook" error, not just "unknown".
    return web.json_response(
        {
            "error": message,
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": "Forbidden",
            "code": 403,
        },
        status=403,
    )


async def _review(request: web.Request, *, mutate: bool) -> web.Response:
    metrics = request.app[_METRICS]
    webhook = "mutate" if mutate else "validate"
    auth = request.app[_CLIENT_AUTH]
    if isinstance(auth, _ClientAuth) and (refused := _refuse_caller(request, auth, webhook)):
        return refused
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
    # Report and count each admission once: at /validate, or at /mutate when it denies, because
    # the apiserver then never calls the validating webhook (an Event posted only at /validate
    # was never posted for a denial, with the chart's two webhooks).
    counted = not mutate or not verdict.allowed
    on_denied = request.app.get(_ON_DENIED)
    if not verdict.allowed and callable(on_denied):
        _call_hook("denial", on_denied, review.request, verdict.message)
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
    """The webhook application: exactly five routes, everything else 404.

    With ``settings.client_ca``, ``/validate`` and ``/mutate`` answer only callers that presented
    an allowed client certificate (the TLS side is :func:`running_server`'s).
    """
    app = web.Application(client_max_size=MAX_REVIEW_BYTES + 64 * 1024)
    app[_CLIENT_AUTH] = (
        _ClientAuth(frozenset(settings.client_names), metrics.refused_caller)
        if settings.client_ca is not None
        else None
    )
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
    reloader = CertificateReloader(settings.tls_cert, settings.tls_key, settings.client_ca)
    if settings.client_ca is not None:
        log.info(
            "/validate and /mutate answer only client certificates issued by %s%s",
            settings.client_ca,
            f" for {', '.join(settings.client_names)}" if settings.client_names else "",
        )
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
