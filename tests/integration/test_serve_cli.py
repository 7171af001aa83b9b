"""``signgate serve --policy FILE`` as a process: the webhook without a cluster."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import ssl
import sys
from pathlib import Path

import aiohttp
import trustme

from support import reviews, signer
from support.formats import generate_key, public_key_pem
from support.push import Pusher

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"


async def test_serve_admits_signed_and_denies_unsigned(
    pusher: Pusher, tls_ca: trustme.CA, tmp_path: Path
) -> None:
    key = generate_key()
    name = f"serve/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    await pusher.push_random_image(name, "unsigned")
    await signer.sign_legacy(pusher, name, digest, key)
    pem = "\n".join(
        "          " + line for line in public_key_pem(key).decode().strip().splitlines()
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: signgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: release}\n"
        f'spec:\n  images: ["{pusher.host}/serve/**"]\n  authorities:\n'
        f"    - name: release-key\n      key:\n        pem: |\n{pem}\n"
    )
    cert = tls_ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signgate", "--log-format", "json", "serve", "--policy", str(policy),
        "--tls-cert", str(tmp_path / "tls.crt"), "--tls-key", str(tmp_path / "tls.key"),
        "--address", "127.0.0.1", "--port", "0", "--insecure-registry", pusher.host,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "signgate serve exited before serving"
            match = re.search(r"on https://127\.0\.0\.1:(\d+) with 1 TrustPolicies", line)
            port = int(match.group(1)) if match else None
        context = ssl.create_default_context()
        tls_ca.configure_trust(context)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            for tag, allowed in (("v1", True), ("unsigned", False)):
                image = f"{pusher.host}/{name}:{tag}"
                body = reviews.review(reviews.workload("Pod", reviews.pod_spec([image])))
                async with session.post(f"https://127.0.0.1:{port}/validate", json=body) as resp:
                    assert resp.status == 200
                    answer = json.loads(await resp.read())["response"]
                assert answer["allowed"] is allowed
                if not allowed:
                    assert image.rsplit(":", 1)[0] in answer["status"]["message"]
                    assert "no signature found" in answer["status"]["message"]
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0  # SIGTERM is a clean stop
    assert proc.stderr is not None
    records = [json.loads(line) for line in (await proc.stderr.read()).decode().splitlines()]
    decisions = [r for r in records if "uid" in r]
    # Denials are logged; admissions only with -v (they are in the apiserver's audit log).
    assert [r["allowed"] for r in decisions] == [False]
    assert decisions[0]["denied_images"][0].startswith(f"{pusher.host}/{name}@sha256:")


async def test_serve_configuration_errors_exit_2(tmp_path: Path) -> None:
    cases = [
        (["serve", "--tls-cert", "x", "--tls-key", "y"], "cannot load TLS certificate"),
        (
            ["serve", "--policy", str(tmp_path / "none.yaml"), "--tls-cert", "x", "--tls-key", "y"],
            "cannot read policy",
        ),
    ]
    cases.append(
        (
            [
                "serve",
                "--policy",
                str(EXAMPLE_POLICY),
                "--tls-cert",
                str(tmp_path / "no.crt"),
                "--tls-key",
                "y",
            ],
            "cannot load TLS certificate",
        )
    )
    for args, message in cases:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "signgate", *args, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2, (args, err)
        assert message in err.decode(), err
