"""Proof that the real registry processes start, authenticate, and stop as promised."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import trustme

from support.push import Pusher
from support.rawhttp import parse_challenge, raw_get
from support.registry import MissingToolError, RegistryServer, require_tool, start_registry


async def test_anonymous_registry_answers_v2_without_credentials(registry: RegistryServer) -> None:
    assert registry.url.startswith("http://127.0.0.1:")
    assert (registry.ca_file, registry.username, registry.password) == (None, None, None)
    async with aiohttp.ClientSession() as session, session.get(f"{registry.url}/v2/") as resp:
        assert resp.status == 200
        assert resp.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


async def test_basic_registry_serves_tls_from_the_session_ca_and_challenges_basic(
    registry_basic: RegistryServer,
) -> None:
    assert registry_basic.url.startswith("https://127.0.0.1:")
    assert registry_basic.ca_file is not None
    assert b"BEGIN CERTIFICATE" in registry_basic.ca_file.read_bytes()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{registry_basic.url}/v2/", ssl=registry_basic.aiohttp_ssl) as resp,
    ):
        assert resp.status == 401
        scheme, params = parse_challenge(resp.headers["WWW-Authenticate"])
    assert scheme == "basic"
    assert params == {"realm": "signgate-test"}


async def test_basic_registry_rejects_untrusting_clients(registry_basic: RegistryServer) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"{registry_basic.url}/v2/")


@pytest.mark.parametrize(("password", "status"), [(None, 200), ("wrong-password", 401), ("", 401)])
async def test_basic_registry_accepts_only_the_right_password(
    registry_basic: RegistryServer, password: str | None, status: int
) -> None:
    secret = registry_basic.password if password is None else password
    auth = aiohttp.encode_basic_auth(registry_basic.username or "", secret or "")
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{registry_basic.url}/v2/",
            headers={"Authorization": auth},
            ssl=registry_basic.aiohttp_ssl,
        ) as resp,
    ):
        assert resp.status == status


async def test_token_registry_challenges_with_the_token_servers_realm(
    registry_token: RegistryServer,
) -> None:
    assert registry_token.token_server is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{registry_token.url}/v2/team/app/tags/list", ssl=registry_token.aiohttp_ssl
        ) as resp,
    ):
        assert resp.status == 401
        scheme, params = parse_challenge(resp.headers["WWW-Authenticate"])
    assert scheme == "bearer"
    assert params == {
        "realm": registry_token.token_server.realm,
        "service": registry_token.token_server.service,
        "scope": "repository:team/app:pull",
    }


def test_docker_config_holds_base64_user_colon_password(
    registry_basic: RegistryServer, tmp_path: Path
) -> None:
    path = registry_basic.docker_config(tmp_path / "config.json")
    auths = json.loads(path.read_text())["auths"]
    assert list(auths) == [registry_basic.host]
    decoded = base64.b64decode(auths[registry_basic.host]["auth"]).decode()
    assert decoded == f"{registry_basic.username}:{registry_basic.password}"
    wrong = registry_basic.docker_config(tmp_path / "wrong.json", password="nope")
    wrong_auth = json.loads(wrong.read_text())["auths"][registry_basic.host]["auth"]
    assert base64.b64decode(wrong_auth).decode() == f"{registry_basic.username}:nope"


def test_docker_config_of_anonymous_registry_has_no_auths(
    registry: RegistryServer, tmp_path: Path
) -> None:
    path = registry.docker_config(tmp_path / "config.json")
    assert json.loads(path.read_text()) == {"auths": {}}


async def test_registry_deletes_manifests_because_delete_is_enabled(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/delete-me", "v1")
    await pusher.delete_manifest("support/delete-me", digest)
    gone = await raw_get(registry, f"/v2/support/delete-me/manifests/{digest}")
    assert gone.status == 404


@pytest.mark.parametrize("variant", ["registry", "registry_basic", "registry_token"])
async def test_distribution_2_8_has_no_referrers_api(
    variant: str, request: pytest.FixtureRequest
) -> None:
    server: RegistryServer = request.getfixturevalue(variant)
    async with Pusher.for_registry(server) as pusher:
        digest = await pusher.push_random_image("support/referrers", "v1")
        assert not await pusher.referrers_api_supported("support/referrers", digest)
    answer = await raw_get(server, f"/v2/support/referrers/referrers/{digest}")
    assert answer.status == 404


def _port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie awaiting its reaper counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.02)
    return False


_CHILD = """
import os, signal, sys, pathlib
sys.path.insert(0, {tests!r})
from support.registry import start_registry
server = start_registry("anonymous", pathlib.Path({workdir!r}))
print(server.pid, flush=True)
if {mode!r} == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.registry
@pytest.mark.parametrize("mode", ["exits", "killed"])
def test_registry_dies_with_the_test_process_leaving_no_orphan(mode: str, tmp_path: Path) -> None:
    """atexit stops registries on a normal exit; PR_SET_PDEATHSIG covers SIGKILL."""
    tests_dir = str(Path(__file__).parent)
    code = _CHILD.format(tests=tests_dir, workdir=str(tmp_path / "child"), mode=mode)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == (-signal.SIGKILL if mode == "killed" else 0), done.stderr
    registry_pid = int(done.stdout.strip())
    assert _wait_dead(registry_pid), f"docker-registry {registry_pid} outlived its parent"


@pytest.mark.registry
@pytest.mark.parametrize("kind", ["anonymous", "basic", "token"])
def test_stop_kills_the_registry_process_by_pid_and_frees_the_port(
    kind: str, tmp_path: Path, tls_ca: trustme.CA
) -> None:
    server = start_registry(kind, tmp_path / kind, tls_ca=tls_ca)
    pid, port = server.pid, server.port
    assert pid is not None
    assert _pid_alive(pid)
    server.stop()
    server.stop()  # idempotent
    assert server.pid is None
    assert not _pid_alive(pid)
    assert not _port_is_open(port)


def test_missing_registry_binary_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingToolError, match=r"apt-get install -y docker-registry"):
        require_tool("docker-registry", "docker-registry")
    with pytest.raises(MissingToolError, match=r"apt-get install -y apache2-utils"):
        require_tool("htpasswd", "apache2-utils")
