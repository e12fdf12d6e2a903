"""Builds the sandbox images offline and names them by the hash of their recipe.

No image registry is reachable from the machines this runs on, so nothing is pulled:

* the base image ``agentevo-base:<hash>`` is a Debian rootfs made with ``debootstrap`` from the
  apt mirror the host already uses, imported with ``docker import``;
* each image under ``sandboxes/<name>/`` (``agentevo-<name>:<hash>``) is built on top of it with
  ``docker build --network none`` from a wheelhouse that is downloaded on the host once and cached.

A tag is a content hash of everything that goes into the image, so "is the image up to date?" is a
single ``images.get`` and a recipe change can never be served a stale image.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import docker
import docker.errors

from agentevo.sandbox.docker_host import docker_client
from agentevo.sandbox.errors import ImageMissing, SandboxError

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

DEBIAN_SUITE = "bookworm"
DEBOOTSTRAP_VARIANT = "minbase"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_NAME = "base"

# The wheelhouse must match the interpreter in the image (bookworm's python3 is 3.11), not the
# host's: pip is told the target explicitly.
WHEEL_PYTHON_VERSION = "3.11"
WHEEL_IMPLEMENTATION = "cp"
WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")

# Bump when the way images are built changes in a way the recipe files do not show, so that
# every tag moves and old images are not mistaken for new ones.
BUILDER_VERSION = "1"

LABELS = {"agentevo": "1"}
_TAG_HEX = 12
_ERROR_TAIL_LINES = 20
_DEBOOTSTRAP_TIMEOUT_S = 30 * 60
_PIP_TIMEOUT_S = 30 * 60
_IMPORT_TIMEOUT_S = 10 * 60
_BUILD_TIMEOUT_S = 30 * 60


class ImageBuildError(SandboxError):
    """A sandbox image could not be built or checked; the message says what to do about it."""


def recipe_dir() -> Path:
    """The ``sandboxes/`` folder of this checkout.

    Found next to the package rather than through package data, so that a source checkout and an
    editable install (``pip install -e .``) both read the recipes a developer is editing.
    """
    return Path(__file__).resolve().parents[2] / "sandboxes"


def _sandboxd_path() -> Path:
    return Path(__file__).resolve().parent / "sandboxd.py"


def image_names(recipes: Path | None = None) -> list[str]:
    """Names of the buildable images: the folders of ``recipes`` that hold a Dockerfile, sorted."""
    root = recipes if recipes is not None else recipe_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "Dockerfile").is_file())


def _read_packages(recipes: Path) -> list[str]:
    path = recipes / BASE_NAME / "packages.txt"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ImageBuildError(f"cannot read the base package list {path}: {exc}") from None
    packages = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [p for p in packages if p]


def _parse_deb822_mirror(text: str, suite: str) -> str | None:
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in paragraph.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:  # deb822 continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split():
            uris = fields.get("uris", "").split()
            if uris:
                return uris[0]
    return None


def _parse_one_line_mirror(text: str, suite: str) -> str | None:
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # options such as [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2 and words[1] == suite:
            return words[0]
    return None


def debian_mirror(apt_dir: Path = Path("/etc/apt"), suite: str = DEBIAN_SUITE) -> str:
    """The Debian mirror the host's apt uses for ``suite``, else ``DEFAULT_MIRROR``.

    debootstrap must use the host's mirror: on these machines it is the one that is reachable.
    """
    candidates = sorted((apt_dir / "sources.list.d").glob("*.sources"))
    candidates += [apt_dir / "sources.list"] + sorted((apt_dir / "sources.list.d").glob("*.list"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        parse = _parse_deb822_mirror if path.suffix == ".sources" else _parse_one_line_mirror
        uri = parse(text, suite)
        if uri:
            return uri.rstrip("/")
    return DEFAULT_MIRROR


class _Hasher:
    """sha256 over named parts, each framed by name and length so that no two inputs collide."""

    def __init__(self, kind: str) -> None:
        self._h = hashlib.sha256()
        self.add("kind", kind.encode())

    def add(self, name: str, data: bytes) -> None:
        self._h.update(f"{name}\0{len(data)}\0".encode())
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _base_digest(recipes: Path, mirror: str) -> str:
    h = _Hasher("agentevo-base")
    h.add("builder", BUILDER_VERSION.encode())
    h.add("suite", DEBIAN_SUITE.encode())
    h.add("variant", DEBOOTSTRAP_VARIANT.encode())
    h.add("mirror", mirror.encode())
    try:
        h.add("packages.txt", (recipes / BASE_NAME / "packages.txt").read_bytes())
    except OSError as exc:
        raise ImageBuildError(f"cannot read the base recipe: {exc}") from None
    return h.hexdigest()


def base_tag(recipes: Path | None = None, *, mirror: str | None = None) -> str:
    """The tag of the base image, ``agentevo-base:<12 hex>``, for the current base recipe."""
    root = recipes if recipes is not None else recipe_dir()
    return f"agentevo-{BASE_NAME}:{_base_digest(root, mirror or debian_mirror())[:_TAG_HEX]}"


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def image_tag(name: str, recipes: Path | None = None) -> str:
    """The tag ``agentevo-<name>:<12 hex>`` that the image ``name`` has when built from the current recipe.

    The hash covers the base recipe (packages, suite, mirror), every file of ``sandboxes/<name>/``
    and ``sandboxd.py``, which is copied into the image.
    """
    root = recipes if recipes is not None else recipe_dir()
    folder = root / name
    if name == BASE_NAME or not (folder / "Dockerfile").is_file():
        raise ImageBuildError(
            f"no sandbox image recipe named {name!r} in {root} "
            f"(known: {', '.join(image_names(root)) or 'none'})"
        )
    h = _Hasher("agentevo-image")
    h.add("builder", BUILDER_VERSION.encode())
    h.add("base", base_tag(root).encode())
    for path in _image_files(folder):
        h.add("recipe/" + path.relative_to(folder).as_posix(), path.read_bytes())
    sandboxd = _sandboxd_path()
    try:
        h.add("sandboxd.py", sandboxd.read_bytes())
    except OSError as exc:
        raise ImageBuildError(f"cannot read {sandboxd}, which goes into every image: {exc}") from None
    return f"agentevo-{name}:{h.hexdigest()[:_TAG_HEX]}"


def _tag_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def image_exists(client: docker.DockerClient, name: str) -> bool:
    """Whether the image ``name`` is built for the current recipe (its content-hash tag exists)."""
    return _tag_exists(client, image_tag(name))


def _cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "agentevo"


@contextlib.contextmanager
def _file_lock(name: str, log: Callable[[str], None]) -> Iterator[None]:
    """Serialize builds of one image across processes; the kernel drops the lock if we die."""
    cache = _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"build-{name}.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            log(f"[agentevo] waiting for another process that is building {name}")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tail(text: str, lines: int = _ERROR_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _debootstrap_exe() -> str:
    # debootstrap lives in /usr/sbin, which is not on a non-root user's PATH.
    exe = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if not exe:
        raise ImageBuildError(
            "debootstrap is not installed; it builds the sandbox base image. "
            "Run `bash scripts/ensure-system.sh` (or `apt-get install debootstrap`)"
        )
    if os.geteuid() != 0:
        raise ImageBuildError("building the sandbox base image needs root (debootstrap creates a rootfs)")
    return exe


def _unmount_below(root: Path) -> None:
    """Unmount whatever debootstrap left mounted inside ``root`` (it mounts /proc and /sys).

    An interrupted debootstrap can leave those mounts behind, and deleting the rootfs would then
    walk into the host's /proc and /sys.
    """
    prefix = str(root.resolve()) + "/"
    try:
        with open("/proc/self/mounts") as fh:
            points = [line.split()[1] for line in fh]
    except OSError:
        return
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@contextlib.contextmanager
def _scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory under /var/tmp (rootfs and contexts are too big for a tmpfs /tmp)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    try:
        yield path
    finally:
        _unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)


def _build_base(
    client: docker.DockerClient, tag: str, recipes: Path, mirror: str, log: Callable[[str], None]
) -> None:
    exe = _debootstrap_exe()
    packages = _read_packages(recipes)
    with _scratch_dir("agentevo-base-") as scratch:
        rootfs = scratch / "rootfs"
        log(f"[agentevo] debootstrap {DEBIAN_SUITE} from {mirror} (about a minute)")
        t0 = time.monotonic()
        cmd = [exe, f"--variant={DEBOOTSTRAP_VARIANT}"]
        if packages:
            cmd.append("--include=" + ",".join(packages))
        cmd += [DEBIAN_SUITE, str(rootfs), mirror]
        try:
            proc = subprocess.run(
                cmd, check=False, capture_output=True, text=True, timeout=_DEBOOTSTRAP_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise ImageBuildError(
                f"debootstrap did not finish within {_DEBOOTSTRAP_TIMEOUT_S} s (mirror {mirror})"
            ) from None
        if proc.returncode != 0:
            detail = proc.stdout + proc.stderr
            # debootstrap's own log says which package or download failed; its stdout often does not.
            with contextlib.suppress(OSError):
                detail += "\n" + (rootfs / "debootstrap" / "debootstrap.log").read_text(errors="replace")
            raise ImageBuildError(
                f"debootstrap failed (exit {proc.returncode}, mirror {mirror}, "
                f"packages {','.join(packages)}):\n" + _tail(detail)
            )
        log(f"[agentevo] debootstrap took {time.monotonic() - t0:.1f} s")

        _slim_rootfs(rootfs)

        t0 = time.monotonic()
        _import_rootfs(tag, rootfs)
        log(f"[agentevo] docker import {tag} took {time.monotonic() - t0:.1f} s")
    if not _tag_exists(client, tag):
        raise ImageBuildError(
            f"`docker import` reported success but {tag} is not in the engine the Docker SDK talks to; "
            "check that DOCKER_HOST points the docker CLI and the SDK at the same engine"
        )


def _slim_rootfs(rootfs: Path) -> None:
    """Drop what a sandbox never reads: about a quarter of the rootfs.

    That is what `apt-get clean` drops (downloaded .debs, package lists) plus man pages, info
    pages, translations and package docs. The copyright files stay: they are the licences.
    """

    def remove(path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()

    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/*.bin",
        "var/lib/apt/lists/*",
        "usr/share/man/*",
        "usr/share/info/*",
    ):
        for path in rootfs.glob(pattern):
            remove(path)
    for path in rootfs.glob("usr/share/locale/*"):
        if path.is_dir():  # message catalogues; locale.alias and friends are plain files and stay
            remove(path)
    for package_doc in rootfs.glob("usr/share/doc/*"):
        if package_doc.is_dir() and not package_doc.is_symlink():
            for path in package_doc.iterdir():
                if path.name != "copyright":
                    remove(path)


def _import_rootfs(tag: str, rootfs: Path) -> None:
    docker_cli = shutil.which("docker")
    if not docker_cli:
        raise ImageBuildError(
            "the docker CLI is not installed (it imports the base rootfs); "
            "run `bash scripts/ensure-system.sh`"
        )
    # Streamed through a pipe: a rootfs tarball on disk would double the scratch space for nothing.
    with tempfile.TemporaryFile() as tar_err, tempfile.TemporaryFile() as imp_err:
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE, stderr=tar_err
        )
        assert tar.stdout is not None
        try:
            imp = subprocess.Popen(
                [
                    docker_cli,
                    "import",
                    "--change",
                    "LABEL agentevo=1",
                    "--change",
                    "LABEL agentevo.image=base",
                    "-",
                    tag,
                ],
                stdin=tar.stdout,
                stdout=subprocess.DEVNULL,
                stderr=imp_err,
            )
        finally:
            tar.stdout.close()  # only the importer holds the pipe now, so tar sees EPIPE if it dies
        try:
            imp_rc = imp.wait(timeout=_IMPORT_TIMEOUT_S)
            tar_rc = tar.wait(timeout=60)
        except subprocess.TimeoutExpired:
            imp.kill()
            tar.kill()
            raise ImageBuildError(
                f"docker import of the base rootfs did not finish within {_IMPORT_TIMEOUT_S} s"
            ) from None
        if tar_rc != 0 or imp_rc != 0:
            tar_err.seek(0)
            imp_err.seek(0)
            raise ImageBuildError(
                f"importing the base rootfs as {tag} failed "
                f"(tar exit {tar_rc}, docker import exit {imp_rc}):\n"
                + _tail(tar_err.read().decode(errors="replace") + imp_err.read().decode(errors="replace"))
            )


def _wheelhouse_digest(requirements: bytes) -> str:
    h = _Hasher("agentevo-wheelhouse")
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


def _ensure_wheelhouse(requirements: Path, log: Callable[[str], None]) -> Path:
    """The cached wheelhouse for ``requirements``, downloaded (with pip on the host) if missing."""
    content = requirements.read_bytes()
    parent = _cache_dir() / "wheelhouse"
    target = parent / _wheelhouse_digest(content)
    if target.is_dir():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    log(f"[agentevo] downloading wheels for {requirements} into {target}")
    t0 = time.monotonic()
    # Filled beside the target and renamed into place: a download that dies halfway never
    # looks like a complete wheelhouse.
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=parent))
    try:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-input",
            "--only-binary=:all:",
            "--no-deps",
            "--python-version",
            WHEEL_PYTHON_VERSION,
            "--implementation",
            WHEEL_IMPLEMENTATION,
        ]
        for platform in WHEEL_PLATFORMS:
            cmd += ["--platform", platform]
        cmd += ["-r", str(requirements), "-d", str(partial)]
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
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
                f"(exit {proc.returncode}); fix the pin in {requirements}:\n" + _tail(output)
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


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _build_image(
    client: docker.DockerClient, name: str, tag: str, base: str, recipes: Path, log: Callable[[str], None]
) -> None:
    folder = recipes / name
    requirements = folder / "requirements.txt"
    wheelhouse = _ensure_wheelhouse(requirements, log) if requirements.is_file() else None
    with _scratch_dir(f"agentevo-{name}-ctx-") as ctx:
        for path in _image_files(folder):
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
        shutil.copyfile(_sandboxd_path(), ctx / "sandboxd.py")
        os.chmod(ctx / "sandboxd.py", 0o644)

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
                f"docker build of {tag} failed: {exc.msg}\n" + "\n".join(lines[-_ERROR_TAIL_LINES:])
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
    log: Callable[[str], None] = print,
) -> str:
    """Build the sandbox image ``name`` if its recipe has no image yet, and return its tag.

    The base image is built first when its own tag is missing. With ``force`` both are rebuilt.
    When the image exists this only hashes the recipe and asks the engine, well under a second.
    Raises ImageBuildError with the cause and the fix when something is missing or a step fails.
    """
    recipes = recipe_dir()
    tag = image_tag(name, recipes)
    client = client if client is not None else docker_client()
    if not force and _tag_exists(client, tag):
        return tag
    with _file_lock(name, log):
        # Another process may have finished the same build while we waited for the lock.
        if not force and _tag_exists(client, tag):
            return tag
        mirror = debian_mirror()
        base = base_tag(recipes, mirror=mirror)
        with _file_lock(BASE_NAME, log):
            if force or not _tag_exists(client, base):
                _build_base(client, base, recipes, mirror, log)
        _build_image(client, name, tag, base, recipes, log)
    return tag


def resolve_image(reference: str, client: docker.DockerClient) -> str:
    """Map a recipe name (or a full image reference) to the tag to run, checking that it is built."""
    tag = image_tag(reference) if reference in image_names() else reference
    if not _tag_exists(client, tag):
        raise ImageMissing(f"sandbox image {tag} is not built; run `agentevo sandbox build` (or `make test`)")
    return tag
