"""The gateway server: an OpenAI-compatible endpoint on a Unix socket that sandboxes mount.

Agents in network-less sandboxes reach the LLM only through this socket. Each episode gets a
token (not an API key: it is only good for its own episode on this socket); the gateway maps it
to run / agent / task / episode ids, enforces the episode's and the run's budgets, adds the real
credentials on the way out, and records every call once in the run's trajectory file.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agentevo.gateway.backends import Backend, BackboneError
from agentevo.gateway.budget import Budget, Usage
from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder

from agentevo.sandbox.docker_host import GATEWAY_SOCKET_IN_SANDBOX as CONTAINER_SOCKET

TOKEN_ENV = "AGENTEVO_GATEWAY_TOKEN"
SOCKET_ENV = "AGENTEVO_GATEWAY_SOCKET"
TAG_HEADERS = {"agent_id": "x-agentevo-agent", "task_id": "x-agentevo-task", "episode_id": "x-agentevo-episode"}


class EpisodeAccess(BaseModel):
    """An episode's identity, budget and spending; ``env()`` is what its sandbox needs."""

    token: str
    run_id: str
    agent_id: str | None = None
    task_id: str | None = None
    episode_id: str | None = None
    budget: Budget = Field(default_factory=Budget)
    usage: Usage = Field(default_factory=Usage)

    def env(self) -> dict[str, str]:
        return {SOCKET_ENV: CONTAINER_SOCKET, TOKEN_ENV: self.token}


def _error(status: int, message: str, kind: str, retry: bool = False) -> JSONResponse:
    # `x-should-retry: false` stops OpenAI SDK clients from retrying what cannot succeed.
    headers = {} if retry else {"x-should-retry": "false"}
    return JSONResponse({"error": {"message": message, "type": kind, "code": kind}}, status_code=status, headers=headers)


