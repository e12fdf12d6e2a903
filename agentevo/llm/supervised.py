"""A local OpenAI-compatible inference server that agentevo starts, health-checks, reuses and stops.

vLLM and llama.cpp's ``llama-server`` are both separate processes answering HTTP on one host:port. What they
share lives here, once: one starter per port (a file lock), reuse of a healthy server that already serves the
wanted model, spawning in its own process group with a log file and tethered to its owner
(:class:`agentevo.supervision.ServerProcess`, as the memory service's Chroma server is), waiting for ``/health``,
a stop that ends the whole group, and the small HTTP API (health, models, a LangChain chat model). A subclass says how to prepare
(install, convert), which command line and environment to run, and which error type to raise.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import httpx
from langchain_openai import ChatOpenAI

from agentevo.files import acquire_lock
from agentevo.llm.fenced_tools import normalise_tool_choice
from agentevo.llm.schema_tools import SchemaToolModel, with_schema_tools
from agentevo.progress import Log, progress
from agentevo.supervision import LOG_TAIL_LINES, ServerProcess


class ServerError(RuntimeError):
    """A supervised server could not be installed, started, reached or asked to do something."""


def run_installer(cmd: list[str], log: Log, error: type[ServerError], what: str) -> None:
    """Run an idempotent install script (``scripts/ensure-*.sh``), passing its progress lines to ``log``.

    Silent and instant once installed; on failure raises ``error`` with the script's last lines.
    """
    last: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    with subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            last.append(line.rstrip())
            log(line.rstrip())
    if proc.returncode != 0:
        raise error(f"installing {what} failed (exit {proc.returncode}):\n" + "\n".join(last))


def read_adapter_config(folder: Path, error: type[ServerError]) -> dict[str, Any]:
    """A peft LoRA folder's ``adapter_config.json``; ``error`` names the folder when it is not one."""
    cfg_file = Path(folder) / "adapter_config.json"
    if not cfg_file.is_file():
        raise error(f"{folder} is not a LoRA adapter folder (no adapter_config.json)")
    try:
        data = json.loads(cfg_file.read_text())
    except ValueError:
        raise error(f"{cfg_file} is not valid adapter config JSON") from None
    if not isinstance(data, dict):
        raise error(f"{cfg_file} is not valid adapter config JSON")
    return data


class ServerSettings(Protocol):
    """What supervision reads of a server's settings; each engine's config section has more for its own use."""

    host: str
    port: int
    startup_timeout: float


SettingsT = TypeVar("SettingsT", bound=ServerSettings)


