"""The engine's Sigstore trusted root, from files: the public-good root shipped in the package, a
user's ``trusted_root.json``, and that file re-read when it changes (`TrustedRootFile`).

A mounted root is refreshed out of band (a CronJob or a GitOps commit updates the ConfigMap; the
kubelet updates the mounted file within a minute or so). signgate never fetches it itself: nothing
on the admission path depends on reaching Sigstore's TUF repository. The parsing is the
verification core's (`signgate.signatures.trusted_root`), which reads no file itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
from importlib import resources
from pathlib import Path

from signgate.engine.verifier import Verifier
from signgate.errors import ConfigError, SigngateError
from signgate.signatures.trusted_root import TrustedRoot, load_trusted_root

log = logging.getLogger(__name__)

PUBLIC_GOOD_RESOURCE = "public-good-trusted-root.json"
"""The Sigstore public-good ``trusted_root.json`` shipped with signgate (the TUF target of
tuf-repo-cdn.sigstore.dev as of its release): the default wherever no root is configured."""


def default_trusted_root() -> TrustedRoot:
    """The public-good trusted root shipped in the package (read from the package, no network)."""
    data = resources.files("signgate.data").joinpath(PUBLIC_GOOD_RESOURCE).read_bytes()
    return load_trusted_root(data)


def read_trusted_root(path: str | Path | None) -> TrustedRoot:
    """The root in the file at ``path``; the public-good one when ``path`` is None or empty.

    Raises:
        ConfigError: the file cannot be read or is not a valid ``trusted_root.json``.
    """
    if not path:
        return default_trusted_root()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read trusted root {path}: {exc.strerror}") from exc
    try:
        return load_trusted_root(data)
    except SigngateError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


class TrustedRootFile:
    """One trusted-root file and the engine that uses it."""

    def __init__(self, path: Path, engine: Verifier) -> None:
        self.path = path
        self.engine = engine
        self._stamp = self._current_stamp()
        self.reloads = 0

    def _current_stamp(self) -> tuple[float, int, int]:
        stat = os.stat(self.path)
        return (stat.st_mtime, stat.st_size, stat.st_ino)

    def read_if_changed(self) -> tuple[tuple[float, int, int], TrustedRoot] | None:
        """The file's new root (and its stamp) if it changed since the last one applied.

        Touches nothing the engine uses, so it may run in a worker thread. A root that cannot be
        read or parsed is logged and ignored: the engine keeps the last good one (a half-written
        file must not switch keyless verification off).
        """
        try:
            stamp = self._current_stamp()
            if stamp == self._stamp:
                return None
            return stamp, load_trusted_root(self.path.read_bytes())
        except (OSError, SigngateError) as exc:
            log.warning(
                "trusted root %s not reloaded, keeping the last good one: %s", self.path, exc
            )
            return None

    def check(self) -> bool:
        """Load the file if it changed; True when the engine now uses a new root."""
        changed = self.read_if_changed()
        if changed is None:
            return False
        self._stamp, root = changed
        self.apply(root)
        return True

    def apply(self, root: TrustedRoot) -> None:
        """Use ``root`` from now on; verdicts reached under the old root are forgotten."""
        self.engine.trusted_root = root  # forgets the verdicts reached under the old root
        self.reloads += 1
        log.info(
            "trusted root %s reloaded: %d CAs, %d transparency logs, %d CT logs",
            self.path,
            len(root.certificate_authorities),
            len(root.tlogs),
            len(root.ctlogs),
        )

    async def watch(self, stop: asyncio.Event, interval: float = 30.0) -> None:
        """Check the file every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                # Read and parse off the loop; swap the root and clear the caches on it, where the
                # engine reads them.
                changed = await asyncio.to_thread(self.read_if_changed)
                if changed is not None:
                    self._stamp, root = changed
                    self.apply(root)
