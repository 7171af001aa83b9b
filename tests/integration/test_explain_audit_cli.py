"""``signgate explain`` and ``signgate audit`` as a user runs them, against a real registry.

The cluster side of both commands (TrustPolicies and workloads read from a kube-apiserver) is
tested in tests/e2e/test_explain_audit_cluster.py; here policies and manifests come from files.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from signgate.signatures.keys import load_public_key_pem
from support import signer
from support.cli import signgate
from support.formats import generate_key, public_key_pem
from support.push import Pusher


def policy_yaml(name: str, pattern: str, pem: bytes, mode: str = "Enforce") -> str:
    indented = "\n".join("          " + line for line in pem.decode().strip().splitlines())
    return (
        f"apiVersion: signgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {{name: {name}}}\n"
        f'spec:\n  images: ["{pattern}"]\n  mode: {mode}\n  authorities:\n'
        f"    - name: release-key\n      key:\n        pem: |\n{indented}\n"
    )


async def images(pusher: Pusher) -> tuple[str, str, str, str, bytes, bytes]:
    """(signed ref, unsigned ref, other-key ref, signed digest, key PEM, other key PEM)."""
    name = f"explain/{secrets.token_hex(4)}"
    key, other = generate_key(), generate_key()
    digest = await pusher.push_random_image(name, "v1")
    await pusher.push_random_image(name, "unsigned")
    stranger = await pusher.push_random_image(name, "stranger")
    await signer.sign_legacy(pusher, name, digest, key)
    await signer.sign_bundle_v3(pusher, name, stranger, other)
    host = pusher.host
    return (
        f"{host}/{name}:v1",
        f"{host}/{name}:unsigned",
        f"{host}/{name}:stranger",
        digest,
        public_key_pem(key),
        public_key_pem(other),
    )


async def test_explain_shows_digest_signatures_policies_checks_and_verdict(
    pusher: Pusher, tmp_path: Path
) -> None:
    signed, unsigned, stranger, digest, pem, other_pem = await images(pusher)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        policy_yaml("release", f"{pusher.host}/explain/**", pem)
        + "---\n"
        + policy_yaml("elsewhere", "registry.example.com/**", pem, "Warn")
    )
    insecure = ("--insecure-registry", pusher.host)

    code, out, err = await signgate("explain", signed, "--policy", str(policy), *insecure)
    assert code == 0, (out, err)
    assert "tag 'v1' resolves to it" in out
    assert digest in out
    assert "release (Enforce" in out and "governs it: images pattern" in out
    assert "elsewhere (Warn" in out and "does not govern it: no images pattern matches" in out
    assert "[1] signature: cosign .sig tag" in out
    assert f"claims digest {digest} (this digest)" in out
    assert "[ok] release: authority release-key" in out
    assert "ALLOWED" in out and f"@{digest}" in out

    code, out, _ = await signgate("explain", unsigned, "--policy", str(policy), *insecure)
    assert code == 1
    assert "none (no cosign .sig tag, no OCI referrers)" in out
    assert "[no] release: authority release-key" in out
    assert "DENIED" in out and "no signature found" in out

    code, out, _ = await signgate("explain", stranger, "--policy", str(policy), *insecure)
    assert code == 1
    assert "[1] signature: sigstore bundle" in out
    # The signature is there and names this digest, but the policy's key did not make it.
    assert "[no] release: authority release-key" in out
    assert "[1] " in out.split("[no] release")[1]
    # The denial names the key the bundle says signed it, to compare with the policy's.
    other = load_public_key_pem(other_pem).fingerprint
    assert f"(the bundle names key {other[:19]}… as its signer)" in out

    code, out, _ = await signgate(
        "explain", unsigned, "--policy", str(policy), *insecure, "--output", "json"
    )
    assert code == 1
    document = json.loads(out)
    assert document["decision"]["allowed"] is False
    assert document["repositories"][0]["signatures"] == []
    assert [p["governs"] for p in document["policies"]] == [True, False]
    assert document["checks"][0]["satisfiedBy"] is None


async def test_explain_says_when_no_policy_governs_the_image(
    pusher: Pusher, tmp_path: Path
) -> None:
    signed, *_, pem, _ = await images(pusher)
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_yaml("elsewhere", "registry.example.com/**", pem))
    code, out, _ = await signgate(
        "explain", signed, "--policy", str(policy), "--insecure-registry", pusher.host
    )
    assert code == 1
    assert "no policy governs it, so it is denied" in out
    assert "DENIED" in out


def manifests(directory: Path, signed: str, unsigned: str) -> None:
    directory.mkdir()
    (directory / "app.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: team-a}\n"
        "spec:\n  selector: {matchLabels: {app: web}}\n  template:\n"
        "    metadata: {labels: {app: web}}\n    spec:\n      containers:\n"
        f"        - {{name: web, image: '{signed}'}}\n"
        f"      initContainers:\n        - {{name: init, image: '{unsigned}'}}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: team-a}\n"
        "spec: {ports: [{port: 80}]}\n"
    )
    nested = directory / "team-b"
    nested.mkdir()
    (nested / "job.yml").write_text(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly, namespace: team-b}\n"
        "spec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n"
        f"        spec:\n          containers: [{{name: job, image: '{signed}'}}]\n"
        "          restartPolicy: Never\n"
    )


async def test_audit_of_manifests_reports_per_namespace_and_workload(
    pusher: Pusher, tmp_path: Path
) -> None:
    signed, unsigned, _, _, pem, _ = await images(pusher)
    policy = tmp_path / "policy.yaml"
    # A Warn policy: the audit judges it as if it were Enforce, unless told otherwise.
    policy.write_text(policy_yaml("release", f"{pusher.host}/explain/**", pem, "Warn"))
    manifests(tmp_path / "deploy", signed, unsigned)
    common = ("--policy", str(policy), "--insecure-registry", pusher.host)

    code, out, err = await signgate("audit", "--manifests", str(tmp_path / "deploy"), *common)
    assert code == 1, (out, err)
    rows = out.splitlines()
    assert rows[0].split() == ["NAMESPACE", "WORKLOAD", "VERDICT", "IMAGE", "REASON"]
    denied = [r for r in rows if unsigned in r]
    assert len(denied) == 1
    assert denied[0].split()[:3] == ["team-a", "Deployment/web", "DENY"]
    assert "no signature found" in denied[0]
    assert any(r.split()[:3] == ["team-b", "CronJob/nightly", "ok"] for r in rows)
    assert "team-a: 1 of 1 workload(s) would be denied" in out
    assert "team-b: 0 of 1 workload(s) would be denied" in out
    assert "as if every TrustPolicy were in Enforce mode (policies: release=Warn)" in out
    assert "1 object(s) run no images and were skipped" in out
    assert "signgate audit: 2/2 workloads checked, 1 denied" in err

    code, out, _ = await signgate(
        "audit", "--manifests", str(tmp_path / "deploy"), *common, "--current-modes", "--quiet"
    )
    assert code == 0, out
    assert "warn" in out.split()

    # An Audit-mode failure is shown the same way, with its reason.
    audited = tmp_path / "audited.yaml"
    audited.write_text(policy_yaml("release", f"{pusher.host}/explain/**", pem, "Audit"))
    code, out, _ = await signgate(
        "audit", "--manifests", str(tmp_path / "deploy"), "--policy", str(audited),
        "--insecure-registry", pusher.host, "--current-modes", "--quiet",
    )  # fmt: skip
    assert code == 0, out
    (row,) = [line for line in out.splitlines() if unsigned in line]
    assert row.split()[2] == "warn"
    assert "no signature found" in row

    code, out, _ = await signgate(
        "audit", "--manifests", str(tmp_path / "deploy"), *common, "--output", "json",
        "--namespace", "team-a",
    )  # fmt: skip
    assert code == 1
    report = json.loads(out)
    assert report["summary"] == {
        "workloads": 1,
        "denied": 1,
        "seconds": report["summary"]["seconds"],
    }
    (workload,) = report["workloads"]
    assert (workload["namespace"], workload["kind"], workload["name"]) == (
        "team-a",
        "Deployment",
        "web",
    )
    assert [i["allowed"] for i in workload["images"]] == [True, False]


async def test_audit_refuses_broken_manifests_with_the_file_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: {name: [unclosed\n")
    key = tmp_path / "cosign.pub"
    key.write_bytes(public_key_pem(generate_key()))
    code, _, err = await signgate("audit", "--manifests", str(bad), "--key", str(key))
    assert code == 2
    assert err.startswith(f"signgate: error: {bad}: not YAML")
    code, _, err = await signgate("audit", "--manifests", str(tmp_path / "nope"), "--key", str(key))
    assert code == 2
    assert "no such file or directory" in err
