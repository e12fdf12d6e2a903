"""Builds the sandbox images offline and names them by the hash of their recipe.

* the rootfs (``rootfs.py``): ``agentevo-base:<hash>``, a Debian rootfs made with ``debootstrap`` from
  the host's apt mirror; an image whose recipe lists Debian packages of its own (``packages.txt``, e.g.
  the browser of ``web``) gets its own rootfs ``agentevo-base-<name>:<hash>`` with them installed;
* the wheelhouse (``wheelhouse.py``): the image's pinned Python packages, downloaded once and cached;
* the image (here): ``agentevo-<name>:<hash>``, built on its rootfs with ``docker build --network none``.

Tags are content hashes (``recipes.py``). The mirror and the tags of the checkout's recipes are
resolved once per process: starting a sandbox costs one engine call, not a re-read of apt sources
and a re-hash of the recipe.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import docker
import docker.errors

from agentevo.files import default_cache_dir, file_lock
from agentevo.progress import Log
from agentevo.sandbox import recipes as _recipes
from agentevo.sandbox.docker_host import docker_client
from agentevo.sandbox.errors import ImageBuildError, ImageMissing
from agentevo.sandbox.recipes import (
    BASE_NAME,
    image_files,
    image_names,
    own_packages,
    read_packages,
    recipe_dir,
)
from agentevo.sandbox.rootfs import ERROR_TAIL_LINES, build_rootfs, debian_mirror, scratch_dir
from agentevo.sandbox.wheelhouse import ensure_wheelhouse

__all__ = [
    "ImageBuildError",
    "base_tag",
    "debian_mirror",
    "ensure_image",
    "image_exists",
    "image_names",
    "image_tag",
    "recipe_dir",
    "resolve_image",
]

LABELS = {"agentevo": "1"}
_BUILD_TIMEOUT_S = 30 * 60


@functools.cache
def host_mirror() -> str:
    """The host's Debian mirror, read from its apt sources once per process."""
    return debian_mirror()


def base_tag(recipes: Path | None = None, *, mirror: str | None = None) -> str:
    """The tag of the base image, ``agentevo-base:<12 hex>``, for the current base recipe."""
    return _recipes.base_tag(recipes if recipes is not None else recipe_dir(), mirror or host_mirror())


def image_tag(name: str, recipes: Path | None = None) -> str:
    """The tag ``agentevo-<name>:<12 hex>`` that the image ``name`` has when built from the current recipe."""
    return _recipes.image_tag(name, recipes if recipes is not None else recipe_dir(), host_mirror())


@functools.cache
def _checkout_tag(name: str) -> str:
    return image_tag(name)


def tag_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def image_exists(client: docker.DockerClient, name: str) -> bool:
    """Whether the image ``name`` is built for the current recipe (its content-hash tag exists)."""
    return tag_exists(client, image_tag(name))


def _build_lock(cache: Path, name: str, log: Log) -> contextlib.AbstractContextManager[None]:
    """Serialize builds of one image across processes; the kernel drops the lock if we die."""
    return file_lock(
        cache / f"build-{name}.lock",
        waiting=lambda: log(f"[agentevo] waiting for another process that is building {name}"),
    )


