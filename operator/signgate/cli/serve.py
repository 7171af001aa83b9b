"""``signgate serve``: the admission webhook (``/validate``, ``/mutate``) over HTTPS, with
TrustPolicies from files (``--policy``) or, without, as the operator that watches the cluster's."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from signgate.cli.options import engine_setup, file_policies, require_positive
from signgate.cli.parser import EXIT_ALLOWED
from signgate.engine.settings import CacheSettings
from signgate.errors import ConfigError

log = logging.getLogger("signgate")


async def run_serve(args: argparse.Namespace) -> int:
    """``signgate serve``: serve until SIGTERM or SIGINT; returns the exit status.

    With ``--policy`` the TrustPolicies come from files; without, this is the operator: Kopf
    watches TrustPolicies (and namespaces) in the cluster it is logged into.
    """
    # The webhook server, its metrics and their dependencies load only for `serve`: `verify` is
    # run once per CI step, and every import is start-up time. What the engine imports on first
    # use (RFC 3161 timestamps, Ed25519ph) is loaded now, so that no admission request pays for it.
    import nacl.bindings  # noqa: F401

    import signgate.signatures.timestamp  # noqa: F401
    from signgate.admission.metrics import Metrics
    from signgate.admission.server import ServerSettings, make_app, running_server
    from signgate.engine.trusted_root_file import TrustedRootFile
    from signgate.policy.sources import StaticPolicySource

    setup = engine_setup(
        args, file_policies(args.policy), cache=CacheSettings(tag_ttl=args.tag_ttl)
    )
    policies = setup.policies
    _pull_secret(args.pull_secret)
    if args.policy and args.pull_secret:
        raise ConfigError("--pull-secret needs the operator mode (no --policy)")
    require_positive(args.deadline, "--deadline")
    if args.tag_ttl < 0:
        raise ConfigError("--tag-ttl must not be negative")
    if args.status_interval < 1:
        raise ConfigError("--status-interval must be at least 1 second")
    client_ca = _client_ca(args.client_ca, args.client_name)
    settings = ServerSettings(
        tls_cert=Path(args.tls_cert),
        tls_key=Path(args.tls_key),
        address=args.address,
        port=args.port,
        deadline_seconds=args.deadline,
        client_ca=client_ca,
        client_names=tuple(args.client_name),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with setup.engine() as engine:
        root_watch: asyncio.Task[None] | None = None
        if args.trusted_root:
            root_file = TrustedRootFile(Path(args.trusted_root), engine)
            root_watch = asyncio.create_task(root_file.watch(stop), name="trusted-root-watch")
        try:
            if not args.policy:
                from signgate.kube.run import run_operator  # Kopf is only imported when needed

                await run_operator(
                    engine=engine,
                    server=settings,
                    stop=stop,
                    global_pull_secret=_pull_secret(args.pull_secret),
                    status_interval=args.status_interval,
                    status_last_denial=args.status_last_denial,
                )
                return EXIT_ALLOWED
            app = make_app(
                engine=engine,
                policies=StaticPolicySource(policies),
                settings=settings,
                metrics=Metrics(engine),
            )
            async with running_server(app, settings) as (_, _, port):
                log.info(
                    "serving /validate and /mutate on https://%s:%d with %d TrustPolicies from %s",
                    args.address,
                    port,
                    len(policies),
                    ", ".join(args.policy),
                )
                await stop.wait()
                log.info("stopping")
        except OSError as exc:
            raise ConfigError(f"cannot listen on {args.address}:{args.port}: {exc}") from exc
        finally:
            if root_watch is not None:
                root_watch.cancel()
    return EXIT_ALLOWED


def _pull_secret(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ConfigError(f"--pull-secret {value!r}: expected NAMESPACE/NAME")
    return namespace, name


def _client_ca(ca_file: str | None, names: list[str]) -> Path | None:
    """``--client-ca``, checked now (readable, holds a CA certificate), and ``--client-name``."""
    from signgate.admission.server import check_client_ca  # loaded for `serve` only

    if names and ca_file is None:
        raise ConfigError("--client-name needs --client-ca (the CA that issued those names)")
    if any(not name.strip() for name in names):
        raise ConfigError("--client-name must not be empty")
    if ca_file is None:
        return None
    check_client_ca(Path(ca_file))
    return Path(ca_file)
