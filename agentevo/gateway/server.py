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
import zlib
from pathlib import Path
from typing import Any, Protocol, Self

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agentevo import contract
from agentevo.files import write_json_atomic
from agentevo.gateway.backends import BackboneError, BackboneHealth, Backend, Fault, structured_failure
from agentevo.gateway.budget import Budget, Usage
from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder
from agentevo.gateway.retry import RequestRetry, call_with_retries
from agentevo.runs import LEDGER_FILE

TOKEN_ENV, SOCKET_ENV = contract.TOKEN_ENV, contract.SOCKET_ENV
TAG_HEADERS = {
    "agent_id": "x-agentevo-agent",
    "task_id": "x-agentevo-task",
    "episode_id": "x-agentevo-episode",
}
DRAIN_S = 2.0  # at stop, how long calls in flight may finish on their own before they are cut off
CUT_OFF_S = 5.0  # then how long cut-off calls get to be answered and recorded
READY_POLL_S = 0.1
MAX_LESSONS = 10  # per memory search


# Memory, read-only, as the gateway serves it: (query, k) -> lessons as JSON objects, each with an "id".
class MemoryReader(Protocol):
    """What agents may read from memory through the gateway (writes never come in this way)."""

    def read(self, query: str, k: int) -> list[dict[str, Any]]:
        """Up to ``k`` lessons for ``query``."""
        ...

    def cases(self, query: str, k: int, task_id: str | None) -> list[dict[str, Any]]:
        """Up to ``k`` solved cases similar to ``query``, none of task ``task_id``."""
        ...


class EpisodeAccess(BaseModel):
    """An episode's identity, budget and spending; ``env()`` is what its sandbox needs."""

    token: str
    run_id: str
    agent_id: str | None = None
    task_id: str | None = None
    episode_id: str | None = None
    budget: Budget = Field(default_factory=Budget)
    usage: Usage = Field(default_factory=Usage)
    seed: int | None = Field(
        None,
        description="The episode's sampling seed: every call is sent with a seed drawn from it and the call's own "
        "(so attempts differ, and each is recorded in the call's request).",
    )
    fault: Fault | None = Field(
        None, description="The last infrastructure fault this episode was answered with."
    )
    fault_detail: str | None = None

    def env(self) -> dict[str, str]:
        return {SOCKET_ENV: contract.GATEWAY_SOCKET_IN_SANDBOX, TOKEN_ENV: self.token}

    def deadline(self) -> float | None:
        """When the episode's wall-clock budget runs out (``time.time()``), if it has one."""
        if self.budget.max_seconds is None:
            return None
        return self.usage.started + self.budget.max_seconds


def call_seed(episode: int, asked: object) -> int:
    """The seed a call of a seeded episode is sent with: the episode's, mixed with the one the agent asked for (its
    sample index, say), so the same agent asks differently in two attempts and alike when an attempt is redone."""
    own = asked if isinstance(asked, int) and not isinstance(asked, bool) else 0
    return zlib.crc32(f"{episode}:{own}".encode()) & 0x7FFFFFFF


