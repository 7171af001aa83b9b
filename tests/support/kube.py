"""A fake Kubernetes API (kmock's emulator, made stricter) and a way to run Kopf against it.

signgate's operator mode needs an API server: Kopf discovers resources, lists and watches
TrustPolicies and Namespaces, patches ``/status`` and posts Events. Tests get one from kmock 0.8
(nolar's mock server, by Kopf's author): ``KubernetesEmulator`` serves API discovery and keeps
objects in memory. Out of the box it is too loose for Kopf, so :class:`KubeEmulator` adds what
a real API server does and Kopf relies on:

* ``metadata.resourceVersion`` (one counter for the whole cluster), ``uid``,
  ``creationTimestamp``, ``generation`` (bumped when anything outside ``metadata``/``status``
  changes), ``generateName`` (Kopf posts Events with it), the ``kubernetes.io/metadata.name``
  label on Namespaces;
* watches honour ``?resourceVersion=N`` (kmock replays every object as ``ADDED`` on each watch),
  ``sendInitialEvents`` and equality label/field selectors;
* merge-patch (``None`` deletes) and JSON-patch; a failed JSON-patch ``test`` is HTTP 422, which
  is what Kopf's optimistic finalizer patches expect (kmock answers 500);
* the ``status`` subresource: ``PATCH .../status`` changes only ``.status``, a patch of the main
  resource and a create ignore ``.status``;
* deletion with finalizers (``deletionTimestamp`` first, gone when the last finalizer goes),
  a no-op patch changes nothing and emits no event (as in Kubernetes);
* a write is applied only when it reaches the built-in behaviour: a reaction a test adds to
  inject a fault (``cluster.emulator[...] << 500``) makes the write fail and leaves the object
  alone (kmock itself stores the write even then).

Not emulated: PUT and DELETE of a collection (404), strategic-merge semantics (treated as a
merge-patch), server-side apply, set-based label selectors, cascading deletion of a namespace's
objects, schema validation, admission (webhooks are never called), RBAC, ``timeoutSeconds``,
``410 Gone``. kmock 0.8 also cannot parse ``/api/v1/namespaces[/NAME]`` (see the fix below).

Threads. The emulator runs in its own thread and event loop (:class:`FakeCluster`); the operator
runs in another (:func:`operator_thread`). Kopf must not share the test's loop: when it stops, it
treats every unfinished task created in its loop since it started as its own ("hung tasks",
``kopf._core.reactor.running.run_tasks``), waits up to 5 s for them and then cancels them. In the
test's loop that would include a pytest-asyncio fixture's teardown task (each setup, test and
teardown is a task of its own) and the connection handlers of an emulator in the same loop.

Typical use (fixture ``kube`` in tests/conftest.py)::

    async def test_x(kube: FakeCluster) -> None:
        registry = kopf.OperatorRegistry()

        @kopf.index("signgate.dev", "v1alpha1", "trustpolicies", registry=registry, id="tp")
        def tp(name, spec, **_):
            return {name: dict(spec)}

        await kube.create(trust_policy("p1", {"images": ["x/*"]}))
        async with run_kopf(kube, registry=registry) as op:
            async def indexed():
                return "p1" in await op.index("tp")
            await eventually(indexed)
            await kube.patch(TRUSTPOLICIES, "p1", {"spec": {"images": []}})
            body = await kube.wait_for_object(TRUSTPOLICIES, "p1", lambda b: "status" in b)

signgate's own entry point (which calls ``kopf.operator`` itself and takes a registry holding
the caller's login handler) runs the same way::

    registry = kopf.OperatorRegistry()
    add_login(registry, kube)
    async with operator_thread(lambda stop: run_operator(..., stop=stop, registry=registry)):
        ...

Fault injection uses kmock's DSL on ``kube.emulator`` (add reactions before starting the
operator), e.g. the first status patch fails::

    kube.emulator[kmock.method.PATCH, TRUSTPOLICIES.ref, kmock.subresource("status")][:1] << 500

What a watch misses (a deletion during an outage, a change while it hangs) is made with
``await kube.unannounced(TRUSTPOLICIES, "p1", None)``: the object goes (or changes) unannounced.

An unexpected exception inside the emulator (not a deliberate Kubernetes error) fails the test
when the cluster stops.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import copy
import datetime
import inspect
import json
import logging
import secrets
import string
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import attrs
import jsonpatch
import kmock
import kopf
from aiohttp import web
from kmock._internal import k8s_dicts, parsing, rendering  # kmock 0.8: no public types

from support._threaded import ThreadedApp

T = TypeVar("T")
Body = dict[str, Any]


# --------------------------------------------------------------------------------------------------
# Resources served by the fake cluster.


@dataclass(frozen=True)
class Resource:
    """One API resource: where it lives and how it is discovered."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset({"create", "delete", "get", "list", "patch", "watch"})

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def ref(self) -> kmock.resource:
        return kmock.resource(self.group, self.version, self.plural)

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [base]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        if subresource is not None:
            parts.append(subresource)
        return "/".join(parts)


