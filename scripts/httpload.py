"""A raw HTTP/1.1 load generator for the benchmarks: keep-alive connections on 127.0.0.1, ~30 us of its own cost
per request, so the figures are the servers' and not the client library's."""

from __future__ import annotations

import asyncio
import json
import time


def post_message(port: int, path: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def get_message(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection, read its whole answer, return the status and the body."""
    writer.write(message)
    headers = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in headers.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    body = await reader.readexactly(length)
    return int(headers.split(b" ", 2)[1]), body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes) -> int:
    return (await exchange(reader, writer, message))[0]


async def drive(port: int, messages: list[bytes], requests: int, clients: int) -> tuple[float, list[float]]:
    """`clients` keep-alive connections send `requests` requests in total, cycling through `messages`; returns
    the wall time and each request's latency. Any answer but 200 stops the run: a benchmark of errors is none."""
    remaining = [requests]
    latencies: list[float] = []

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        try:
            while remaining[0] > 0:
                remaining[0] -= 1
                message = messages[i % len(messages)]
                i += 1
                started = time.perf_counter()
                status = await _exchange(reader, writer, message)
                if status != 200:
                    raise RuntimeError(f"HTTP {status} from port {port}")
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return time.perf_counter() - started, latencies


async def status(port: int, path: str) -> int:
    """The status of one GET."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await _exchange(reader, writer, get_message(port, path))
    finally:
        writer.close()