class Gateway:
    """Serve ``backend`` to sandboxes; one gateway per run.

    ::

        gateway = Gateway(backend, run_dir=run.path, run_id=run.run_id).start()
        access = gateway.open_episode(task_id="t1", budget=Budget(max_calls=20))
        Sandbox.start(gateway_socket=gateway.socket_path, env=access.env())
    """

    def __init__(
        self,
        backend: Backend,
        *,
        run_dir: Path,
        run_id: str,
        run_budget: Budget | None = None,
        socket_path: Path | None = None,
        max_request_bytes: int = 1 << 20,
        open_access: bool = False,
    ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.run_dir = Path(run_dir)
        self.run_budget = run_budget or Budget()
        self.usage = Usage()
        self.recorder = TrajectoryRecorder(self.run_dir)
        self.max_request_bytes = max_request_bytes
        # open_access serves callers without a token (loopback `agentevo serve`), tagged from headers.
        self.open_access = open_access
        self.socket_path = socket_path or Path(tempfile.mkdtemp(prefix="agentevo-gw-")) / "gateway.sock"
        self.episodes: dict[str, EpisodeAccess] = {}
        self.app = self._build_app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- episodes --------------------------------------------------------------------------

    def open_episode(
        self,
        *,
        agent_id: str | None = None,
        task_id: str | None = None,
        episode_id: str | None = None,
        budget: Budget | None = None,
    ) -> EpisodeAccess:
        access = EpisodeAccess(
            token=secrets.token_urlsafe(24), run_id=self.run_id, agent_id=agent_id, task_id=task_id,
            episode_id=episode_id, budget=budget or Budget(),
        )
        self.episodes[access.token] = access
        return access

    def close_episode(self, access: EpisodeAccess) -> Usage:
        """Revoke the episode's token; returns what it spent."""
        self.episodes.pop(access.token, None)
        self.write_ledger()
        return access.usage

    def write_ledger(self) -> Path:
        """``<run dir>/ledger.json``: spending of the run and of each episode still or once open."""
        ledger = {"run_id": self.run_id, "run": self.usage.model_dump() | {"tokens": self.usage.tokens}}
        target = self.run_dir / "ledger.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(ledger, indent=2))
        os.replace(tmp, target)
        return target

    # -- serving ---------------------------------------------------------------------------

    def start(self, *, host: str | None = None, port: int | None = None, timeout: float = 30.0) -> Gateway:
        """Serve in a background thread: on ``socket_path``, or on host:port when given."""
        if host is not None:
            config = uvicorn.Config(self.app, host=host, port=port or 0, log_level="warning", lifespan="off")
        else:
            self.socket_path.parent.mkdir(parents=True, exist_ok=True)
            self.socket_path.unlink(missing_ok=True)
            config = uvicorn.Config(self.app, uds=str(self.socket_path), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="agentevo-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start (socket {self.socket_path}, host {host}, port {port})")
            time.sleep(0.02)
        if host is None:
            os.chmod(self.socket_path, 0o666)  # sandboxes run as an unprivileged uid
        return self

    @property
    def url(self) -> str:
        """The base URL for TCP mode (``agentevo serve``)."""
        sock = self._server.servers[0].sockets[0].getsockname()
        return f"http://{sock[0]}:{sock[1]}/v1"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.write_ledger()
        self.socket_path.unlink(missing_ok=True)

    def __enter__(self) -> Gateway:
        return self.start() if self._server is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the HTTP app ----------------------------------------------------------------------

    def _identify(self, request: Request) -> EpisodeAccess | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token in self.episodes:
            return self.episodes[token]
        if self.open_access:
            tags = {field: request.headers.get(header) for field, header in TAG_HEADERS.items()}
            return EpisodeAccess(token="", run_id=self.run_id, **tags)
        return None

    async def _read_body(self, request: Request) -> dict[str, Any] | JSONResponse:
        declared = int(request.headers.get("content-length") or 0)
        if declared > self.max_request_bytes:
            return _error(413, f"request of {declared} bytes exceeds the gateway limit of {self.max_request_bytes}", "request_too_large")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > self.max_request_bytes:
                return _error(413, f"request exceeds the gateway limit of {self.max_request_bytes} bytes", "request_too_large")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return _error(400, f"request body is not JSON: {exc}", "invalid_request")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error(400, "request needs a non-empty `messages` list", "invalid_request")
        if body.get("stream"):
            return _error(400, "streaming is not supported through the gateway; send stream=false", "invalid_request")
        return body

    async def _chat(self, request: Request) -> JSONResponse:
        episode = self._identify(request)
        if episode is None:
            return _error(401, "missing or revoked gateway token (AGENTEVO_GATEWAY_TOKEN)", "unauthorized")
        body = await self._read_body(request)
        if isinstance(body, JSONResponse):
            return body
        body["model"] = body.get("model") or self.backend.model
        record = CallRecord(
            run_id=self.run_id, agent_id=episode.agent_id, task_id=episode.task_id,
            episode_id=episode.episode_id, model=body["model"], request=body,
        )
        refusal = episode.usage.exceeded(episode.budget, "episode") or self.usage.exceeded(self.run_budget, "run")
        if refusal:
            record.status, record.error = 429, refusal
            self.recorder.append(record)
            return _error(429, refusal, "budget_exceeded")
        # Admission counts the call at once, so concurrent calls cannot all slip under the limit.
        for usage in (episode.usage, self.usage):
            usage.calls += 1
        started = time.perf_counter()
        try:
            response: dict[str, Any] | None = await self.backend.chat(body)
            status, error = 200, None
        except BackboneError as exc:
            response, status, error, kind = None, exc.status, str(exc), exc.kind
        except Exception as exc:  # noqa: BLE001 - a bug in a backend must still be answered and recorded
            response, status, error, kind = None, 500, f"gateway error: {exc.__class__.__name__}: {exc}", "gateway_error"
        record.latency_ms = (time.perf_counter() - started) * 1000
        counts = (response or {}).get("usage") or {}
        record.prompt_tokens = int(counts.get("prompt_tokens") or 0)
        record.completion_tokens = int(counts.get("completion_tokens") or 0)
        for usage in (episode.usage, self.usage):
            usage.prompt_tokens += record.prompt_tokens
            usage.completion_tokens += record.completion_tokens
            usage.errors += int(error is not None)
        record.response, record.status, record.error = response, status, error
        await asyncio.to_thread(self.recorder.append, record)
        if error is not None:
            return _error(status, error, kind)
        return JSONResponse(response)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="agentevo gateway", docs_url=None, redoc_url=None)

        @app.get("/health")
        async def health() -> dict[str, Any]:
            return {"ok": True, "run_id": self.run_id}

        @app.get("/v1/models")
        async def models(request: Request) -> JSONResponse:
            if self._identify(request) is None:
                return _error(401, "missing or revoked gateway token (AGENTEVO_GATEWAY_TOKEN)", "unauthorized")
            try:
                names = await self.backend.models()
            except BackboneError as exc:
                return _error(exc.status, str(exc), exc.kind)
            return JSONResponse({"object": "list", "data": [{"id": name, "object": "model"} for name in names]})

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> JSONResponse:
            return await self._chat(request)

        return app
