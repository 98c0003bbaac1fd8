"""A lean load generator for the service benchmarks: raw HTTP/1.1 over asyncio streams.

The server and the load generator share the machine's cores, so the generator must cost as
little CPU as it can: every request is serialised to bytes before the timed window, a fixed
number of keep-alive connections each send one request and read one response at a time
(bounded concurrency, no pipelining), and nothing but the status line and Content-Length is
parsed. The run stops when every request was answered or when the time bound passed,
whichever comes first. Latencies are the generator's own (``time.perf_counter`` around each
exchange); requests/s counts successful answers over the window.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class WindowResult:
    latencies: list[float] = field(default_factory=list)  # seconds, successful answers only
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    unsent: int = 0  # requests left when the time bound stopped the window

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def percentile(fraction: float) -> float:
            if not ordered:
                return float("nan")
            return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 1)

        return {
            "answered": len(ordered),
            "errors": dict(self.errors),
            "unsent": self.unsent,
            "seconds": round(self.seconds, 2),
            "per_second": round(len(ordered) / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
        }


def encode_posts(
    url: str, path: str, bodies: Sequence[dict[str, Any]], headers: dict[str, str]
) -> list[bytes]:
    """Each body as one complete ``POST`` request (keep-alive), ready to write."""
    host = urlsplit(url).netloc
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    requests = []
    for body in bodies:
        payload = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{extra}\r\n"
        ).encode()
        requests.append(head + payload)
    return requests


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> str:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head[9:12].decode()
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _run(
    urls: Sequence[str], requests: Sequence[bytes], connections: int, limit: float
) -> WindowResult:
    addresses = [urlsplit(url) for url in urls]
    result = WindowResult()
    pending = iter(requests)
    # Connections go round-robin over the servers (several single-process servers, one port
    # each); the requests' Host header is not checked by the services.
    streams = [
        await asyncio.open_connection(address.hostname or "127.0.0.1", address.port or 80)
        for address in (addresses[index % len(addresses)] for index in range(connections))
    ]
    began = time.perf_counter()
    deadline = began + limit

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for request in pending:
            if time.perf_counter() > deadline:
                result.unsent += 1
                continue
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(
                    _exchange(reader, writer, request), deadline - started + 5
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
                result.errors[type(error).__name__] = result.errors.get(type(error).__name__, 0) + 1
                return  # this connection is unusable; the others carry on
            if status == "200":
                result.latencies.append(time.perf_counter() - started)
            else:
                result.errors[status] = result.errors.get(status, 0) + 1

    await asyncio.gather(*(worker(reader, writer) for reader, writer in streams))
    result.seconds = time.perf_counter() - began
    result.unsent += sum(1 for _ in pending)
    for _, writer in streams:
        writer.close()
    return result


def run_window(
    url: str | Sequence[str], requests: Sequence[bytes], *, connections: int, time_limit: float
) -> WindowResult:
    """Send ``requests`` over ``connections`` keep-alive connections (spread over the servers
    when ``url`` is several), at most ``time_limit`` seconds; uvloop when installed (the
    generator's own CPU matters on a shared machine)."""
    urls = [url] if isinstance(url, str) else list(url)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    result: WindowResult = runner(_run(urls, requests, connections, time_limit))
    return result
