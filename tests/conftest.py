"""Shared fixtures: real registries (one process per variant per session), pushers, fault proxies.

Session-scoped registries start lazily (only when a test asks for them) and are stopped by PID at
session end. A missing ``docker-registry``/``htpasswd`` binary FAILS the requesting test with the
apt package to install (a missing referrers-API registry: with
``scripts/install-referrers-registry``) -- it never skips, so CI cannot go green without the real
registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import hypothesis  # noqa: F401  (see below)
import pytest
import trustme

# hypothesis's pytest plugin imports hypothesis lazily, in the terminal summary, when no test used
# it (e.g. `pytest tests/e2e`). There, CPython 3.11.7's compiler intermittently raised "SystemError:
# AST constructor recursion depth mismatch" after the run had passed (fixed in later CPythons).
# Importing it here, in a clean interpreter state, avoids that.
from support.fault_proxy import FaultProxy
from support.push import Pusher
from support.registry import (
    MissingToolError,
    RegistryKind,
    RegistryServer,
    start_referrers_registry,
    start_registry,
)
from support.tls import new_ca
from support.vectors import vectors_dir

if TYPE_CHECKING:
    from support.fake_sigstore import FakeSigstore
    from support.kube import FakeCluster
    from support.kubeapi import KubeAPIServer


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The real cosign/Sigstore vectors, vendored in tests/vectors/data. Never skipped."""
    return vectors_dir()


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """The session's CA: issues the HTTPS certificates of registries and the token server."""
    return new_ca()


def _start(
    kind: RegistryKind, tmp_path_factory: pytest.TempPathFactory, tls_ca: trustme.CA
) -> Iterator[RegistryServer]:
    try:
        server = start_registry(kind, tmp_path_factory.mktemp(f"registry-{kind}"), tls_ca=tls_ca)
    except MissingToolError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry(
    tmp_path_factory: pytest.TempPathFactory, tls_ca: trustme.CA
) -> Iterator[RegistryServer]:
    """Anonymous registry: plain HTTP, no auth."""
    yield from _start(RegistryKind.ANONYMOUS, tmp_path_factory, tls_ca)


@pytest.fixture(scope="session")
def registry_basic(
    tmp_path_factory: pytest.TempPathFactory, tls_ca: trustme.CA
) -> Iterator[RegistryServer]:
    """HTTPS registry with htpasswd (Basic) auth; ``username``/``password``/``ca_file`` set."""
    yield from _start(RegistryKind.BASIC, tmp_path_factory, tls_ca)


@pytest.fixture(scope="session")
def registry_token(
    tmp_path_factory: pytest.TempPathFactory, tls_ca: trustme.CA
) -> Iterator[RegistryServer]:
    """HTTPS registry with Bearer token auth; ``token_server`` is the realm it trusts.

    The token server is shared by the session: change its knobs only inside
    ``registry_token.token_server.configured(...)`` and compare request counts as deltas (or call
    ``reset()`` first).
    """
    yield from _start(RegistryKind.TOKEN, tmp_path_factory, tls_ca)


