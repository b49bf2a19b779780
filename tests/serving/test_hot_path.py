"""The hot-path layer: answers the plain case itself, hands everything else to the FastAPI route intact."""

import json

from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from serving.hot_path import HotPaths, install
from tests.support import run_coroutine


def make_app(handler):
    app = FastAPI()
    routed: list[bytes] = []

    @app.post("/score")
    async def score(request: Request):
        body = await request.body()
        routed.append(body)
        if not body.startswith(b"{"):
            raise HTTPException(422, "body must be a JSON object")
        return {"from": "route", "echo": json.loads(body)}

    @app.get("/score")
    def score_page():
        return {"page": True}

    install(app, {"/score": handler})
    return TestClient(app, raise_server_exceptions=False), routed


def test_plain_case_is_answered_without_routing():
    client, routed = make_app(lambda body: b'{"from":"hot"}' if body == b'{"x":1}' else None)
    response = client.post("/score", content=b'{"x":1}', headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json() == {"from": "hot"}
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(b'{"from":"hot"}')
    assert routed == []


def test_declined_requests_reach_the_route_with_the_whole_body():
    client, routed = make_app(lambda body: None)
    large = json.dumps({"x": "y" * 200_000}).encode()
    response = client.post("/score", content=large, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["from"] == "route"
    assert routed == [large]
    error = client.post("/score", content=b"not json")
    assert error.status_code == 422 and error.json() == {"detail": "body must be a JSON object"}


def test_other_methods_and_paths_pass_through():
    calls = []
    client, _ = make_app(lambda body: calls.append(body))
    assert client.get("/score").json() == {"page": True}
    assert client.post("/other", json={}).status_code == 404
    assert calls == []


def test_a_failing_handler_is_a_500_not_a_dropped_connection():
    def broken(body):
        raise RuntimeError("model exploded")

    client, _ = make_app(broken)
    response = client.post("/score", json={"x": 1})
    assert response.status_code == 500


def test_a_body_in_several_chunks_is_joined_for_the_handler_and_replayed_once_for_the_route():
    seen_by_handler, seen_by_app, sent = [], [], []

    async def app(scope, receive, send):
        message = await receive()
        seen_by_app.append((message["body"], message["more_body"]))
        await send({"type": "http.response.start", "status": 422, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    chunks = [
        {"type": "http.request", "body": part, "more_body": more}
        for part, more in ((b'{"a"', True), (b":", True), (b"1}", False))
    ]

    async def receive():
        return chunks.pop(0)

    async def send(message):
        sent.append(message)

    layer = HotPaths(app, {"/score": lambda body: seen_by_handler.append(body)})
    run_coroutine(layer({"type": "http", "method": "POST", "path": "/score"}, receive, send))
    assert seen_by_handler == [b'{"a":1}'] and seen_by_app == [(b'{"a":1}', False)]
    assert sent[0]["status"] == 422