NAMESPACES = Resource("", "v1", "namespaces", "Namespace", False, frozenset({"status"}))
SECRETS = Resource("", "v1", "secrets", "Secret", True)
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)
EVENTS = Resource("", "v1", "events", "Event", True)
PODS = Resource("", "v1", "pods", "Pod", True, frozenset({"status"}))
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount", True)
TRUSTPOLICIES = Resource(
    "signgate.dev", "v1alpha1", "trustpolicies", "TrustPolicy", False, frozenset({"status"})
)
CRDS = Resource(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    False,
    frozenset({"status"}),
)
VALIDATING_WEBHOOKS = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration",
    False,
)
MUTATING_WEBHOOKS = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration",
    False,
)
DEFAULT_RESOURCES: tuple[Resource, ...] = (
    NAMESPACES,
    SECRETS,
    CONFIGMAPS,
    EVENTS,
    PODS,
    SERVICEACCOUNTS,
    TRUSTPOLICIES,
    CRDS,
    VALIDATING_WEBHOOKS,
    MUTATING_WEBHOOKS,
)
DEFAULT_NAMESPACES: tuple[str, ...] = ("default", "kube-system")

ResourceLike = Resource | str


# --------------------------------------------------------------------------------------------------
# A kmock 0.8 bug: its URL parser takes "namespaces" after the version for the start of
# "namespaces/NS/plural" always, so /api/v1/namespaces (list, watch, create) fails with a
# ValueError (HTTP 500) and /api/v1/namespaces/NAME is read as namespace=NAME with no resource.
# Kopf lists and watches namespaces; replace the parser while the bug is there.

_kmock_parse_path = parsing.parse_path


def _parse_k8s_path(path: str) -> parsing.ParsedPath:
    parts = path.strip("/").split("/")
    if parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    elif parts[0] == "api" and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    else:  # discovery (/apis/GROUP) and non-Kubernetes paths: kmock gets those right
        return _kmock_parse_path(path)
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        ns, rest = rest[1], rest[2:]
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return parsing.ParsedPath(group, version, plural, ns, name, subresource)


def _kmock_path_bug() -> bool:
    try:
        parsed = _kmock_parse_path("/api/v1/namespaces/default")
    except ValueError:
        return True
    return parsed.plural != "namespaces"


if _kmock_path_bug():
    parsing.parse_path = _parse_k8s_path


# --------------------------------------------------------------------------------------------------
# The emulator (runs in the server thread's event loop).


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, reason: str, message: str) -> kmock.KubernetesError:
    # Non-empty details, or kmock puts a server-side traceback there.
    details = {"emulator": "tests/support/kube.py"}
    return kmock.KubernetesError(status=status, reason=reason, message=message, details=details)


def _api_version(request: rendering.Request) -> str:
    assert request.resource is not None
    group, version = request.resource.group, request.resource.version
    return f"{group}/{version}" if group else str(version)


