"""The README's first command: see signgate allow a signed image and deny an unsigned one.

Starts a real CNCF distribution registry on loopback, makes a cosign-format key pair, pushes three
images (one signed in cosign v3's bundle format, one in the legacy ``.sig`` format, one unsigned),
then runs ``signgate verify`` on each exactly as a user would, and cleans up after itself.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cryptography.hazmat.primitives.asymmetric import ec

from signgate.signatures.cosign_key import encrypt_cosign_private_key
from support import signer
from support.formats import public_key_pem
from support.push import Pusher
from support.registry import RegistryKind, start_registry


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run_signgate(args: list[str], expect: int) -> bool:
    shown = "signgate " + " ".join(shlex.quote(a) for a in args)
    print(f"$ {shown}", flush=True)
    result = subprocess.run(  # noqa: S603 - our own CLI, arguments built above
        [sys.executable, "-m", "signgate", *args], check=False, capture_output=True, text=True
    )
    output = (result.stdout + result.stderr).rstrip()
    print("\n".join("  " + line for line in output.splitlines()))
    verdict = "as expected" if result.returncode == expect else f"UNEXPECTED (wanted {expect})"
    print(f"  (exit status {result.returncode}: {verdict})", flush=True)
    return result.returncode == expect


async def push_images(pusher: Pusher, key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    images = {}
    for name, how in [
        ("demo/app:v1", "bundle"),
        ("demo/legacy:v1", "legacy"),
        ("demo/app:unsigned", None),
    ]:
        repo, tag = name.split(":")
        digest = await pusher.push_random_image(repo, tag)
        if how == "bundle":
            await signer.sign_bundle_v3(pusher, repo, digest, key)
        elif how == "legacy":
            await signer.sign_legacy(pusher, repo, digest, key)
        images[name] = digest
        print(
            f"  pushed {pusher.host}/{name} ({digest[:19]}…)"
            + (f", signed in cosign's {how} format" if how else ", not signed"),
            flush=True,
        )
    return images


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="signgate-demo-") as tmp:
        work = Path(tmp)
        step("starting a CNCF distribution registry on loopback")
        registry = start_registry(RegistryKind.ANONYMOUS, work / "registry")
        try:
            print(f"  registry at {registry.url}")
            step("making a signing key pair in cosign's format (cosign.key, cosign.pub)")
            key = ec.generate_private_key(ec.SECP256R1())
            (work / "cosign.key").write_bytes(encrypt_cosign_private_key(key, b""))
            (work / "cosign.pub").write_bytes(public_key_pem(key))
            print(f"  {work / 'cosign.pub'}")

            step("pushing images and signatures through the registry API")

            async def push() -> dict[str, str]:
                async with Pusher.for_registry(registry) as pusher:
                    return await push_images(pusher, key)

            asyncio.run(push())

            common = ["--key", str(work / "cosign.pub"), "--insecure-registry", registry.host]
            ok = True
            step("verifying the image signed in cosign v3's bundle format: admitted")
            ok &= run_signgate(["verify", f"{registry.host}/demo/app:v1", *common], expect=0)
            step("verifying the image signed in cosign's legacy .sig format: admitted")
            ok &= run_signgate(["verify", f"{registry.host}/demo/legacy:v1", *common], expect=0)
            step("verifying the unsigned image: refused, with the reason")
            ok &= run_signgate(["verify", f"{registry.host}/demo/app:unsigned", *common], expect=1)
            step("the same three at once, as JSON for a CI pipeline")
            ok &= run_signgate(
                [
                    "verify",
                    f"{registry.host}/demo/app:v1",
                    f"{registry.host}/demo/legacy:v1",
                    f"{registry.host}/demo/app:unsigned",
                    *common,
                    "--output",
                    "json",
                ],
                expect=1,
            )
        finally:
            step("cleaning up: stopping the registry, removing temporary files")
            registry.stop()
    print("\ndemo " + ("finished: signed images admitted, unsigned refused." if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