def _ensure_rootfs(
    client: docker.DockerClient,
    name: str,
    recipes: Path,
    mirror: str,
    force: bool,
    log: Log,
    cache: Path,
) -> str:
    """The rootfs image ``name`` builds on, built first when its tag is missing."""
    tag = _recipes.rootfs_tag(recipes, name, mirror)
    extra = own_packages(recipes, name)
    label = BASE_NAME if extra is None else f"{BASE_NAME}-{name}"
    with _build_lock(cache, label, log):
        if force or not tag_exists(client, tag):
            base_packages = read_packages(recipes / BASE_NAME / _recipes.PACKAGES_FILE)
            build_rootfs(tag, label, base_packages, read_packages(extra) if extra else [], mirror, log)
            if not tag_exists(client, tag):
                raise ImageBuildError(
                    f"`docker import` reported success but {tag} is not in the engine the Docker SDK talks to; "
                    "check that DOCKER_HOST points the docker CLI and the SDK at the same engine"
                )
    return tag


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _build_image(
    client: docker.DockerClient,
    name: str,
    tag: str,
    base: str,
    recipes: Path,
    log: Log,
    cache: Path,
) -> None:
    folder = recipes / name
    requirements = folder / "requirements.txt"
    wheelhouse = ensure_wheelhouse(requirements, log, cache) if requirements.is_file() else None
    with scratch_dir(f"agentevo-{name}-ctx-") as ctx:
        for path in image_files(folder):
            dst = ctx / path.relative_to(folder)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dst)
        wheels = ctx / "wheels"
        wheels.mkdir()
        if wheelhouse is not None:
            for whl in wheelhouse.glob("*.whl"):
                _link_or_copy(whl, wheels / whl.name)
            shutil.copyfile(requirements, wheels / "requirements.txt")
        # COPY keeps the context file's mode; the supervisor must be readable by the sandbox user.
        supervisor = ctx / _recipes.SUPERVISOR_DIR
        supervisor.mkdir()
        for path in _recipes.supervisor_files():
            shutil.copyfile(path, supervisor / path.name)
            os.chmod(supervisor / path.name, 0o644)

        log(f"[agentevo] docker build {tag} (network none)")
        t0 = time.monotonic()
        try:
            _, build_log = client.images.build(
                path=str(ctx),
                tag=tag,
                network_mode="none",
                rm=True,
                forcerm=True,
                pull=False,
                buildargs={"BASE": base},
                labels={**LABELS, "agentevo.image": name},
                timeout=_BUILD_TIMEOUT_S,
            )
        except docker.errors.BuildError as exc:
            lines = _log_lines(exc.build_log)
            for line in lines:
                log(line)
            raise ImageBuildError(
                f"docker build of {tag} failed: {exc.msg}\n" + "\n".join(lines[-ERROR_TAIL_LINES:])
            ) from None
        except docker.errors.APIError as exc:
            raise ImageBuildError(f"docker build of {tag} failed: {exc.explanation or exc}") from None
        log(f"[agentevo] docker build took {time.monotonic() - t0:.1f} s")
    _remove_stage_images(client, _log_lines(build_log))


def _log_lines(chunks: Iterable[dict]) -> list[str]:
    text = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in chunks)
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _remove_stage_images(client: docker.DockerClient, lines: list[str]) -> None:
    """Delete the untagged images the classic builder keeps for the earlier stages of a build.

    They hold the wheelhouse and a second copy of the venv, and nothing uses them once the final
    image exists. Each one is the last image id printed before the next stage's FROM step.
    """
    last_id: str | None = None
    seen_from = False
    stage_ids = []
    for line in lines:
        if re.match(r"Step \d+/\d+ : FROM ", line):
            if seen_from and last_id:
                stage_ids.append(last_id)
            seen_from = True
        match = re.match(r"\s*---> ([0-9a-f]{12})\s*$", line)
        if match:
            last_id = match.group(1)
    for image_id in stage_ids:
        # Conflicts (the id is also a parent of something else) just leave the image in place.
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(image_id)


def ensure_image(
    name: str = "python",
    *,
    client: docker.DockerClient | None = None,
    force: bool = False,
    log: Log = print,
    cache_dir: Path | None = None,
) -> str:
    """Build the sandbox image ``name`` if its recipe has no image yet, and return its tag.

    Its rootfs is built first when its own tag is missing. With ``force`` both are rebuilt.
    ``cache_dir`` (the configured ``cache_dir``; default :func:`default_cache_dir`) keeps the
    wheelhouses and the build locks.
    When the image exists this only hashes the recipe and asks the engine, well under a second.
    Raises ImageBuildError with the cause and the fix when something is missing or a step fails.
    """
    recipes = recipe_dir()
    tag = image_tag(name, recipes)
    client = client if client is not None else docker_client()
    if not force and tag_exists(client, tag):
        return tag
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    with _build_lock(cache, name, log):
        # Another process may have finished the same build while we waited for the lock.
        if not force and tag_exists(client, tag):
            return tag
        base = _ensure_rootfs(client, name, recipes, host_mirror(), force, log, cache)
        _build_image(client, name, tag, base, recipes, log, cache)
    return tag


def resolve_image(reference: str, client: docker.DockerClient) -> str:
    """Map a recipe name (or a full image reference) to the tag to run, checking that it is built.

    A recipe's tag is computed once per process (the checkout's recipes do not change under a run).
    """
    tag = _checkout_tag(reference) if reference in image_names() else reference
    if not tag_exists(client, tag):
        raise ImageMissing(f"sandbox image {tag} is not built; run `agentevo sandbox build` (or `make test`)")
    return tag
