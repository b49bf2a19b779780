"""A pure-ASGI layer that answers a few high-rate JSON POST routes before FastAPI's routing runs.

FastAPI's routing, exception and dependency layers cost about 0.3 ms a request here, several times what
`/classify` itself costs, so under 16 concurrent clients the queue behind them set the tail latency. A router
registers a handler for its path: the handler gets the raw body and returns the finished JSON answer (with its
status when that is not 200), or None for anything that is not the plain successful case (invalid body, no
model loaded yet). None hands the request, body replayed, to the regular FastAPI route, which stays the single
source of the error answers (422 naming the field, 503) and of the OpenAPI schema. The layer sits inside
Starlette's server-error and body-limit middleware, so an exception in a handler is still a 500 and oversized
bodies are still refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

Handler = Callable[[bytes], "bytes | tuple[int, bytes] | None"]
JSON_HEADERS = (b"content-type", b"application/json")


class HotPaths:
    def __init__(self, app, handlers: Mapping[str, Handler]):
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope, receive, send) -> None:
        handler = self.handlers.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        body, disconnected = await _read_body(receive)
        answer = None if disconnected else handler(body)
        if answer is None:
            await self.app(scope, _replay(body, receive), send)
            return
        status, answer = answer if isinstance(answer, tuple) else (200, answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [JSON_HEADERS, (b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})


async def _read_body(receive) -> tuple[bytes, bool]:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive):
    """The body once, as a single message, then the connection's own messages (a later disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed():
        return pending.pop() if pending else await receive()

    return replayed


def install(app, handlers: Mapping[str, Handler]) -> None:
    """Add the layer to a FastAPI app; `handlers` may still be filled afterwards (routers register later)."""
    app.add_middleware(HotPaths, handlers=handlers)
