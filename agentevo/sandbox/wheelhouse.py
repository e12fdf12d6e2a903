"""The wheelhouse of an image: its pinned Python packages, downloaded on the host once and cached.

pip downloads from whatever index the host's pip is configured for (no index is named here), for
the interpreter in the image (bookworm's python3 is 3.11), not the host's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentevo.progress import Log
from agentevo.sandbox.errors import ImageBuildError
from agentevo.sandbox.recipes import Hasher
from agentevo.sandbox.rootfs import tail

WHEEL_PYTHON_VERSION = "3.11"
WHEEL_IMPLEMENTATION = "cp"
WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
_PIP_TIMEOUT_S = 30 * 60


def _digest(requirements: bytes) -> str:
    h = Hasher("agentevo-wheelhouse")
    h.add("requirements.txt", requirements)
    h.add("python", WHEEL_PYTHON_VERSION.encode())
    h.add("implementation", WHEEL_IMPLEMENTATION.encode())
    h.add("platforms", " ".join(WHEEL_PLATFORMS).encode())
    return h.hexdigest()[:16]


def _failed_requirement(output: str) -> str | None:
    for pattern in (
        r"No matching distribution found for (\S+)",
        r"Could not find a version that satisfies the requirement (\S+)",
        r"ERROR: .*?\b(?:for|requirement) (\S+==\S+)",
    ):
        match = re.search(pattern, output)
        if match:
            return match.group(1)
    return None


def _download_command(requirements: Path, dest: Path) -> list[str]:
    cmd = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
        "--only-binary=:all:", "--no-deps", "--python-version", WHEEL_PYTHON_VERSION,
        "--implementation", WHEEL_IMPLEMENTATION,
    ]  # fmt: skip
    for platform in WHEEL_PLATFORMS:
        cmd += ["--platform", platform]
    return cmd + ["-r", str(requirements), "-d", str(dest)]


def ensure_wheelhouse(requirements: Path, log: Log, cache: Path) -> Path:
    """The wheelhouse for ``requirements`` in ``cache`` (the configured cache_dir), downloaded (with pip on the
    host) if missing."""
    content = requirements.read_bytes()
    parent = cache / "wheelhouse"
    target = parent / _digest(content)
    if target.is_dir():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    log(f"[agentevo] downloading wheels for {requirements} into {target}")
    t0 = time.monotonic()
    # Filled beside the target and renamed into place: a download that dies halfway never
    # looks like a complete wheelhouse.
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=parent))
    try:
        try:
            proc = subprocess.run(
                _download_command(requirements, partial),
                check=False,
                capture_output=True,
                text=True,
                timeout=_PIP_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise ImageBuildError(
                f"pip download for {requirements} did not finish within {_PIP_TIMEOUT_S} s"
            ) from None
        if proc.returncode != 0:
            output = proc.stdout + proc.stderr
            failed = _failed_requirement(output)
            what = f"requirement {failed}" if failed else f"a requirement of {requirements}"
            raise ImageBuildError(
                f"pip could not download {what} as a CPython {WHEEL_PYTHON_VERSION} manylinux x86_64 wheel "
                f"(exit {proc.returncode}); fix the pin in {requirements}:\n" + tail(output)
            )
        shutil.copyfile(requirements, partial / "requirements.txt")
        try:
            os.rename(partial, target)
        except OSError:
            if not target.is_dir():  # another process won the race with an identical wheelhouse
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log(f"[agentevo] wheel download took {time.monotonic() - t0:.1f} s")
    return target
