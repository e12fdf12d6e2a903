"""A derived sandbox image: a standard image plus extra Python packages (what an agent folder declares).

The requirements become a wheelhouse on the host (wheels only, so no package's build code ever runs here), and the image is built from it with ``docker build --network
none``, like the standard images. Its tag hashes the base image's tag, the requirements and this recipe, so an
unchanged agent reuses its image and an edit to the list builds a new one.
"""

from __future__ import annotations

import io
from pathlib import Path

import docker
import docker.errors

from agentevo.files import file_lock, write_atomic
from agentevo.progress import Log, progress
from agentevo.sandbox.config import SandboxConfig
from agentevo.sandbox.docker_host import docker_client, engine_errors
from agentevo.sandbox.errors import ImageBuildError
from agentevo.sandbox.images import resolve_image, tag_exists
from agentevo.sandbox.provider import FileContent
from agentevo.sandbox.recipes import TAG_HEX, Hasher, recipe_dir
from agentevo.sandbox.sandbox import files_tar
from agentevo.sandbox.wheelhouse import ensure_wheelhouse

REPOSITORY = "agentevo-agent"
# Installed in a throwaway stage so the wheels never stay in the image's layers; pip runs from its own wheel
# (the standard image's venv has no pip).
DOCKERFILE = """\
ARG BASE
FROM ${BASE} AS deps
USER 0:0
COPY wheels /tmp/wheels
RUN P=$(ls /tmp/wheels/pip-*.whl) \\
 && /opt/venv/bin/python "$P/pip" install --no-index --no-cache-dir --disable-pip-version-check \\
      --no-warn-script-location --find-links /tmp/wheels -r /tmp/wheels/agent-requirements.txt
FROM ${BASE}
COPY --from=deps /opt/venv /opt/venv
"""
BUILD_TIMEOUT_S = 30 * 60


def derived_tag(base: str, requirements: bytes) -> str:
    """``agentevo-agent:<hash>`` for ``base`` plus ``requirements``."""
    h = Hasher(REPOSITORY)
    h.add("base", base.encode())
    h.add("requirements", requirements)
    h.add("dockerfile", DOCKERFILE.encode())
    return f"{REPOSITORY}:{h.hexdigest()[:TAG_HEX]}"


def ensure_agent_image(
    client: docker.DockerClient, base: str, requirements: bytes, cache: Path, log: Log
) -> str:
    """The derived image's tag, built first if the engine does not have it (one build at a time per tag)."""
    tag = derived_tag(base, requirements)
    with file_lock(cache / f"build-{tag.replace(':', '-')}.lock"):
        if not tag_exists(client, tag):
            _build(client, base, tag, _wheelhouse(base, requirements, cache, log), log)
    return tag


def _wheelhouse(base: str, requirements: bytes, cache: Path, log: Log) -> Path:
    """The wheels of the agent's packages and of the pip that installs them (the base image's own pin)."""
    pip_pin = _pip_pin()
    listing = cache / "agent-requirements" / f"{derived_tag(base, requirements).split(':')[1]}.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(listing, requirements.decode() + f"\n{pip_pin}\n")
    return ensure_wheelhouse(listing, log, cache)


def _pip_pin() -> str:
    pins = (recipe_dir() / "python" / "requirements.txt").read_text().splitlines()
    return next(line for line in pins if line.startswith("pip=="))


def _build(client: docker.DockerClient, base: str, tag: str, wheels: Path, log: Log) -> None:
    log(f"[agentevo] docker build {tag}: {base} plus the agent's requirements (network none)")
    try:
        client.images.build(
            fileobj=_context(wheels),
            custom_context=True,
            tag=tag,
            network_mode="none",
            rm=True,
            forcerm=True,
            pull=False,
            buildargs={"BASE": base},
            labels={"agentevo": "1", "agentevo.image": "agent"},
            timeout=BUILD_TIMEOUT_S,
        )
    except docker.errors.BuildError as exc:
        output = "".join(str(entry.get("stream", "")) for entry in exc.build_log)
        raise ImageBuildError(
            f"the agent's requirements did not install into {base}: {exc.msg}; pin every package it needs, "
            f"dependencies included, that the image lacks\n{output[-3000:]}"
        ) from None


def _context(wheels: Path) -> io.BytesIO:
    """The build context as a tar stream: the Dockerfile and the wheelhouse (its listing renamed)."""
    files: dict[str, FileContent] = {"Dockerfile": DOCKERFILE}
    for wheel in wheels.iterdir():
        name = "agent-requirements.txt" if wheel.name == "requirements.txt" else wheel.name
        files[f"wheels/{name}"] = wheel.read_bytes()
    return io.BytesIO(files_tar(files))


def with_requirements(
    config: SandboxConfig, requirements: bytes, cache: Path, log: Log = progress
) -> SandboxConfig:
    """``config`` on the image derived from its own with ``requirements`` installed (built first if missing)."""
    if config.image.startswith(f"{REPOSITORY}:"):  # derived already
        return config
    with engine_errors("build the agent's image"):
        client = docker_client()
        base = resolve_image(config.image, client)
        tag = ensure_agent_image(client, base, requirements, cache, log)
    return config.model_copy(update={"image": tag})
