"""The Kubernetes API calls signgate makes itself: read a Secret, annotate a policy, post an Event.

Kopf does the watching; this small client does the rest with the same credentials (a
``kopf.ConnectionInfo`` from the login handler), with a timeout on every call and bounded bodies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import json
import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp
import kopf

from signgate.errors import SigngateError, truncate
from signgate.registry import read_capped

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_LIST_BYTES = 32 * 1024 * 1024
"""One page of a list: 100 Pods with their managedFields can pass a few MiB."""
TIMEOUT = aiohttp.ClientTimeout(total=5)


class KubeApiError(SigngateError):
    """A Kubernetes API call failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        self.status = status
        super().__init__(message)


class KubeApi:
    """A minimal client; connect it with the login handler's ``ConnectionInfo``."""

    def __init__(self, info: kopf.ConnectionInfo | None = None) -> None:
        self._info = info
        self._session: aiohttp.ClientSession | None = None

    def connect(self, info: kopf.ConnectionInfo) -> None:
        """Use these credentials from now on (the login handler calls this)."""
        self._info = info
        session, self._session = self._session, None
        if session is not None:
            asyncio.get_running_loop().create_task(session.close())

    @property
    def connected(self) -> bool:
        """Whether credentials are known."""
        return self._info is not None

    async def close(self) -> None:
        """Release connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> tuple[aiohttp.ClientSession, kopf.ConnectionInfo]:
        if self._info is None:
            raise KubeApiError("not connected to the Kubernetes API yet")
        if self._session is None:
            ssl = self._info.as_ssl_context() if self._info.server.startswith("https") else None
            self._session = aiohttp.ClientSession(
                base_url=self._info.server.rstrip("/") + "/",
                headers=self._info.as_http_headers(),
                connector=aiohttp.TCPConnector(ssl=ssl if ssl is not None else True),
                timeout=TIMEOUT,
            )
        return self._session, self._info

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        max_bytes: int = MAX_BODY_BYTES,
    ) -> Any:
        session, _ = self._client()
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with session.request(
                method, path.lstrip("/"), data=data, headers=headers
            ) as resp:
                raw = await read_capped(resp, max_bytes)
                if raw is None:
                    raise KubeApiError(
                        f"{method} {path}: response over {max_bytes} bytes", resp.status
                    )
                if resp.status >= 400:
                    text = truncate(raw.decode("utf-8", "replace"))
                    raise KubeApiError(f"{method} {path}: HTTP {resp.status}: {text}", resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeApiError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise KubeApiError(f"{method} {path}: answer is not JSON") from exc

    async def read(self, path: str) -> Any:
        """GET ``path`` and return the decoded JSON.

        Raises:
            KubeApiError: the call failed.
        """
        return await self._request("GET", path)

    async def list_all(self, path: str, *, page: int = 100) -> list[dict[str, Any]]:
        """Every item of a list endpoint, read page by page (``limit`` and ``continue``).

        Raises:
            KubeApiError: a page could not be read.
        """
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = f"limit={page}" + (f"&continue={urllib.parse.quote(token)}" if token else "")
            doc = await self._request("GET", f"{path}?{query}", max_bytes=MAX_LIST_BYTES)
            if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
                raise KubeApiError(f"GET {path}: not a list")
            items.extend(item for item in doc["items"] if isinstance(item, dict))
            metadata = doc.get("metadata")
            token = metadata.get("continue", "") if isinstance(metadata, dict) else ""
            if not token:
                return items

    async def patch_status(self, path: str, status: Mapping[str, Any]) -> None:
        """Merge-patch ``status`` onto the status subresource of the object at ``path``."""
        await self._request(
            "PATCH",
            f"{path}/status",
            body={"status": dict(status)},
            content_type="application/merge-patch+json",
        )

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        """The decoded ``data`` of a Secret.

        Raises:
            KubeApiError: it cannot be read (404 if absent, 403 if RBAC forbids).
        """
        doc = await self._request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        data = doc.get("data") if isinstance(doc, dict) else None
        decoded: dict[str, bytes] = {}
        for key, value in (data or {}).items():
            try:
                decoded[str(key)] = base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise KubeApiError(f"Secret {namespace}/{name}: key {key!r} is not base64") from exc
        return decoded

    async def annotate(self, path: str, annotations: Mapping[str, str]) -> None:
        """Merge-patch annotations onto the object at ``path``."""
        await self._request(
            "PATCH",
            path,
            body={"metadata": {"annotations": dict(annotations)}},
            content_type="application/merge-patch+json",
        )

    async def post_event(
        self,
        *,
        namespace: str,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        event_type: str = "Warning",
    ) -> None:
        """Record an Event about ``involved`` (an ObjectReference)."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        name = str(involved.get("name") or "object")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name[:200]}.signgate.", "namespace": namespace},
            "involvedObject": dict(involved),
            "reason": reason,
            "message": truncate(message, 1024),
            "type": event_type,
            "source": {"component": "signgate"},
            "reportingComponent": "signgate.dev/webhook",
            "reportingInstance": "signgate",
            "firstTimestamp": now[:19] + "Z",
            "lastTimestamp": now[:19] + "Z",
            "count": 1,
        }
        await self._request("POST", f"/api/v1/namespaces/{namespace}/events", body=event)