def _error(status: int, message: str, kind: Fault) -> JSONResponse:
    # `x-should-retry: false` stops OpenAI SDK clients from retrying: the gateway has already retried what it could.
    return JSONResponse(
        {"error": {"message": message, "type": kind.value, "code": kind.value}},
        status_code=status,
        headers={"x-should-retry": "false"},
    )


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
        retry: RequestRetry | None = None,
        memory: MemoryReader | None = None,
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
        self.retry = retry or RequestRetry()
        self.memory = (
            memory  # read-only retrieval for agents (/v1/memory/search, /cases); writes never come in
        )
        self.lessons_served: dict[str, list[str]] = {}  # episode id -> lessons it read, for outcome counting
        self.app = self._build_app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._in_flight = 0  # calls admitted and not yet answered; changed on the server's loop only
        self._interrupts: set[asyncio.Future[Fault]] = set()  # one per call waiting on the backend
        self._stop_listening = (
            backend.health.on_fault(lambda: self._interrupt(Fault.backbone_restarted))
            if backend.health is not None
            else None
        )

    # -- episodes --------------------------------------------------------------------------

    def open_episode(
        self,
        *,
        agent_id: str | None = None,
        task_id: str | None = None,
        episode_id: str | None = None,
        budget: Budget | None = None,
        seed: int | None = None,
    ) -> EpisodeAccess:
        access = EpisodeAccess(
            token=secrets.token_urlsafe(24),
            run_id=self.run_id,
            agent_id=agent_id,
            task_id=task_id,
            episode_id=episode_id,
            budget=budget or Budget(),
            seed=seed,
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
        target = self.run_dir / LEDGER_FILE
        write_json_atomic(
            target, ledger
        )  # a temp file of its own: episodes close from several threads at once
        return target

    # -- serving ---------------------------------------------------------------------------

    def start(self, *, host: str | None = None, port: int | None = None, timeout: float = 30.0) -> Self:
        """Serve in a background thread: on ``socket_path``, or on host:port when given."""
        if host is not None:
            config = uvicorn.Config(self.app, host=host, port=port or 0, log_level="warning", lifespan="off")
        else:
            self.socket_path.parent.mkdir(parents=True, exist_ok=True)
            self.socket_path.unlink(missing_ok=True)
            config = uvicorn.Config(self.app, uds=str(self.socket_path), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(),), name="agentevo-gateway", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the gateway did not start (socket {self.socket_path}, host {host}, port {port})"
                )
            time.sleep(0.02)
        if host is None:
            os.chmod(self.socket_path, 0o666)  # sandboxes run as an unprivileged uid
        return self

    @property
    def url(self) -> str:
        """The base URL for TCP mode (``agentevo serve``)."""
        if self._server is None:
            raise RuntimeError("the gateway has no URL until start() has opened its TCP port")
        sock = self._server.servers[0].sockets[0].getsockname()
        return f"http://{sock[0]}:{sock[1]}/v1"

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        assert self._server is not None
        await self._server.serve()

    def stop(self) -> None:
        """Close without losing a record: refuse new calls, let calls in flight finish for ``DRAIN_S``, cut off
        the rest (answered and recorded as ``gateway_closing``), and only then stop serving."""
        if self._server is not None:
            self._closing = True
            if not self._drained(DRAIN_S):
                self._interrupt(Fault.gateway_closing)
                self._drained(CUT_OFF_S)
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        self.write_ledger()
        self.socket_path.unlink(missing_ok=True)

    @property
    def alive(self) -> bool:
        """Whether the gateway is serving (False once stopped, or if its server thread died)."""
        return self._thread is not None and self._thread.is_alive() and not self._closing

    def _drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._in_flight

    def _interrupt(self, fault: Fault) -> None:
        """Cut off every call waiting on the backend with ``fault`` (from any thread): they fail fast, instead
        of waiting minutes for an answer that will never come from a dead or restarted backbone."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._interrupt_now, fault)
        except RuntimeError:
            pass  # the loop closed meanwhile: nothing is in flight

    def _interrupt_now(self, fault: Fault) -> None:
        for waiter in list(self._interrupts):
            if not waiter.done():
                waiter.set_result(fault)

    def __enter__(self) -> Self:
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
            return _error(
                413,
                f"request of {declared} bytes exceeds the gateway limit of {self.max_request_bytes}",
                Fault.request_too_large,
            )
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > self.max_request_bytes:
                return _error(
                    413,
                    f"request exceeds the gateway limit of {self.max_request_bytes} bytes",
                    Fault.request_too_large,
                )
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return _error(400, f"request body is not JSON: {exc}", Fault.invalid_request)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error(400, "request needs a non-empty `messages` list", Fault.invalid_request)
        if body.get("stream"):
            return _error(
                400,
                "streaming is not supported through the gateway; send stream=false",
                Fault.invalid_request,
            )
        return body

    async def _chat(self, request: Request) -> JSONResponse:
        episode = self._identify(request)
        if episode is None:
            return _error(
                401, "missing or revoked gateway token (AGENTEVO_GATEWAY_TOKEN)", Fault.unauthorized
            )
        body = await self._read_body(request)
        if isinstance(body, JSONResponse):
            return body
        body["model"] = body.get("model") or self.backend.model
        if episode.seed is not None:
            body["seed"] = call_seed(episode.seed, body.get("seed"))
        record = CallRecord(
            run_id=self.run_id,
            agent_id=episode.agent_id,
            task_id=episode.task_id,
            episode_id=episode.episode_id,
            model=body["model"],
            request=body,
        )
        refusal = episode.usage.exceeded(episode.budget, "episode") or self.usage.exceeded(
            self.run_budget, "run"
        )
        if refusal:
            record.status, record.error = 429, refusal
            self.recorder.append(record)
            return _error(429, refusal, Fault.budget_exceeded)
        # Admission counts the call at once, so concurrent calls cannot all slip under the limit.
        for usage in (episode.usage, self.usage):
            usage.calls += 1
        self._in_flight += 1
        try:
            return self._answer(episode, record, *await self._forward(episode, record))
        finally:
            self._in_flight -= 1

    async def _forward(
        self, episode: EpisodeAccess, record: CallRecord
    ) -> tuple[dict[str, Any] | None, BackboneError | None]:
        """The backend's answer to the call, or the error it ended on once retries were used up."""

        def note_retry(error: BackboneError) -> None:
            record.retried.append(f"{error.kind.value}: {error}")
            for usage in (episode.usage, self.usage):
                usage.retries += 1

        started = time.perf_counter()
        try:
            response = await call_with_retries(
                self._try_once, record.request, self.retry, deadline=episode.deadline(), on_retry=note_retry
            )
            error = None
        except BackboneError as exc:
            response, error = None, exc
        except Exception as exc:  # noqa: BLE001 - a bug in a backend must still be answered and recorded
            response = None
            error = BackboneError(500, f"gateway error: {exc.__class__.__name__}: {exc}", Fault.gateway_error)
        record.latency_ms = (time.perf_counter() - started) * 1000
        return response, error

    async def _try_once(self, body: dict[str, Any]) -> dict[str, Any]:
        """One try at the backend, cut short when the watchdog finds the backbone dead or the gateway closes."""
        health = self.backend.health
        if health is not None:
            await self._until_ready(health)
        self._raise_if_closing()
        waiter: asyncio.Future[Fault] = asyncio.get_running_loop().create_future()
        self._interrupts.add(waiter)
        call = asyncio.ensure_future(self.backend.chat(body))
        racing: list[asyncio.Future[Any]] = [call, waiter]
        try:
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._interrupts.discard(waiter)
        if call.done():
            return call.result()
        call.cancel()  # cut off: by the gateway closing, or by the watchdog
        self._raise_if_closing()
        raise BackboneError(
            503, "the backbone died or hung while answering and is being restarted", Fault.backbone_restarted
        )

    async def _until_ready(self, health: BackboneHealth) -> None:
        """Wait (bounded) while the backbone is being restarted; fail at once if it will not come back."""
        deadline = time.monotonic() + self.retry.ready_timeout
        while not health.ready:
            if health.failure is not None:
                raise BackboneError(503, health.failure, Fault.backbone_down)
            self._raise_if_closing()
            if time.monotonic() >= deadline:
                raise BackboneError(
                    503,
                    f"the backbone was not back within {self.retry.ready_timeout:.0f} s of a restart "
                    "(gateway retry ready_timeout)",
                    Fault.backbone_down,
                )
            await asyncio.sleep(READY_POLL_S)

    def _raise_if_closing(self) -> None:
        if self._closing:
            raise BackboneError(
                503, "the gateway is closing: the run ended or was interrupted", Fault.gateway_closing
            )

    def _answer(
        self,
        episode: EpisodeAccess,
        record: CallRecord,
        response: dict[str, Any] | None,
        error: BackboneError | None,
    ) -> JSONResponse:
        """Charge, record (synchronously: a record can never wait on an executor that is shutting down), reply."""
        counts = (response or {}).get("usage") or {}
        record.prompt_tokens = int(counts.get("prompt_tokens") or 0)
        record.completion_tokens = int(counts.get("completion_tokens") or 0)
        infrastructure = error is not None and error.kind.infrastructure
        for usage in (episode.usage, self.usage):
            usage.prompt_tokens += record.prompt_tokens
            usage.completion_tokens += record.completion_tokens
            usage.errors += int(error is not None)
            usage.infrastructure_errors += int(infrastructure)
        if error is not None and infrastructure:
            episode.fault, episode.fault_detail = error.kind, str(error)
        record.response = response
        record.structured_failure = structured_failure(record.request, response)
        record.status = 200 if error is None else error.status
        record.error = None if error is None else str(error)
        self.recorder.append(record)
        if error is not None:
            return _error(error.status, str(error), error.kind)
        return JSONResponse(response)

    async def _memory_query(
        self, request: Request
    ) -> tuple[EpisodeAccess, MemoryReader, str, int] | JSONResponse:
        """The episode, the memory and ``{"query": str, "k": int}`` of a memory read, or the error to answer."""
        episode = self._identify(request)
        if episode is None:
            return _error(
                401, "missing or revoked gateway token (AGENTEVO_GATEWAY_TOKEN)", Fault.unauthorized
            )
        if self.memory is None:
            return _error(404, "memory is off for this run (memory.enabled)", Fault.invalid_request)
        try:
            body = json.loads(await request.body())
            query, k = body["query"], int(body.get("k", 3))
            if not isinstance(query, str) or not 1 <= k <= MAX_LESSONS:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return _error(
                400, f'memory reads need {{"query": str, "k": 1..{MAX_LESSONS}}}', Fault.invalid_request
            )
        return episode, self.memory, query[:4000], k

    async def _memory_search(self, request: Request) -> JSONResponse:
        """Lessons for ``{"query": str, "k": int}``; the episode's token is the only credential, nothing is written
        to memory (the ids served are noted per episode in ``lessons_served``, for the host to count outcomes on)."""
        asked = await self._memory_query(request)
        if isinstance(asked, JSONResponse):
            return asked
        episode, memory, query, k = asked
        lessons = await asyncio.to_thread(memory.read, query, k)
        served = self.lessons_served.setdefault(episode.episode_id or episode.token, [])
        served.extend(lesson["id"] for lesson in lessons if lesson["id"] not in served)
        return JSONResponse({"lessons": lessons})

    async def _memory_cases(self, request: Request) -> JSONResponse:
        """Solved cases of tasks like ``{"query": str, "k": int}``: never of the episode's own task, which the
        gateway knows from the token (the agent cannot ask for it)."""
        asked = await self._memory_query(request)
        if isinstance(asked, JSONResponse):
            return asked
        episode, memory, query, k = asked
        cases = await asyncio.to_thread(memory.cases, query, k, episode.task_id)
        return JSONResponse({"cases": cases})

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="agentevo gateway", docs_url=None, redoc_url=None)

        @app.get("/health")
        async def health() -> dict[str, Any]:
            return {"ok": True, "run_id": self.run_id}

        @app.get("/v1/models")
        async def models(request: Request) -> JSONResponse:
            if self._identify(request) is None:
                return _error(
                    401, "missing or revoked gateway token (AGENTEVO_GATEWAY_TOKEN)", Fault.unauthorized
                )
            try:
                names = await self.backend.models()
            except BackboneError as exc:
                return _error(exc.status, str(exc), exc.kind)
            return JSONResponse(
                {"object": "list", "data": [{"id": name, "object": "model"} for name in names]}
            )

        @app.post("/v1/memory/search")
        async def memory_search(request: Request) -> JSONResponse:
            return await self._memory_search(request)

        @app.post("/v1/memory/cases")
        async def memory_cases(request: Request) -> JSONResponse:
            return await self._memory_cases(request)

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> JSONResponse:
            return await self._chat(request)

        return app
