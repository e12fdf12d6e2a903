"""Gateway fixtures: a loopback upstream that checks the API key, and a gateway per test."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

UPSTREAM_KEY = "sk-host-secret-never-in-a-sandbox"

# Runs inside a sandbox: the OpenAI SDK over the mounted Unix socket, the way agents call.
CALL_SCRIPT = """
import os, sys, httpx, openai
http = httpx.Client(transport=httpx.HTTPTransport(uds=os.environ["AGENTEVO_GATEWAY_SOCKET"]), timeout=120)
client = openai.OpenAI(base_url="http://gateway/v1", api_key=os.environ["AGENTEVO_GATEWAY_TOKEN"], http_client=http, max_retries=0)
for prompt in sys.argv[1:]:
    try:
        reply = client.chat.completions.create(model="", messages=[{"role": "user", "content": prompt}], max_tokens=24)
        print("OK", reply.usage.total_tokens, repr(reply.choices[0].message.content))
    except openai.APIStatusError as exc:
        print("ERR", exc.status_code, exc.response.json()["error"]["message"])
"""


class Upstream:
    """A loopback OpenAI-compatible server that insists on the host's API key."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.seen_keys: list[str] = []
        self.seen_bodies: list[dict] = []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> JSONResponse:
            self.seen_keys.append(request.headers.get("authorization", ""))
            if request.headers.get("authorization") != f"Bearer {UPSTREAM_KEY}":
                return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
            await asyncio.sleep(self.delay)
            body = await request.json()
            self.seen_bodies.append(body)
            text = f"upstream saw {len(body['messages'])} message(s)"
            return JSONResponse(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
                }
            )

        @app.get("/v1/models")
        async def models() -> dict:
            return {"object": "list", "data": [{"id": "upstream-model", "object": "model"}]}

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Upstream:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server
