"""Run the operator: Kopf's watches feeding the indices, and the webhook server beside them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kopf

from signgate.admission.metrics import Metrics
from signgate.admission.review import AdmissionRequest
from signgate.admission.server import ServerSettings, make_app, running_server
from signgate.engine.verifier import Verifier
from signgate.errors import ConfigError
from signgate.kube.api import KubeApi
from signgate.kube.events import EventReporter
from signgate.kube.handlers import (
    LastGoodKeys,
    index_entry,
    register_handlers,
    watch_secret_keys,
)
from signgate.kube.pullsecrets import PullSecretResolver
from signgate.kube.recent import RecentDecisions
from signgate.kube.recent_status import INTERVAL_SECONDS, publish_recent_decisions, replica_name
from signgate.kube.resync import INTERVAL_SECONDS as RESYNC_SECONDS
from signgate.kube.resync import resync_policies
from signgate.kube.source import ClusterPolicySource, PolicyEntry
from signgate.policy.evaluate import ImageDecision

log = logging.getLogger(__name__)

NO_CLUSTER = (
    "the operator stopped: no usable Kubernetes credentials (in-cluster service account or "
    "kubeconfig), or the API is unreachable; to serve without a cluster, use --policy FILE"
)


def operator_settings() -> kopf.OperatorSettings:
    """Kopf settings for a webhook replica: standalone, quiet, annotations for progress."""
    settings = kopf.OperatorSettings()
    # Every replica must keep its watches (and so its index) alive; peering would pause them.
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="signgate.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="signgate.dev", key="last-handled-configuration"
    )
    return settings


async def run_operator(
    *,
    engine: Verifier,
    server: ServerSettings,
    stop: asyncio.Event,
    registry: kopf.OperatorRegistry | None = None,
    api: KubeApi | None = None,
    secret_namespace: str | None = None,
    secret_check_interval: float = 60.0,
    global_pull_secret: tuple[str, str] | None = None,
    on_serving: Callable[[int, ClusterPolicySource], None] | None = None,
    status_interval: float = INTERVAL_SECONDS,
    status_last_denial: bool = True,
    resync_interval: float = RESYNC_SECONDS,
) -> None:
    """Serve the webhook with TrustPolicies from the cluster until ``stop`` is set.

    Args:
        engine: the verification engine.
        server: where and how to listen.
        stop: set it to stop gracefully.
        registry: a Kopf registry with the caller's own login handler (tests); signgate's
            handlers are added to it. Without one, signgate logs in as a Pod or via kubeconfig.
        api: an API client already connected (with ``registry``); else the login connects one.
        secret_namespace: where a ``secretRef`` without a namespace looks (default: this Pod's
            namespace from ``$POD_NAMESPACE``, else ``signgate``).
        secret_check_interval: how often Secret-held keys are re-read.
        global_pull_secret: (namespace, name) of a pull secret used for every workload, after
            the workload's own imagePullSecrets and its ServiceAccount's.
        on_serving: called with the bound port and the policy source once the server listens.
        status_interval: how often each policy's ``status.recentDecisions`` may be written.
        status_last_denial: whether that status names the last denial (image, object, reason).
        resync_interval: how often TrustPolicies are re-listed, so that one deleted while the
            watch was down stops being enforced (`signgate.kube.resync`).
    """
    login = registry is None
    registry = registry or kopf.OperatorRegistry()
    api = api or KubeApi()
    source = ClusterPolicySource(api)
    secret_namespace = secret_namespace or os.environ.get("POD_NAMESPACE") or "signgate"
    last_good: LastGoodKeys = {}
    register_handlers(
        registry,
        source,
        api=api,
        login=login,
        secret_namespace=secret_namespace,
        last_good=last_good,
    )
    events = EventReporter(api)
    recent = RecentDecisions(last_denial=status_last_denial)
    recent_changed = asyncio.Event()

    def record(request: AdmissionRequest, decisions: Sequence[ImageDecision]) -> None:
        # Objects made by controllers often have no name yet (generateName).
        name = request.name or "(generated name)"
        where = f"{request.namespace}/{name}" if request.namespace else name
        recent.record(decisions, f"{request.kind.kind} {where}")
        recent_changed.set()

    app = make_app(
        engine=engine,
        policies=source,
        settings=server,
        metrics=Metrics(engine),
        on_denied=events,
        credentials_for=PullSecretResolver(api, global_secret=global_pull_secret),
        on_verdict=record,
    )
    async with running_server(app, server) as (_, _, port):
        log.info(
            "serving /validate and /mutate on https://%s:%d; TrustPolicies from the cluster",
            server.address,
            port,
        )
        if on_serving is not None:
            on_serving(port, source)
        secrets = asyncio.create_task(
            watch_secret_keys(
                source,
                api,
                default_namespace=secret_namespace,
                interval=secret_check_interval,
                last_good=last_good,
            ),
            name="signgate:secret-keys",
        )
        publisher = asyncio.create_task(
            publish_recent_decisions(
                recent,
                source,
                api,
                replica=replica_name(),
                changed=recent_changed,
                interval=status_interval,
            ),
            name="signgate:recent-decisions",
        )

        async def rebuild(body: Mapping[str, Any]) -> PolicyEntry:
            return await index_entry(
                api, body, secret_namespace=secret_namespace, last_good=last_good
            )

        resync = asyncio.create_task(
            resync_policies(
                source, api, rebuild=rebuild, forget=engine.forget_policy, interval=resync_interval
            ),
            name="signgate:resync-policies",
        )
        try:
            await kopf.operator(
                registry=registry,
                settings=operator_settings(),
                standalone=True,
                clusterwide=True,
                stop_flag=stop,
                memo=kopf.Memo(),
            )
        except kopf.LoginError as exc:
            raise ConfigError(NO_CLUSTER) from exc
        finally:
            for task in (secrets, publisher, resync):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await events.drain()
            await api.close()
    # Kopf returns on its own only when it stopped: it replaces our SIGTERM/SIGINT handlers with
    # its own, so a signal stops it without setting ``stop``. Having never logged in is the other
    # way it ends early (no credentials), and that one is an error.
    if not stop.is_set() and not api.connected:
        raise ConfigError(NO_CLUSTER)
