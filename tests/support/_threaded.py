"""Run an aiohttp application on 127.0.0.1 in a background thread with its own event loop.

The token server and the fault proxy must keep answering while a test's own event loop is blocked
or busy (sync fixtures, a client that hangs on purpose), and they must outlive single tests when
session-scoped. A dedicated thread with a private loop gives both.
"""

from __future__ import annotations

import asyncio
import ssl
import threading

from aiohttp import web

#: Set when the server begins to stop; handlers that hang on purpose wait on it so that shutdown
#: is immediate instead of waiting for aiohttp's shutdown timeout.
STOPPING: web.AppKey[asyncio.Event] = web.AppKey("stopping", asyncio.Event)


class ThreadedApp:
    """An aiohttp ``web.Application`` served on loopback from a daemon thread.

    Call :meth:`start` once and :meth:`stop` once. The bound port is picked by the kernel
    (``port=0``), so there is no race with other servers.
    """

    def __init__(
        self,
        app: web.Application,
        *,
        name: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Prepare (but do not start) the server.

        Args:
            app: the application to serve; ``app[STOPPING]`` is set by this class.
            name: thread name, shown in thread dumps and leak reports.
            ssl_context: serve HTTPS with this context instead of plain HTTP.
        """
        self._app = app
        self._name = name
        self._ssl_context = ssl_context
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._port = 0

    @property
    def port(self) -> int:
        """The TCP port the server listens on (valid after :meth:`start`)."""
        return self._port

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The server's event loop (valid after :meth:`start`): schedule work in it with
        ``asyncio.run_coroutine_threadsafe``."""
        if self._loop is None:
            raise RuntimeError(f"{self._name} is not started")
        return self._loop

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, ``http://`` or ``https://``."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self.host}"

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until the socket is listening.

        Raises:
            RuntimeError: the server did not come up (the cause is chained).
        """
        if self._thread is not None:
            raise RuntimeError(f"{self._name} already started")
        self._thread = threading.Thread(target=self._thread_main, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self._name} did not start within {timeout}s")
        if self._error is not None:
            raise RuntimeError(f"{self._name} failed to start") from self._error

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, cancel in-flight handlers, and join the thread. Idempotent."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None or event is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"{self._name} did not stop within {timeout}s")

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die noisily
            self._error = exc
            self._ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        stop_event = asyncio.Event()
        self._stop_event = stop_event
        self._app[STOPPING] = stop_event
        # handler_cancellation: a client that gives up cancels the handler (hang faults end).
        runner = web.AppRunner(
            self._app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self._ssl_context)
            await site.start()
            self._port = int(runner.addresses[0][1])
            self._ready.set()
            await stop_event.wait()
        finally:
            await runner.cleanup()
