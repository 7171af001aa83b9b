"""The README's first command: ``demo/demo.py`` (what ``scripts/demo`` runs after set-up), run as a
user runs it, in its own process from the repository root.

It must succeed on the real path (cosign signs, a real kube-apiserver calls signgate's operator),
show the signed image admitted and pinned and the unsigned one refused with signgate's reason,
and leave nothing behind: no process it started (each carries a marker in its environment, which
every child inherits) and no work directory -- also when it takes its fallback path, and when it
is interrupted half-way by Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# The demo starts its own registry, signs with cosign and runs a control plane.
pytestmark = [pytest.mark.registry, pytest.mark.cosign, pytest.mark.kube]

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "demo.py"
MARKER = "SIGNGATE_DEMO_TEST_MARKER"
TIMEOUT = 300  # seconds; the demo takes well under a minute warm


def demo_env() -> tuple[dict[str, str], str]:
    """The demo's environment, with a marker its children inherit; and the marker."""
    token = secrets.token_hex(8)
    return dict(os.environ, PYTHONUNBUFFERED="1", **{MARKER: token}), token


def processes_with(token: str) -> list[str]:
    """Running processes (PID and command line) whose environment carries the marker."""
    needle = f"{MARKER}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if needle not in environ.split(b"\0"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def work_dir(output: str) -> Path:
    match = re.search(r"work dir: (\S+) \(removed at the end\)", output)
    assert match, output
    return Path(match.group(1))


def assert_left_nothing(output: str, token: str) -> None:
    work = work_dir(output)
    assert work.name.startswith("signgate-demo-")
    assert not work.exists(), f"{work} is still there"
    assert processes_with(token) == [], "processes the demo started are still running"
    assert "\n==> cleaning up" in output
    assert f"# removed {work}" in output


def run_demo(*args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    env, token = demo_env()
    result = subprocess.run(
        [sys.executable, str(DEMO), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return result, token


@pytest.mark.timeout(TIMEOUT + 60)
def test_demo_admits_and_pins_the_signed_image_and_refuses_the_unsigned_one() -> None:
    result, token = run_demo()
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert_left_nothing(out, token)

    # Eight numbered steps, in order, each with the seconds elapsed.
    steps = re.findall(r"^==> \[(\d)/8\] .+  \(\d+\.\d s\)$", out, re.MULTILINE)
    assert steps == [str(n) for n in range(1, 9)], out
    # The real path: cosign signed, a real kube-apiserver called signgate in operator mode.
    assert "FALLBACK" not in out, out
    assert "$ cosign generate-key-pair\n" in out
    assert "$ cosign sign --key cosign.key " in out
    assert "$ signgate verify --key cosign.pub " in out
    # No --policy: operator mode.
    assert "$ signgate serve --status-interval 2 --tls-cert webhook.crt " in out
    # signgate explain reads the cluster's policy; the policy's status counts the decisions.
    assert "demo-release (Enforce, cluster): governs it" in out
    assert re.search(r"demo-release +Enforce +1 +True +[1-9]\d* +[1-9]\d* ", out), out[-3000:]
    assert "trustpolicy.signgate.dev/demo-release condition met" in out

    # Admitted, and stored pinned to the digest signgate verified.
    pinned = re.search(
        r"^\$ kubectl get pod app-signed -o 'jsonpath=\{\.spec\.containers\[0\]\.image\}'\n"
        r"(127\.0\.0\.1:\d+/demo/app:v1@sha256:[0-9a-f]{64})$",
        out,
        re.MULTILINE,
    )
    assert pinned, out
    assert "pod/app-signed created" in out

    # Refused, with kubectl printing signgate's message verbatim.
    refusal = re.search(r"^Error from server.*denied the request: (signgate denied .*)$", out, re.M)
    assert refusal, out
    assert "signgate denied 1 of 1 image(s): 127.0.0.1:" in refusal.group(1)
    assert "TrustPolicy 'demo-release'" in refusal.group(1)
    assert "no signature found" in refusal.group(1)
    assert "pod/app-unsigned created" not in out

    # The TrustPolicy is a custom resource the operator reports on.
    assert re.search(r"^demo-release\s+Enforce\s+1\s+True\s", out, re.MULTILINE), out

    # The summary, then what to read next, then one verdict line.
    assert re.search(rf"^  admitted .*, stored as {re.escape(pinned.group(1))}$", out, re.M), out
    assert re.search(r"^  denied .*/demo/app:unsigned: no signature found$", out, re.M), out
    assert "Read next:" in out
    assert out.rstrip().splitlines()[-1].startswith("demo OK in ")


@pytest.mark.timeout(TIMEOUT + 60)
def test_demo_fallback_without_cosign_or_cluster_says_so_and_still_shows_both_verdicts() -> None:
    result, token = run_demo("--without-cosign", "--without-cluster")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert_left_nothing(out, token)
    assert "# FALLBACK: --without-cosign was given." in out
    assert "# FALLBACK: --without-cluster was given." in out
    assert "$ signgate serve --policy trustpolicy.yaml " in out
    assert '"allowed": true' in out
    assert re.search(r'"value":"127\.0\.0\.1:\d+/demo/app:v1@sha256:[0-9a-f]{64}"', out), out
    assert '"allowed": false' in out
    assert re.search(r'"message": "signgate denied 1 of 1 image\(s\): .*no signature found', out)
    assert out.rstrip().splitlines()[-1].startswith("demo OK in ")


@pytest.mark.parametrize(
    ("signum", "after", "status"),
    [
        # Ctrl-C while etcd and kube-apiserver are starting.
        (signal.SIGINT, "==> [5/8]", 130),
        # SIGTERM with everything running: registry, etcd, kube-apiserver, signgate.
        (signal.SIGTERM, "# pid ", 143),
    ],
    ids=["sigint-starting-apiserver", "sigterm-signgate-serving"],
)
@pytest.mark.timeout(TIMEOUT + 60)
def test_an_interrupted_demo_stops_everything_and_says_so(
    signum: signal.Signals, after: str, status: int
) -> None:
    env, token = demo_env()
    proc = subprocess.Popen(
        [sys.executable, str(DEMO)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(after):
                break
        else:
            pytest.fail("the demo ended before the point of interruption:\n" + "".join(seen))
        proc.send_signal(signum)
        rest, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(seen) + rest
    assert proc.returncode == status, out
    assert f"demo INTERRUPTED by {signum.name}" in out.rstrip().splitlines()[-1], out
    assert_left_nothing(out, token)