def _matches_labels(labels: Mapping[str, str], selector: str) -> bool:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``."""
    for raw in selector.split(","):
        term = raw.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif " in " in term or " notin " in term or "(" in term:
            raise _error(400, "BadRequest", f"set-based label selectors are not emulated: {term}")
        elif term not in labels:
            return False
    return True


def _matches_fields(body: Body, selector: str) -> bool:
    """Only ``metadata.name`` and ``metadata.namespace`` with ``=``, ``==``, ``!=``."""
    meta = body.get("metadata", {})
    for raw in selector.split(","):
        term = raw.strip()
        if not term:
            continue
        if "=" not in term:
            raise _error(400, "BadRequest", f"bad field selector: {term}")
        negate = "!=" in term
        key, value = (s.strip() for s in term.replace("!=", "=").replace("==", "=").split("=", 1))
        if key not in ("metadata.name", "metadata.namespace"):
            raise _error(400, "BadRequest", f"field selector is not emulated: {term}")
        actual = meta.get(key.split(".", 1)[1]) or ""
        if (actual == value) == negate:
            return False
    return True


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with resource versions, watch-since and the status subresource.

    See the module docstring for what it adds. State lives in kmock's ``objects`` (with history)
    and is changed only in this emulator's event loop.
    """

    _rv: int = attrs.field(default=0, init=False)
    _log: dict[kmock.resource, list[tuple[int, Body]]] = attrs.field(
        factory=lambda: collections.defaultdict(list), init=False
    )

    def declare(self, resource: Resource) -> None:
        """Serve ``resource`` in API discovery (and accept its objects)."""
        self.resources[resource.ref] = kmock.ResourceInfo(
            kind=resource.kind,
            singular=resource.kind.lower(),
            namespaced=resource.namespaced,
            verbs=set(resource.verbs),
            subresources=set(resource.subresources),
        )

    # kmock's KubernetesEmulator changes objects in _handle() before (and even without) the
    # built-in fallbacks; skip that: here the fallbacks below do the writes.
    async def _handle(self, request: rendering.Request) -> web.StreamResponse:
        return await super(kmock.KubernetesEmulator, self)._handle(request)

    # -- helpers (call with self._lock held) --

    def _info(self, request: rendering.Request) -> kmock.ResourceInfo:
        if request.resource is None or request.resource not in self.resources:
            raise kmock.KubernetesResourceNotFoundError()
        return self.resources[request.resource]

    def _key(
        self,
        request: rendering.Request,
        info: kmock.ResourceInfo,
        namespace: str | None = None,
        name: str | None = None,
    ) -> tuple[Any, ...]:
        namespace = namespace or request.namespace
        if info.namespaced and namespace is None:
            raise _error(404, "NotFound", "a namespaced object needs a namespace")
        return (request.resource, namespace if info.namespaced else None, name or request.name)

    def _current(self, key: tuple[Any, ...]) -> Body | None:
        if key not in self.objects:
            return None
        obj: k8s_dicts.Object = self.objects[key]
        return None if obj.deleted else copy.deepcopy(obj.raw)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    async def _publish(self, resource: kmock.resource, kind: str, body: Body) -> None:
        event = {"type": kind, "object": copy.deepcopy(body)}
        self._log[resource].append((int(body["metadata"]["resourceVersion"]), event))
        await self._buses[resource].put(event)

    async def _store(self, key: tuple[Any, ...], body: Body) -> None:
        if key in self.objects:
            self.objects[key].history.append(body)
        else:
            self.objects[key] = body

    # -- writes --

    async def _serve_create(self, request: rendering.Request) -> Body:
        info = self._info(request)
        body = request.data
        if not isinstance(body, dict):
            raise _error(400, "BadRequest", "the body must be a JSON object")
        body = copy.deepcopy(body)
        meta = body.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _error(422, "Invalid", "metadata.name or metadata.generateName is required")
            suffix = "".join(
                secrets.choice(string.ascii_lowercase + string.digits) for _ in "12345"
            )
            meta["name"] = meta["generateName"] + suffix
        if info.namespaced:
            namespace = request.namespace or meta.get("namespace")
            if meta.get("namespace") not in (None, namespace):
                raise _error(400, "BadRequest", "the namespace of the object and the URL differ")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        body.setdefault("apiVersion", _api_version(request))
        body.setdefault("kind", info.kind)
        if "status" in info.subresources:
            body.pop("status", None)
        if info.kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            body["status"] = {"phase": "Active"}
        meta.pop("deletionTimestamp", None)
        async with self._lock:
            key = self._key(request, info, meta.get("namespace"), meta["name"])
            if self._current(key) is not None:
                raise _error(409, "AlreadyExists", f"{info.kind} {meta['name']!r} already exists")
            meta.update(
                uid=str(uuid.uuid4()),
                resourceVersion=self._next_rv(),
                creationTimestamp=_now(),
                generation=1,
            )
            await self._store(key, body)
            await self._publish(key[0], "ADDED", body)
        return body

    async def _serve_update(self, request: rendering.Request) -> Body:
        info = self._info(request)
        if request.subresource not in (None, *info.subresources):
            raise _error(404, "NotFound", f"no subresource {request.subresource!r}")
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        async with self._lock:
            key = self._key(request, info)
            old = self._current(key)
            if old is None:
                raise kmock.KubernetesObjectNotFoundError()
            new = self._patched(old, request.data, content_type)
            new = self._restrict(old, new, info, request.subresource)
            if new == old:
                return old  # Kubernetes: no change, no new resourceVersion, no event
            meta = new["metadata"]
            if self._spec_of(new) != self._spec_of(old):
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
            meta["resourceVersion"] = self._next_rv()
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                self.objects[key].delete()
                await self._publish(key[0], "DELETED", new)
            else:
                await self._store(key, new)
                await self._publish(key[0], "MODIFIED", new)
            return new

    @staticmethod
    def _patched(old: Body, patch: Any, content_type: str) -> Body:
        if content_type == "application/json-patch+json":
            if not isinstance(patch, list):
                raise _error(400, "BadRequest", "a JSON patch must be a list")
            try:
                result = jsonpatch.apply_patch(old, patch, in_place=False)
            except (
                jsonpatch.JsonPatchException,
                jsonpatch.JsonPointerException,
                KeyError,
                IndexError,
                TypeError,
            ) as exc:
                # Kubernetes: a failed "test" is 422, which Kopf's finalizer patches rely on.
                raise _error(422, "Invalid", f"the JSON patch did not apply: {exc}") from exc
            if not isinstance(result, dict):
                raise _error(422, "Invalid", "the JSON patch replaced the whole object")
            return result
        if content_type in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",  # approximated: lists are replaced
        ):
            if not isinstance(patch, dict):
                raise _error(400, "BadRequest", "a merge patch must be a JSON object")
            expected = (patch.get("metadata") or {}).get("resourceVersion")
            if expected is not None and expected != old["metadata"]["resourceVersion"]:
                raise _error(409, "Conflict", "the object has been modified (resourceVersion)")
            return _merge(old, patch)
        raise _error(415, "UnsupportedMediaType", f"patch type {content_type!r} is not emulated")

    @staticmethod
    def _restrict(old: Body, new: Body, info: kmock.ResourceInfo, sub: str | None) -> Body:
        if sub == "status":  # only .status changes; everything else stays as it was
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            return result
        if "status" in info.subresources:  # the main resource ignores .status
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        meta = new.setdefault("metadata", {})
        for field_ in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            if field_ in old["metadata"]:
                meta[field_] = old["metadata"][field_]
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if "deletionTimestamp" in old["metadata"]:
            meta["deletionTimestamp"] = old["metadata"]["deletionTimestamp"]
        return new

    @staticmethod
    def _spec_of(body: Body) -> Body:
        return {k: v for k, v in body.items() if k not in ("metadata", "status")}

    async def _serve_delete(self, request: rendering.Request) -> Body:
        info = self._info(request)
        async with self._lock:
            key = self._key(request, info)
            body = self._current(key)
            if body is None:
                raise kmock.KubernetesObjectNotFoundError()
            meta = body["metadata"]
            if meta.get("deletionTimestamp"):
                return body  # already being deleted; waits for its finalizers
            meta["resourceVersion"] = self._next_rv()
            if meta.get("finalizers"):
                meta["deletionTimestamp"] = _now()
                meta["deletionGracePeriodSeconds"] = 0
                await self._store(key, body)
                await self._publish(key[0], "MODIFIED", body)
            else:
                self.objects[key].delete()
                await self._publish(key[0], "DELETED", body)
            return body

    # -- what a watcher misses --

    async def unannounced(self, key: tuple[Any, ...], patch: Body | None) -> None:
        """Merge-patch the object at ``key``, or delete it (``patch=None``), without an event."""
        async with self._lock:
            old = self._current(key)
            if old is None:
                raise KeyError(key)
            if patch is None:
                self.objects[key].delete()
                return
            new = _merge(old, patch)
            meta = new["metadata"]
            if self._spec_of(new) != self._spec_of(old):
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
            meta["resourceVersion"] = self._next_rv()
            await self._store(key, new)

    # -- reads --

    async def _serve_fetch(self, request: rendering.Request) -> Body:
        info = self._info(request)
        async with self._lock:
            body = self._current(self._key(request, info))
        if body is None:
            raise kmock.KubernetesObjectNotFoundError()
        return body

    def _selected(self, request: rendering.Request, body: Body) -> bool:
        meta = body.get("metadata", {})
        if request.namespace is not None and meta.get("namespace") != request.namespace:
            return False
        if request.name is not None and meta.get("name") != request.name:
            return False
        labels = request.params.get("labelSelector")
        if labels and not _matches_labels(meta.get("labels") or {}, labels):
            return False
        fields = request.params.get("fieldSelector")
        return not (fields and not _matches_fields(body, fields))

    def _snapshot(self, request: rendering.Request) -> list[Body]:
        return [
            copy.deepcopy(obj.raw)
            for (resource, _, _), obj in self.objects.items()
            if resource == request.resource and not obj.deleted
            if self._selected(request, obj.raw)
        ]

    async def _serve_list(self, request: rendering.Request) -> Body:
        info = self._info(request)
        async with self._lock:
            items = self._snapshot(request)
            rv = str(self._rv)
        return {
            "apiVersion": _api_version(request),
            "kind": f"{info.kind}List",
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[Any]:
        info = self._info(request)
        assert request.resource is not None
        since_text = request.params.get("resourceVersion") or "0"
        initial = request.params.get("sendInitialEvents") == "true"
        try:
            since = int(since_text)
        except ValueError:
            raise _error(400, "BadRequest", f"bad resourceVersion {since_text!r}") from None
        bus = self._buses[request.resource]
        async with self._lock:  # writes publish under this lock: no event is lost or doubled
            marker = await bus.mark()
            rv = self._rv
            if since == 0 or initial:
                events = [{"type": "ADDED", "object": b} for b in self._snapshot(request)]
            else:
                events = [e for v, e in self._log[request.resource] if v > since]
                events = [copy.deepcopy(e) for e in events if self._selected(request, e["object"])]
        try:
            yield b""  # send the headers now: Kopf waits for them
            for event in events:
                yield event
            if initial:
                yield {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": info.kind,
                        "apiVersion": _api_version(request),
                        "metadata": {
                            "resourceVersion": str(rv),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                }
            async for event in bus.stream(since=marker):
                obj = event["object"]
                if int(obj["metadata"]["resourceVersion"]) > rv and self._selected(request, obj):
                    yield copy.deepcopy(event)
        finally:
            await bus.unmark(marker)


def _merge(old: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge, ``None`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(old) if isinstance(old, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


# --------------------------------------------------------------------------------------------------
# The fake cluster: the emulator in a thread, and an async client for tests.


class KubeApiError(Exception):
    """A non-2xx answer from the fake API server."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


def namespace(name: str, labels: Mapping[str, str] | None = None) -> Body:
    """A Namespace body."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(labels or {})},
    }


def trust_policy(name: str, spec: Mapping[str, Any] | None = None) -> Body:
    """A TrustPolicy body (cluster-scoped)."""
    return {
        "apiVersion": TRUSTPOLICIES.api_version,
        "kind": TRUSTPOLICIES.kind,
        "metadata": {"name": name},
        "spec": dict(spec or {}),
    }


def secret(ns: str, name: str, string_data: Mapping[str, str]) -> Body:
    """A Secret body; the values go base64-encoded into ``data`` (what ``stringData`` becomes)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()},
    }


class FakeCluster:
    """A :class:`KubeEmulator` served on ``http://127.0.0.1:PORT`` from its own thread.

    Use as ``async with FakeCluster() as kube:`` (or the ``kube`` fixture). All helpers are
    coroutines that go through the HTTP API, so watchers (Kopf) see every change as an event.
    Resources are given as :class:`Resource` constants or plural names (``"trustpolicies"``).
    """

    def __init__(
        self,
        *,
        resources: Iterable[Resource] = DEFAULT_RESOURCES,
        namespaces: Iterable[str] = DEFAULT_NAMESPACES,
    ) -> None:
        self.resources = {r.plural: r for r in resources}
        self._namespaces = tuple(namespaces)
        self.emulator = KubeEmulator()
        for resource in self.resources.values():
            self.emulator.declare(resource)
        app = web.Application()
        emulator = self.emulator

        async def handle(request: web.Request) -> web.StreamResponse:
            return await emulator(request)

        app.router.add_route("*", "/{tail:.*}", handle)
        app.cleanup_ctx.append(self._enter_emulator)
        self._server = ThreadedApp(app, name="fake-kube-api")
        self._session: aiohttp.ClientSession | None = None
        self._errors: list[Exception] = []

    async def _enter_emulator(self, _: web.Application) -> AsyncIterator[None]:
        async with self.emulator:  # kmock collects its errors only while entered
            yield
            self._errors = list(self.emulator.errors)

    @property
    def url(self) -> str:
        return self._server.url

    async def __aenter__(self) -> FakeCluster:
        self._server.start()
        self._session = aiohttp.ClientSession(
            base_url=self.url, timeout=aiohttp.ClientTimeout(total=10)
        )
        try:
            for name in self._namespaces:
                await self.create(namespace(name))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: object, *_: object) -> None:
        if self._session is not None:
            await self._session.close()
        await asyncio.to_thread(self._server.stop)
        bugs = [e for e in self._errors if not isinstance(e, kmock.KubernetesError)]
        if bugs and exc_type is None:
            raise AssertionError(f"the fake API server failed internally: {bugs!r}") from bugs[0]

    @property
    def errors(self) -> list[Exception]:
        """Error answers so far (404s, 409s, injected faults... and emulator bugs)."""
        return list(self.emulator.errors) if self.emulator.active else list(self._errors)

    # -- plumbing --

    def resource(self, resource: ResourceLike) -> Resource:
        return self.resources[resource] if isinstance(resource, str) else resource

    def resource_of(self, body: Mapping[str, Any]) -> Resource:
        for resource in self.resources.values():
            if resource.api_version == body.get("apiVersion") and resource.kind == body.get("kind"):
                return resource
        raise KeyError(f"no resource serves {body.get('apiVersion')}/{body.get('kind')}")

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """One API call; returns the decoded JSON or raises :class:`KubeApiError`."""
        assert self._session is not None, "use `async with FakeCluster()`"
        data = None if json_body is None else json.dumps(json_body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self._session.request(
            method, path, data=data, headers=headers, params=params
        ) as response:
            text = await response.text()
            try:
                payload = json.loads(text) if text else None
            except ValueError:
                payload = text
            if response.status >= 300:
                raise KubeApiError(response.status, payload)
            return payload

    # -- objects --

    async def create(self, body: Mapping[str, Any]) -> Body:
        """POST the object; its resource comes from ``apiVersion``/``kind``."""
        resource = self.resource_of(body)
        ns = body.get("metadata", {}).get("namespace")
        result: Body = await self.request("POST", resource.path(ns), json_body=body)
        return result

    async def get(self, resource: ResourceLike, name: str, namespace: str | None = None) -> Body:
        """GET one object; :class:`KubeApiError` (404) if it is absent."""
        result: Body = await self.request("GET", self.resource(resource).path(namespace, name))
        return result

    async def find(
        self, resource: ResourceLike, name: str, namespace: str | None = None
    ) -> Body | None:
        """GET one object, or None if it is absent."""
        try:
            return await self.get(resource, name, namespace)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(
        self,
        resource: ResourceLike,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[Body]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", self.resource(resource).path(namespace), params=params)
        items: list[Body] = result["items"]
        return items

    async def patch(
        self,
        resource: ResourceLike,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> Body:
        """Merge-patch (a dict; ``None`` deletes a key) or JSON-patch (a list of operations)."""
        content_type = (
            "application/json-patch+json"
            if isinstance(patch, list)
            else "application/merge-patch+json"
        )
        path = self.resource(resource).path(namespace, name, subresource)
        result: Body = await self.request("PATCH", path, json_body=patch, content_type=content_type)
        return result

    async def delete(self, resource: ResourceLike, name: str, namespace: str | None = None) -> Body:
        result: Body = await self.request("DELETE", self.resource(resource).path(namespace, name))
        return result

    async def unannounced(
        self,
        resource: ResourceLike,
        name: str,
        patch: Body | None,
        *,
        namespace: str | None = None,
    ) -> None:
        """Change (merge-patch) or delete (``patch=None``) an object without a watch event.

        What a watcher misses when its watch is down or hangs: a deletion during an outage never
        reaches Kopf (its re-list afterwards reports what exists, not what went), and a watch
        that hangs silently misses changes too.
        """
        res = self.resource(resource)
        key = (res.ref, namespace if res.namespaced else None, name)
        future = asyncio.run_coroutine_threadsafe(
            self.emulator.unannounced(key, patch), self._server.loop
        )
        await asyncio.wrap_future(future)

    async def events(
        self,
        *,
        reason: str | None = None,
        involved_kind: str | None = None,
        involved_name: str | None = None,
    ) -> list[Body]:
        """Events in all namespaces, optionally filtered."""
        return [
            event
            for event in await self.list(EVENTS)
            if reason is None or event.get("reason") == reason
            if involved_kind is None or event["involvedObject"].get("kind") == involved_kind
            if involved_name is None or event["involvedObject"].get("name") == involved_name
        ]

    # -- waiting --

    async def eventually(
        self,
        condition: Callable[[], T | Awaitable[T]],
        *,
        timeout: float = 5.0,
        interval: float = 0.01,
        message: str = "",
    ) -> T:
        """Poll ``condition`` (sync or async) until it returns something truthy; return it."""
        return await eventually(condition, timeout=timeout, interval=interval, message=message)

    async def wait_for_object(
        self,
        resource: ResourceLike,
        name: str,
        predicate: Callable[[Body], Any],
        *,
        namespace: str | None = None,
        timeout: float = 5.0,
    ) -> Body:
        """Wait until the object exists and ``predicate(body)`` is truthy; return the body."""

        async def check() -> Body | None:
            body = await self.find(resource, name, namespace)
            return body if body is not None and predicate(body) else None

        return await eventually(check, timeout=timeout, message=f"{resource} {name}")

    @property
    def writes(self) -> list[rendering.Request]:
        """Requests that changed (or tried to change) something, in order."""
        return [r for r in self.emulator if r.method in ("POST", "PATCH", "DELETE", "PUT")]


async def eventually(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "",
) -> T:
    """Poll ``condition`` until it returns something truthy; :class:`TimeoutError` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        last = result
        if loop.time() >= deadline:
            raise TimeoutError(f"condition not met within {timeout}s: {message} (last: {last!r})")
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------------------------------
# Running an operator in its own thread and event loop.


class OperatorThread:
    """A coroutine (an operator's main) running in a dedicated thread with its own event loop."""

    def __init__(self, main: Callable[[asyncio.Event], Awaitable[None]], *, name: str) -> None:
        self._main = main
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.done: asyncio.Future[None] | None = None  # in the caller's loop
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._caller_loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._caller_loop = asyncio.get_running_loop()
        self.done = self._caller_loop.create_future()
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            asyncio.run(self._amain())
        except BaseException as exc:  # handed to the caller's loop; the thread must not die noisily
            error = exc
        assert self._caller_loop is not None
        with contextlib.suppress(RuntimeError):  # the caller's loop is already closed
            self._caller_loop.call_soon_threadsafe(self._finish, error)

    def _finish(self, error: BaseException | None) -> None:
        assert self.done is not None
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)

    async def _amain(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        await self._main(self._stop)

    def stop(self) -> None:
        """Ask the operator to stop (sets the stop event in its loop)."""
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._stop.set)

    async def call(self, fn: Callable[[], T | Awaitable[T]]) -> T:
        """Run ``fn`` (sync or async) in the operator's loop and return its result."""
        assert self.loop is not None

        async def wrapper() -> T:
            result = fn()
            if inspect.isawaitable(result):
                return await result  # type: ignore[no-any-return]
            return result

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(wrapper(), self.loop))

    async def join(self, timeout: float) -> None:
        """Wait for the main coroutine to end; re-raise its exception."""
        assert self.done is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.done), timeout)
        except TimeoutError:
            raise TimeoutError(f"{self._thread.name} did not stop within {timeout}s") from None
        await asyncio.to_thread(self._thread.join, timeout)


@contextlib.asynccontextmanager
async def operator_thread(
    main: Callable[[asyncio.Event], Awaitable[None]],
    *,
    name: str = "operator",
    stop_timeout: float = 15.0,
) -> AsyncIterator[OperatorThread]:
    """Run ``main(stop_event)`` in its own thread and loop; set the event and join at exit.

    If ``main`` fails or returns early, the exit re-raises (or the body sees ``thread.done``).
    """
    thread = OperatorThread(main, name=name)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()
        await thread.join(stop_timeout)


LOGIN_HANDLER_ID = "fake-cluster-login"


def add_login(registry: kopf.OperatorRegistry, cluster: FakeCluster) -> None:
    """Register a ``@kopf.on.login`` handler that connects to ``cluster`` (once per registry)."""
    if any(h.id == LOGIN_HANDLER_ID for h in registry._activities.get_all_handlers()):
        return
    url = cluster.url

    @kopf.on.login(registry=registry, id=LOGIN_HANDLER_ID)
    def _login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, default_namespace="default")


def fast_settings() -> kopf.OperatorSettings:
    """Kopf settings for tests: standalone, quick retries of API errors, a quick exit.

    ``persistence.consistency_timeout`` stays at Kopf's 5 s on purpose: after a patch that
    changed nothing (no new resourceVersion, as in Kubernetes) Kopf holds the object's next
    change handlers that long, and tests should see that as production would.
    """
    settings = kopf.OperatorSettings()
    settings.peering.standalone = True
    settings.networking.error_backoffs = (0.05, 0.1, 0.2)
    settings.networking.connect_timeout = 2
    settings.networking.request_timeout = 10
    settings.watching.reconnect_backoff = 0.05
    # At exit Kopf gives each object's worker this long; a worker that waits for its own
    # patch to come back (consistency) is not woken by the exit and uses all of it.
    settings.queueing.exit_timeout = 0.5
    settings.posting.level = logging.INFO
    return settings


@dataclass
class RunningKopf:
    """What :func:`run_kopf` yields."""

    thread: OperatorThread
    indices: Any  # kopf's OperatorIndices: handler id -> kopf.Index (read it via .index())
    memo: kopf.Memo
    settings: kopf.OperatorSettings

    async def index(self, name: str) -> dict[Any, list[Any]]:
        """A snapshot of the index ``name`` (taken in the operator's loop): key -> values."""

        def snapshot() -> dict[Any, list[Any]]:
            return {key: list(store) for key, store in self.indices[name].items()}

        return await self.thread.call(snapshot)


@contextlib.asynccontextmanager
async def run_kopf(
    cluster: FakeCluster,
    *,
    registry: kopf.OperatorRegistry,
    settings: kopf.OperatorSettings | None = None,
    memo: kopf.Memo | None = None,
    namespaces: Iterable[str] = (),
    startup_timeout: float = 10.0,
    stop_timeout: float = 15.0,
) -> AsyncIterator[RunningKopf]:
    """Run ``kopf.operator(...)`` with ``registry`` against ``cluster`` in its own thread.

    Cluster-wide unless ``namespaces`` are given; a login handler for the cluster is added to
    the registry. Enters once Kopf's startup handlers have finished (Kopf's ready flag); that
    is *not* "indices populated": wait for a handler's effect for that. At exit, Kopf is
    stopped through its stop flag and joined; an operator failure is re-raised.
    """
    from kopf._core.engines.indexing import OperatorIndexers  # private; kopf is pinned to 1.45

    namespaces = list(namespaces)
    add_login(registry, cluster)
    own_settings = settings is None
    settings = settings if settings is not None else fast_settings()
    memo = memo if memo is not None else kopf.Memo()
    indexers = OperatorIndexers()
    caller_loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = caller_loop.create_future()

    def set_ready() -> None:
        if not ready.done():
            ready.set_result(None)

    async def main(stop: asyncio.Event) -> None:
        ready_flag = asyncio.Event()

        async def relay_ready() -> None:
            await ready_flag.wait()
            caller_loop.call_soon_threadsafe(set_ready)

        relay = asyncio.create_task(relay_ready())  # created before Kopf: not one of its tasks
        try:
            # kopf.operator() is exactly these three steps; done here to add one thing: when a
            # root task ends by itself (e.g. a startup handler failed), set the stop flag too.
            # Otherwise Kopf's own stop-flag waiter task stays pending, and Kopf waits 5 s for
            # it as a "hung task" before it exits.
            existing = asyncio.all_tasks()
            tasks = await kopf.spawn_tasks(
                registry=registry,
                settings=settings,
                memo=memo,
                indexers=indexers,
                standalone=True,
                clusterwide=not namespaces,
                namespaces=namespaces,
                stop_flag=stop,
                ready_flag=ready_flag,
            )
            for task in tasks:
                task.add_done_callback(lambda _: stop.set())
            await kopf.run_tasks(tasks, ignored=existing)
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay

    try:
        async with operator_thread(main, name="kopf-operator", stop_timeout=stop_timeout) as thread:
            assert thread.done is not None
            done, _ = await asyncio.wait(
                {ready, thread.done}, timeout=startup_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                raise TimeoutError(f"Kopf did not start within {startup_timeout}s")
            if thread.done in done:  # the exit (join) re-raises Kopf's own error, if any
                raise RuntimeError("Kopf exited during its startup")
            yield RunningKopf(thread=thread, indices=indexers.indices, memo=memo, settings=settings)
    finally:
        if own_settings:  # the thread pool of sync handlers; a caller's settings stay usable
            await asyncio.to_thread(settings.execution.executor.shutdown)
