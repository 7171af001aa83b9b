"""``signgate serve`` in operator mode as its own process: it starts against a real kube-apiserver,
logs JSON cleanly, and stops on SIGTERM with exit status 0 (Kopf takes over the signal handlers,
which must not read as "no cluster")."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import trustme

from support.kubeapi import KubeAPIServer

ROOT = Path(__file__).resolve().parents[2]


async def test_operator_process_logs_json_and_stops_cleanly_on_sigterm(
    apiserver: KubeAPIServer, tls_ca: trustme.CA, tmp_path: Path
) -> None:
    apiserver.kubectl(
        "apply", "-f", str(ROOT / "deploy/crds/trustpolicies.signgate.dev.yaml"), check=True
    )
    cert = tls_ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signgate", "--log-format", "json", "serve",
        "--tls-cert", str(tmp_path / "tls.crt"), "--tls-key", str(tmp_path / "tls.key"),
        "--address", "127.0.0.1", "--port", "0",
        env={**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "POD_NAMESPACE": "default"},
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        # Run until the policies are indexed, which is when Kopf's handlers have all run once.
        while not any("TrustPolicies indexed" in line for line in lines):
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            assert line, "signgate serve exited early:\n" + "".join(lines)
            lines.append(line)
        await asyncio.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
        code = await asyncio.wait_for(proc.wait(), 30)
    output = "".join(lines) + rest
    assert code == 0, output
    assert "the operator stopped" not in output
    assert "Logging error" not in output and "Traceback" not in output, output
    for line in output.splitlines():
        record = json.loads(line)  # every line is one JSON object
        assert {"message", "levelname", "name"} <= record.keys()
    assert re.search(r"serving /validate and /mutate on https://127\.0\.0\.1:\d+", output)
