"""Registry credentials of the workload being admitted: what its kubelet would use to pull.

The Pod's ``imagePullSecrets``, then its ServiceAccount's, then an optional global Secret named in
the server configuration; the first that has credentials for a registry wins, as the kubelet
does. Secrets and ServiceAccounts are read through the API (RBAC: ``get`` on secrets and
serviceaccounts) and kept for a short while, so a Deployment's pods cost one read, not hundreds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from signgate.admission.images import pod_spec_of
from signgate.admission.review import AdmissionRequest
from signgate.cache import TTLCache
from signgate.errors import ConfigError
from signgate.kube.api import KubeApi, KubeApiError
from signgate.registry import CredentialStore

log = logging.getLogger(__name__)

DOCKER_CONFIG_JSON = ".dockerconfigjson"
DOCKER_CFG = ".dockercfg"


def store_from_secret(data: Mapping[str, bytes], where: str) -> CredentialStore:
    """Credentials from a ``kubernetes.io/dockerconfigjson`` (or legacy ``dockercfg``) Secret.

    Raises:
        ConfigError: the Secret holds neither key, or its content does not parse.
    """
    if DOCKER_CONFIG_JSON in data:
        return CredentialStore.from_docker_config(data[DOCKER_CONFIG_JSON], where)
    if DOCKER_CFG in data:
        # The legacy format is the "auths" map itself.
        try:
            auths = json.loads(data[DOCKER_CFG])
        except ValueError as exc:
            raise ConfigError(f"{where}: .dockercfg is not JSON") from exc
        return CredentialStore.from_docker_config(json.dumps({"auths": auths}).encode(), where)
    raise ConfigError(f"{where} is not an image pull secret (no .dockerconfigjson)")


class PullSecretResolver:
    """``await resolver(request)`` gives the credentials to use for the request's images."""

    def __init__(
        self,
        api: KubeApi,
        *,
        global_secret: tuple[str, str] | None = None,
        ttl: float = 30.0,
        budget: float = 2.0,
    ) -> None:
        self._api = api
        self._global = global_secret
        self._ttl = ttl
        self._budget = budget
        self._secrets: TTLCache[tuple[str, str], CredentialStore] = TTLCache(max_entries=4096)
        self._accounts: TTLCache[tuple[str, str], tuple[str, ...]] = TTLCache(max_entries=4096)

    async def _secret(self, namespace: str, name: str) -> CredentialStore:
        cached = self._secrets.get((namespace, name))
        if cached is not None:
            return cached
        try:
            data = await self._api.read_secret(namespace, name)
            store = store_from_secret(data, f"Secret {namespace}/{name}")
        except (KubeApiError, ConfigError) as exc:
            # A pull secret we cannot use is the kubelet's problem too; go on without it.
            log.info("image pull secret %s/%s not used: %s", namespace, name, exc)
            store = CredentialStore.empty()
        self._secrets.put((namespace, name), store, self._ttl)
        return store

    async def _account_secrets(self, namespace: str, account: str) -> tuple[str, ...]:
        cached = self._accounts.get((namespace, account))
        if cached is not None:
            return cached
        names: tuple[str, ...] = ()
        try:
            doc: Any = await self._api.read(
                f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}"
            )
            refs = doc.get("imagePullSecrets") if isinstance(doc, dict) else None
            names = tuple(
                str(ref["name"]) for ref in refs or () if isinstance(ref, dict) and ref.get("name")
            )
        except KubeApiError as exc:
            log.info("service account %s/%s not read: %s", namespace, account, exc)
        self._accounts.put((namespace, account), names, self._ttl)
        return names

    async def _resolve(self, request: AdmissionRequest) -> CredentialStore | None:
        namespace = request.namespace
        spec = pod_spec_of(request)
        if not namespace or spec is None or not self._api.connected:
            return None
        names = [
            str(ref["name"])
            for ref in spec.get("imagePullSecrets") or ()
            if isinstance(ref, dict) and ref.get("name")
        ]
        account = spec.get("serviceAccountName") or "default"
        names.extend(await self._account_secrets(namespace, str(account)))
        sources = [(namespace, name) for name in dict.fromkeys(names)]
        if self._global is not None:
            sources.append(self._global)
        if not sources:
            return None
        stores = await asyncio.gather(*(self._secret(ns, name) for ns, name in sources))
        merged = CredentialStore.empty()
        for store in reversed(stores):  # earlier sources win
            merged = store.overlaid_on(merged)
        return merged

    async def __call__(self, request: AdmissionRequest) -> CredentialStore | None:
        """The request's credentials, or None to use the server's own (never raises)."""
        try:
            async with asyncio.timeout(self._budget):
                return await self._resolve(request)
        except TimeoutError:
            log.warning(
                "reading image pull secrets took over %.1fs; going on without them", self._budget
            )
            return None
