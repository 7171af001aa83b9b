"""The ceiling of ``bench/perf.py``: a bare aiohttp HTTPS endpoint that does no work.

``POST /validate`` reads the AdmissionReview, parses its JSON, and answers ``allowed: true`` for its
uid; ``GET /healthz`` answers ``ok``. It serves with the webhook's own TLS setup
(``signgate.admission.server.CertificateReloader``), the same aiohttp runner options and listen
backlog, so the difference between its throughput and ``signgate serve``'s is what signgate's own
work costs. ``perf.py _ceiling CERT KEY`` runs it; it prints ``listening on https://127.0.0.1:PORT``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from aiohttp import web

from signgate.admission.server import CertificateReloader


async def _validate(request: web.Request) -> web.Response:
    review = json.loads(await request.read())
    return web.json_response(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True},
        }
    )


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def serve(cert: str, key: str) -> None:
    reloader = CertificateReloader(Path(cert), Path(key))
    app = web.Application(client_max_size=3 * 1024 * 1024 + 64 * 1024)
    app.router.add_post("/validate", _validate)
    app.router.add_get("/healthz", _healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=reloader.context, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening on https://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(cert: str, key: str, use_uvloop: bool = False) -> int:
    if use_uvloop:
        import uvloop  # type: ignore[import-not-found]  # an experiment: uv run --with uvloop

        uvloop.install()
    asyncio.run(serve(cert, key))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