@pytest.fixture(scope="session")
def referrers_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Anonymous plain-HTTP registry **with** the OCI 1.1 referrers API.

    go-containerregistry's registry with referrers on (see ``support.registry`` for its quirks),
    built by ``scripts/install-referrers-registry``; a missing binary FAILS the requesting test.
    """
    try:
        server = start_referrers_registry(tmp_path_factory.mktemp("registry-referrers"))
    except MissingToolError as exc:
        missing = str(exc)
    else:
        try:
            yield server
        finally:
            server.stop()
        return
    pytest.fail(missing, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture
async def pusher(registry: RegistryServer) -> AsyncIterator[Pusher]:
    """A :class:`~support.push.Pusher` for the anonymous registry."""
    async with Pusher.for_registry(registry) as p:
        yield p


@pytest.fixture
async def referrers_pusher(referrers_registry: RegistryServer) -> AsyncIterator[Pusher]:
    """A :class:`~support.push.Pusher` for the registry with the referrers API."""
    async with Pusher.for_registry(referrers_registry) as p:
        yield p


# The anonymous registries a test can be run against: parameter id -> fixture name.
_ANONYMOUS_REGISTRIES = {"distribution": "registry", "referrers-api": "referrers_registry"}


@pytest.fixture
def any_registry(request: pytest.FixtureRequest) -> RegistryServer:
    """The anonymous registry chosen by indirect parametrization (``distribution`` by default).

    ``@pytest.mark.parametrize("any_registry", ["distribution", "referrers-api"], indirect=True)``
    runs a test against ``registry`` (no referrers API) and against ``referrers_registry``.
    """
    name: str = getattr(request, "param", "distribution")
    server: RegistryServer = request.getfixturevalue(_ANONYMOUS_REGISTRIES[name])
    return server


@pytest.fixture
async def any_pusher(any_registry: RegistryServer) -> AsyncIterator[Pusher]:
    """A :class:`~support.push.Pusher` for ``any_registry``."""
    async with Pusher.for_registry(any_registry) as p:
        yield p


@pytest.fixture
def fault_proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    """A fresh :class:`~support.fault_proxy.FaultProxy` (plain HTTP) in front of ``registry``."""
    with FaultProxy.for_registry(registry) as proxy:
        yield proxy


@pytest.fixture
def make_fault_proxy(tls_ca: trustme.CA) -> Iterator[Callable[..., FaultProxy]]:
    """Factory: ``make_fault_proxy(registry_basic, tls=True)`` -> a started proxy, stopped after."""
    proxies: list[FaultProxy] = []

    def make(upstream: RegistryServer, *, tls: bool = False) -> FaultProxy:
        proxy = FaultProxy.for_registry(upstream, tls_ca=tls_ca if tls else None).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
async def kube() -> AsyncIterator[FakeCluster]:
    """A fresh fake Kubernetes API (kmock's emulator in a thread) with ``default``/``kube-system``.

    Run an operator against it with ``support.kube.run_kopf(kube, registry=...)``.
    """
    from support.kube import FakeCluster  # kopf and kmock load only for the tests that use it

    async with FakeCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPIServer]:
    """A real control plane for the session: etcd + kube-apiserver on 127.0.0.1 (no kubelet).

    Started on first use, stopped by PID at session end. Missing binaries FAIL the requesting test
    with ``scripts/install-kube-tools`` in the message (never a skip). Webhook configurations are
    cluster-wide: register them with ``apiserver.webhooks(...)`` (removed at the end of the
    ``with``) and create objects in ``apiserver.create_namespace()``.
    """
    from support.kubeapi import start_apiserver

    try:
        server = start_apiserver(tmp_path_factory.mktemp("kubeapi"))
    except MissingToolError as exc:
        missing = str(exc)
    else:
        try:
            yield server
        finally:
            server.stop()
        return
    pytest.fail(missing, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture(scope="session")
def fake_sigstore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSigstore]:
    """A fake Fulcio (+ CT log), Rekor v1 and TSA on loopback for the session, and the
    ``trusted_root.json``/``signing_config.json`` trusting exactly them (``support.fake_sigstore``).

    A missing node or ``@sigstore/mock`` FAILS the requesting test with
    ``scripts/install-sigstore-mock`` in the message (never a skip).
    """
    from support.fake_sigstore import start_fake_sigstore

    try:
        sigstore = start_fake_sigstore(tmp_path_factory.mktemp("fake-sigstore"))
    except MissingToolError as exc:
        missing = str(exc)
    else:
        try:
            yield sigstore
        finally:
            sigstore.stop()
        return
    pytest.fail(missing, pytrace=False)  # outside the except: no chained traceback


# -- what a test needs beyond the Python dependencies --------------------------------------------

#: Fixtures that start a binary, and the marker (registered in pyproject.toml) that a test using
#: one, directly or through another fixture, gets. A fixture chosen at run time counts too: by its
#: parameter (``request.getfixturevalue(variant)`` with ``variant="registry_basic"``), or by name
#: (``any_registry``). Tests that run a binary themselves (cosign, helm, ``start_registry``...)
#: say so with ``pytestmark`` or ``@pytest.mark.<name>``.
BINARY_FIXTURES = {
    "registry": "registry",
    "registry_basic": "registry",
    "registry_token": "registry",
    "referrers_registry": "registry",
    "any_registry": "registry",
    "apiserver": "kube",
    "fake_sigstore": "node",
}
BINARY_MARKERS = frozenset({*BINARY_FIXTURES.values(), "cosign", "helm", "go"})
UNIT_TESTS = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by the binaries its fixtures start (``pytest -m "not registry"``...)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ())) - _direct_arguments(item)
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            used |= {value for value in callspec.params.values() if isinstance(value, str)}
        for marker in sorted({m for fixture, m in BINARY_FIXTURES.items() if fixture in used}):
            item.add_marker(marker)


def _direct_arguments(item: pytest.Item) -> set[str]:
    """Names a ``parametrize`` gives values to directly: they shadow fixtures of the same name
    (``@pytest.mark.parametrize(("text", "registry"), ...)`` starts no registry)."""
    names: set[str] = set()
    for mark in item.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        indirect = mark.kwargs.get("indirect", False)
        names |= {
            name
            for name in argnames
            if not (indirect is True or (isinstance(indirect, list | tuple) and name in indirect))
        }
    return names


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``tests/unit`` runs with only the Python dependencies: a unit test that needs a binary
    fails before anything starts, saying where it belongs."""
    if not item.path.is_relative_to(UNIT_TESTS):
        return
    needs = sorted({mark.name for mark in item.iter_markers() if mark.name in BINARY_MARKERS})
    if needs:
        pytest.fail(
            f"{item.nodeid} needs {', '.join(needs)}, but tests/unit must run with only the "
            "Python dependencies: move it to tests/integration (for a registry, consider "
            "support.memory_registry)",
            pytrace=False,
        )