class AdapterServer(Protocol):
    """What adapter serving (``agentevo.serving``, ``agentevo.train``, ``agentevo.compare``) needs of a server:
    LoRA adapters loaded and unloaded by name, and asked as that name. Every :class:`SupervisedServer` is one."""

    served_name: str

    @property
    def adapters(self) -> dict[str, Path]:
        """Adapters loaded through this object: name -> peft folder."""

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a peft LoRA folder under ``name``; every adapter version needs a new name."""

    def unload_adapter(self, name: str) -> None:
        """Drop a loaded adapter."""

    def chat_model(self, model_name: str | None = None, **kw: Any) -> ServedChatModel:
        """A chat model answering as ``model_name`` (the base or a loaded adapter)."""


class SupervisedServer(Generic[SettingsT]):
    """One server process on ``config.host:config.port`` serving ``served_name``: spawned, or found running.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Only a server this object spawned is
    stopped by it; one found running is reused and left alone. An :class:`AdapterServer`: each engine says how
    it loads and unloads an adapter.
    """

    engine: ClassVar[str]  # in messages: "vLLM", "llama.cpp"
    slug: ClassVar[str]  # in file names (logs, locks): "vllm", "llamacpp"
    error: ClassVar[type[ServerError]] = ServerError

    def __init__(self, config: SettingsT, served_name: str, cache_dir: Path, *, log: Log = progress):
        self.config = config
        self.served_name = served_name
        self.cache_dir = Path(cache_dir)
        self.log = log
        self.log_path = self.cache_dir / "logs" / f"{self.slug}-{config.port}.log"
        self._proc: ServerProcess | None = None
        self._owned = False
        self._started = False
        self.startup_seconds: float | None = None  # spawn to healthy, when this object spawned the server
        self._adapters: dict[str, Path] = {}  # name -> peft folder, loaded now through this object
        self._used_names: dict[str, Path] = {}  # every name ever loaded through this object

    # ------------------------------------------------------------------ what a subclass provides

    def _prepare(self) -> None:
        """Check inputs and install or convert what the command needs (before spawning; may take minutes)."""

    def _cmd(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _describe(self) -> str:
        """What is being started, for the log line."""
        return self.engine

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a peft LoRA adapter folder under ``name`` (a no-op if that exact pair is already loaded)."""
        raise NotImplementedError

    def unload_adapter(self, name: str) -> None:
        """Drop a loaded adapter; its name stays taken by its folder."""
        raise NotImplementedError

    @property
    def adapters(self) -> dict[str, Path]:
        """Adapters loaded through this object: name -> folder."""
        return dict(self._adapters)

    # ------------------------------------------------------------------ addresses

    @property
    def root_url(self) -> str:
        host = self._connect_host()
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self.config.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``http://host:port/v1``), as OpenAI clients want it."""
        return f"{self.root_url}/v1"

    @property
    def owned(self) -> bool:
        """True when this object spawned the server (and :meth:`stop` will end it)."""
        return self._owned

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _connect_host(self) -> str:
        return "127.0.0.1" if self.config.host in ("0.0.0.0", "") else self.config.host

    def _port_setting(self) -> str:
        return f"llm.{self.slug}.port"

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float | None = None) -> str:
        """Reuse a healthy server on host:port that serves ``served_name``, or spawn one and wait for it.

        Returns the OpenAI base URL. Raises :attr:`error` when the port is taken by something else, when the
        server process dies while starting (with the last lines of its log), or on timeout.
        """
        if self._started:
            return self.base_url
        timeout = self.config.startup_timeout if timeout is None else timeout
        # One starter per port on this machine: a second process waits here, then finds the first's server.
        lock_file = self.cache_dir / "locks" / f"{self.slug}-{self.config.port}.lock"
        lock = acquire_lock(lock_file, timeout=timeout, error=self.error)
        try:
            if self._reuse_running():
                self.log(f"reusing the {self.engine} server at {self.base_url} (serving {self.served_name})")
            else:
                self._prepare()
                self._launch(timeout)
            self._started = True
            return self.base_url
        finally:
            lock.release()

    def stop(self, timeout: float = 30.0) -> None:
        """End the server if this object spawned it (SIGTERM to its process group, SIGKILL after ``timeout``)."""
        self._started = False
        if self._owned:
            self._terminate(timeout)

    def restart(self, timeout: float | None = None) -> None:
        """Stop the server this object owns and start it again with the current command line."""
        if not self._owned:
            raise self.error(
                f"the {self.engine} server at {self.root_url} was started by another process, so this one "
                f"cannot restart it; stop that process or give {self._port_setting()} another port"
            )
        self._terminate()
        self._launch(self.config.startup_timeout if timeout is None else timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _launch(self, timeout: float) -> None:
        t0 = time.monotonic()
        self.log(f"starting {self._describe()} on {self.root_url}; log: {self.log_path}")
        self._spawn()
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self._terminate()
            raise
        self.startup_seconds = time.monotonic() - t0
        self.log(f"{self.engine} ready at {self.base_url} in {self.startup_seconds:.1f} s")

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = self._cmd()
        with self.log_path.open("wb") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            # not the caller's cwd: `python -m` puts it on sys.path
            self._proc = ServerProcess(cmd, log=log, env=self._env(), cwd=self.log_path.parent)
        self._owned = True

    def _wait_healthy(self, timeout: float) -> None:
        assert self._proc is not None
        with httpx.Client(timeout=2.0) as client:
            self._proc.wait_ready(
                lambda: self._serving(client),
                timeout,
                what=self.engine,
                log_path=self.log_path,
                error=self.error,
            )

    def _serving(self, client: httpx.Client) -> bool:
        """Healthy, and serving ``served_name``."""
        try:
            healthy = client.get(f"{self.root_url}/health").status_code == 200
            return healthy and self.served_name in self._served_ids(client)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return False

    def _served_ids(self, client: httpx.Client) -> list[str]:
        return [m["id"] for m in client.get(f"{self.base_url}/models").json()["data"]]

    def _terminate(self, timeout: float = 30.0) -> None:
        proc, self._proc = self._proc, None
        self._owned = False
        if proc is not None:
            proc.stop(timeout)

    def _reuse_running(self) -> bool:
        """True when a healthy server on host:port serves ``served_name``; raises if the port is taken otherwise."""
        host = self._connect_host()
        try:
            with socket.create_connection((host, self.config.port), timeout=2.0):
                pass
        except OSError:
            return False  # nothing listens there
        where = f"{host}:{self.config.port}"
        try:
            with httpx.Client(timeout=5.0) as client:
                health = client.get(f"{self.root_url}/health")
                models = client.get(f"{self.base_url}/models")
            ids = [m["id"] for m in models.json()["data"]] if models.status_code == 200 else []
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise self.error(
                f"port {where} is in use by something that does not answer as a {self.engine} server "
                f"({type(exc).__name__}: {exc}); pick another {self._port_setting()}"
            ) from None
        if health.status_code != 200 or not ids:
            raise self.error(
                f"port {where} is in use by something that is not a healthy {self.engine} server "
                f"(GET /health -> {health.status_code}, GET /v1/models -> {models.status_code}); "
                f"pick another {self._port_setting()}"
            )
        if self.served_name not in ids:
            raise self.error(
                f"a {self.engine} server on {where} serves {ids}, not {self.served_name!r}; stop it or pick "
                f"another {self._port_setting()}"
            )
        return True

    # ------------------------------------------------------------------ API

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        url = f"{self.root_url}{path}"
        try:
            return httpx.request(method, url, timeout=kw.pop("timeout", 60.0), **kw)
        except httpx.ConnectError:
            raise self.error(
                f"no {self.engine} server answers at {self.root_url} (connection refused)"
            ) from None
        except httpx.TimeoutException:
            raise self.error(
                f"the {self.engine} server at {self.root_url} did not answer {method} {path} in time"
            ) from None
        except httpx.HTTPError as exc:
            raise self.error(f"{method} {url} failed: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def _message(resp: httpx.Response) -> str:
        try:
            body = resp.json()
        except ValueError:
            return resp.text.strip()
        if isinstance(body, dict):
            err = body.get("error", body)
            if isinstance(err, dict):
                return str(err.get("message") or err.get("detail") or err)
        return str(body)

    def health(self) -> bool:
        try:
            return self._request("GET", "/health", timeout=5.0).status_code == 200
        except ServerError:
            return False

    def models(self) -> list[dict[str, Any]]:
        """``/v1/models`` entries (each has an ``id``)."""
        resp = self._request("GET", "/v1/models", timeout=10.0)
        if resp.status_code != 200:
            raise self.error(f"GET /v1/models -> {resp.status_code}: {self._message(resp)}")
        return list(resp.json()["data"])

    def list_models(self) -> list[str]:
        """Names a request may send as ``model``: the base model and every loaded adapter."""
        return [m["id"] for m in self.models()]

    def request_fields(self, model: str) -> dict[str, Any]:
        """Extra body fields a request to ``model`` needs (none: the server selects adapters by name)."""
        return {}

    def chat_model(self, model_name: str | None = None, **kw: Any) -> ServedChatModel:
        """A LangChain chat model on this server; ``model_name`` selects an adapter (default: the base)."""
        kw.setdefault("temperature", 0.0)
        return ServedChatModel(
            base_url=self.base_url, api_key="EMPTY", model=model_name or self.served_name, server=self, **kw
        )


def served_by(chat_model: object) -> SupervisedServer[Any] | None:
    """The server agentevo supervises behind ``chat_model`` (llama.cpp, vLLM), or None (in-process, remote)."""
    return chat_model.server if isinstance(chat_model, ServedChatModel) else None


class ServedChatModel(ChatOpenAI):
    """A chat model on a server agentevo supervises (``server``: vLLM or llama.cpp), base model or adapter.

    Served without a tool-call parser: tools travel as JSON held to the tools' schemas (llama-server and vLLM
    both constrain decoding to a ``response_format`` JSON schema), like the local model's. The ``model``
    names the base model or a loaded LoRA adapter; :meth:`for_model` switches it, and every request carries the
    fields the server needs to apply that choice (llama.cpp's ``lora`` scales).
    """

    native_tool_calling: ClassVar[bool] = False
    structured_output: ClassVar[bool] = True  # honours response_format (a JSON schema)
    server: SupervisedServer[Any]

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        **kwargs: Any,
    ) -> SchemaToolModel:
        """Tools as a JSON schema the server holds replies to (any of LangChain's ``tool_choice`` forms)."""
        return with_schema_tools(self, tools, tool_choice=normalise_tool_choice(tool_choice))

    def for_model(self, name: str) -> ServedChatModel:
        """This chat model, answering as ``name`` (the base or a loaded adapter); LookupError for others."""
        served = self.server.list_models()
        if name not in served:
            raise LookupError(f"model {name!r} is not served here; served: {', '.join(served)}")
        return self.model_copy(update={"model_name": name})

    def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        fields = self.server.request_fields(payload["model"])
        if fields:
            payload["extra_body"] = {**(payload.get("extra_body") or {}), **fields}
        return payload
