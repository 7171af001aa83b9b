"""The client process of ``bench/perf.py``: posts AdmissionReviews over HTTPS keep-alive.

It runs as its own process (``perf.py _drive CA_FILE``), pinned to another core than the server,
and obeys one JSON command per line on stdin, answering one JSON line on stdout:

``{"op": "seq", ...}``    one connection, every request in order, ``repeat`` times: latencies;
``{"op": "each", ...}``   every request once, spread over ``concurrency`` connections;
``{"op": "load", ...}``   ``concurrency`` connections post for ``duration`` seconds (after
                          ``warmup`` seconds not counted): answers per second, latencies;
``{"op": "burst", ...}``  open ``concurrency`` connections first, then send one request on each at
                          the same moment (a Deployment's Pods arriving together): latencies;
``{"op": "quit"}``.

Each request is ``[path, body, expected]``; ``expected`` is True (must be allowed), False (must be
denied) or None (either). An answer that is not HTTP 200, or a valid AdmissionReview response for
the request's uid, or not the expected verdict, is counted as an error with a sample.

The HTTP/1.1 client is a minimal one on asyncio streams (pre-encoded requests, Content-Length
responses only), not aiohttp's: measuring the bare-endpoint ceiling needs a client that costs much
less CPU per request than the server it measures. Its CPU time is reported with every answer.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from _harness import cpu_seconds, machine_cpu_seconds


@dataclass(slots=True)
class Outcome:
    latencies: list[float] = field(default_factory=list)
    allowed: int = 0
    denied: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, detail: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(detail[:400])


@dataclass(frozen=True, slots=True)
class Prepared:
    wire: bytes
    uid: str
    expected: bool | None


def _prepare(host: str, port: int, raw: list[Any]) -> Prepared:
    path, body, expected = raw
    data = body.encode()
    uid = str(json.loads(data)["request"]["uid"])
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    return Prepared(head + data, uid, expected)


class Connection:
    """One keep-alive HTTPS connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int, context: ssl.SSLContext) -> Connection:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host, limit=1 << 20
        )
        return cls(reader, writer)

    async def exchange(self, wire: bytes) -> tuple[int, bytes]:
        self.writer.write(wire)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = -1
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        if length < 0:
            raise ValueError(f"answer without Content-Length: {head[:200]!r}")
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    async def get(self, host: str, port: int, path: str) -> int:
        wire = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        status, _ = await self.exchange(wire)
        return status

    def close(self) -> None:
        self.writer.close()


def _check(outcome: Outcome, request: Prepared, status: int, body: bytes) -> None:
    if status != 200:
        outcome.error(f"HTTP {status}: {body[:200]!r}")
        return
    try:
        response = json.loads(body)["response"]
        allowed, uid = response["allowed"], response["uid"]
    except (ValueError, KeyError, TypeError) as exc:
        outcome.error(f"malformed answer ({exc}): {body[:200]!r}")
        return
    if uid != request.uid or not isinstance(allowed, bool):
        outcome.error(f"answer for uid {uid!r}, allowed {allowed!r}")
        return
    if allowed:
        outcome.allowed += 1
    else:
        outcome.denied += 1
    if request.expected is not None and allowed is not request.expected:
        message = response.get("status", {}).get("message", "") if not allowed else ""
        outcome.error(f"expected allowed={request.expected}, got {allowed}: {message}")


async def _timed(conn: Connection, request: Prepared, outcome: Outcome, record: bool) -> None:
    begun = time.perf_counter()
    try:
        status, body = await conn.exchange(request.wire)
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        outcome.error(f"{type(exc).__name__}: {exc}")
        raise
    if record:
        outcome.latencies.append(time.perf_counter() - begun)
    _check(outcome, request, status, body)


async def _connections(
    host: str, port: int, context: ssl.SSLContext, count: int
) -> list[Connection]:
    conns = list(
        await asyncio.gather(*(Connection.open(host, port, context) for _ in range(count)))
    )
    # One request on each before timing anything: the handshake and the server's first-use costs
    # are not part of what is measured.
    await asyncio.gather(*(c.get(host, port, "/healthz") for c in conns))
    return conns


def _answer(outcome: Outcome, **extra: Any) -> dict[str, Any]:
    return {
        "latencies": outcome.latencies,
        "allowed": outcome.allowed,
        "denied": outcome.denied,
        "errors": outcome.errors,
        "error_samples": outcome.error_samples,
        **extra,
    }


async def run(command: dict[str, Any], context: ssl.SSLContext) -> dict[str, Any]:
    host, port = str(command["host"]), int(command["port"])
    requests = [_prepare(host, port, raw) for raw in command["requests"]]
    op = command["op"]
    outcome = Outcome()
    cpu_before = time.process_time()
    if op == "seq":
        (conn,) = await _connections(host, port, context, 1)
        try:
            for _ in range(int(command.get("repeat", 1))):
                for request in requests:
                    await _timed(conn, request, outcome, record=True)
        finally:
            conn.close()
        return _answer(outcome, cpu=time.process_time() - cpu_before)
    concurrency = int(command["concurrency"])
    conns = await _connections(host, port, context, concurrency)
    started = time.perf_counter()
    try:
        if op == "each":
            queue = list(reversed(requests))

            async def drain(conn: Connection) -> None:
                while queue:
                    await _timed(conn, queue.pop(), outcome, record=True)

            await asyncio.gather(*(drain(c) for c in conns))
        elif op == "burst":
            await asyncio.gather(
                *(
                    _timed(c, requests[i % len(requests)], outcome, record=True)
                    for i, c in enumerate(conns)
                )
            )
        elif op == "load":
            loop = asyncio.get_running_loop()
            warm_until = loop.time() + float(command.get("warmup", 0.0))
            stop_at = warm_until + float(command["duration"])
            counted = 0
            measured_from = 0.0

            async def worker(conn: Connection, number: int) -> None:
                nonlocal counted
                sent = number
                while (now := loop.time()) < stop_at:
                    request = requests[sent % len(requests)]
                    sent += concurrency
                    await _timed(conn, request, outcome, record=now >= warm_until)
                    if now >= warm_until:
                        counted += 1

            async def mark() -> None:
                nonlocal measured_from
                await asyncio.sleep(max(0.0, warm_until - loop.time()))
                measured_from = time.perf_counter()
                marks.extend((time.process_time(), cpu_seconds(pid) or 0.0, machine_cpu_seconds()))

            pid = int(command.get("server_pid", 0))
            marks: list[float] = []
            await asyncio.gather(mark(), *(worker(c, n) for n, c in enumerate(conns)))
            elapsed = time.perf_counter() - measured_from
            return _answer(
                outcome,
                answers=counted,
                elapsed=elapsed,
                cpu=time.process_time() - marks[0],
                server_cpu=(cpu_seconds(pid) or 0.0) - marks[1] if pid else None,
                machine_cpu=machine_cpu_seconds() - marks[2],
            )
        else:
            raise ValueError(f"unknown op {op!r}")
    finally:
        for conn in conns:
            conn.close()
    return _answer(
        outcome, elapsed=time.perf_counter() - started, cpu=time.process_time() - cpu_before
    )


async def serve(ca_file: str) -> int:
    context = ssl.create_default_context(cafile=ca_file)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return 0
        command = json.loads(line)
        if command.get("op") == "quit":
            return 0
        try:
            answer = await run(command, context)
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            answer = {"failed": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main(ca_file: str) -> int:
    return asyncio.run(serve(ca_file))
