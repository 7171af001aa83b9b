"""``signgate verify`` as a user runs it: a real process against a real registry."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from support import signer
from support.cli import signgate
from support.formats import generate_key, public_key_pem
from support.push import Pusher
from support.registry import RegistryServer


async def signed_and_unsigned(pusher: Pusher, tmp_path: Path) -> tuple[str, str, str, str]:
    """(key file, signed ref, unsigned ref, signed digest)."""
    name = f"cli/{secrets.token_hex(4)}"
    key = generate_key()
    digest = await pusher.push_random_image(name, "v1")
    await pusher.push_random_image(name, "unsigned")
    await signer.sign_bundle_v3(pusher, name, digest, key)
    key_file = tmp_path / "cosign.pub"
    key_file.write_bytes(public_key_pem(key))
    return str(key_file), f"{pusher.host}/{name}:v1", f"{pusher.host}/{name}:unsigned", digest


async def test_signed_exits_0_and_unsigned_exits_1_with_a_reason(
    pusher: Pusher, tmp_path: Path
) -> None:
    key, signed, unsigned, digest = await signed_and_unsigned(pusher, tmp_path)
    insecure = ["--insecure-registry", pusher.host]
    code, out, err = await signgate("verify", "--key", key, signed, *insecure)
    assert code == 0, (out, err)
    assert out.startswith(f"ALLOWED {signed} -> {signed.rsplit(':', 1)[0]}@{digest}")
    assert "sigstore bundle" in out

    code, out, err = await signgate("verify", "--key", key, unsigned, *insecure)
    assert code == 1, (out, err)
    assert out.startswith(f"DENIED  {unsigned}")
    assert "reason:" in out
    assert "no signature found" in out

    code, out, _ = await signgate("verify", "--key", key, signed, unsigned, *insecure)
    assert code == 1
    assert "ALLOWED" in out
    assert "DENIED" in out


async def test_json_output_is_one_object_per_image(pusher: Pusher, tmp_path: Path) -> None:
    key, signed, unsigned, digest = await signed_and_unsigned(pusher, tmp_path)
    code, out, _ = await signgate(
        "verify",
        "--key",
        key,
        signed,
        unsigned,
        "--insecure-registry",
        pusher.host,
        "--output",
        "json",
    )
    assert code == 1
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["image"] == signed
    assert first["digest"] == digest
    assert first["allowed"] is True
    assert first["reasons"] == []
    assert first["authorities"][0]["authority"] == "key"
    assert first["authorities"][0]["format"] == "sigstore bundle"
    assert second["allowed"] is False
    assert "no signature found" in second["reasons"][0]


async def test_policy_file_and_credentials(registry_basic: RegistryServer, tmp_path: Path) -> None:
    name = f"cli/{secrets.token_hex(4)}"
    key = generate_key()
    async with Pusher.for_registry(registry_basic) as pusher:
        digest = await pusher.push_random_image(name, "v1")
        await signer.sign_legacy(pusher, name, digest, key)
    pem = "\n".join("          " + line for line in public_key_pem(key).decode().splitlines())
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"""apiVersion: signgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: release}}
spec:
  images: ["{registry_basic.host}/cli/**"]
  authorities:
    - name: release-key
      key:
        pem: |
{pem}
"""
    )
    config = registry_basic.docker_config(tmp_path / "config.json")
    ca = f"{registry_basic.host}={registry_basic.ca_file}"
    image = f"{registry_basic.host}/{name}:v1"
    code, out, err = await signgate(
        "verify",
        "--policy",
        str(policy),
        "--registry-config",
        str(config),
        "--registry-ca",
        ca,
        image,
    )
    assert code == 0, (out, err)
    assert "release/release-key" in out
    # An image outside every policy is denied by default, and --unmatched can relax that.
    other = f"{registry_basic.host}/elsewhere:v1"
    code, out, _ = await signgate(
        "verify",
        "--policy",
        str(policy),
        "--registry-config",
        str(config),
        "--registry-ca",
        ca,
        other,
    )
    assert code == 1
    assert "no TrustPolicy governs" in out
    code, out, _ = await signgate(
        "verify", "--policy", str(policy), "--registry-ca", ca, "--unmatched", "allow", other
    )
    assert code == 0


async def test_configuration_errors_exit_2_with_one_line() -> None:
    """A smoke test of the process: its exit status and stderr. Every configuration check is
    tested in-process, through ``main(argv)``, in tests/unit/cli/test_command_line_errors.py."""
    cases = [
        (["verify", "nginx"], "signgate: error: nothing to verify against: give --key FILE"),
        (["frobnicate"], "signgate: error: argument command: invalid choice: 'frobnicate'"),
    ]
    for args, message in cases:
        code, out, err = await signgate(*args)
        assert code == 2, (args, out, err)
        assert err.startswith(message), (args, err)
        assert err.count("\n") == 1, (args, err)
        assert out == ""
        assert "Traceback" not in err


async def test_invalid_reference_is_a_denial_with_the_rule(tmp_path: Path) -> None:
    key = tmp_path / "k.pub"
    key.write_bytes(public_key_pem(generate_key()))
    code, out, _ = await signgate("verify", "--key", str(key), "Registry.example/App:v1")
    assert code == 1
    assert "repository name must be lowercase" in out


async def test_unreachable_registry_is_denied_within_the_timeout(tmp_path: Path) -> None:
    import socket
    import time

    key = tmp_path / "k.pub"
    key.write_bytes(public_key_pem(generate_key()))
    # A listener that accepts and never answers: the registry "hangs".
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        code, out, _ = await signgate(
            "verify",
            "--key",
            str(key),
            f"{host}/app:v1",
            "--insecure-registry",
            host,
            "--timeout",
            "1.5",
        )
        assert time.monotonic() - started < 10  # interpreter start-up included
    assert code == 1
    assert "deadline exceeded" in out
