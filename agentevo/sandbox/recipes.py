"""Image recipes (``sandboxes/<name>/``) and the content-hash tags they build to.

A tag is a sha256 over everything that goes into an image, so "is the image up to date?" is one
``images.get`` and a recipe change can never be served a stale image.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from agentevo.sandbox.errors import ImageBuildError

BASE_NAME = "base"
PACKAGES_FILE = "packages.txt"
DEBIAN_SUITE = "bookworm"
DEBOOTSTRAP_VARIANT = "minbase"
# Bump when the way images are built changes in a way the recipe files do not show, so that
# every tag moves and old images are not mistaken for new ones.
BUILDER_VERSION = "1"
TAG_HEX = 12
# The build context's folder of supervisor files; each Dockerfile copies it to /opt/agentevo/.
SUPERVISOR_DIR = "supervisor"


def recipe_dir() -> Path:
    """The ``sandboxes/`` folder of this checkout.

    Found next to the package rather than through package data, so that a source checkout and an
    editable install (``pip install -e .``) both read the recipes a developer is editing.
    """
    return Path(__file__).resolve().parents[2] / "sandboxes"


def supervisor_files() -> list[Path]:
    """The in-container supervisor and the module it imports, copied into every image's ``/opt/agentevo/``."""
    here = Path(__file__).resolve().parent
    return [here / "sandboxd.py", here.parent / "procs.py"]


def image_names(recipes: Path | None = None) -> list[str]:
    """Names of the buildable images: the folders of ``recipes`` that hold a Dockerfile, sorted."""
    root = recipes if recipes is not None else recipe_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "Dockerfile").is_file())


def read_packages(path: Path) -> list[str]:
    """The Debian packages listed in ``path``: one per line, ``#`` comments."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ImageBuildError(f"cannot read the package list {path}: {exc}") from None
    packages = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [p for p in packages if p]


class Hasher:
    """sha256 over named parts, each framed by name and length so that no two inputs collide."""

    def __init__(self, kind: str) -> None:
        self._h = hashlib.sha256()
        self.add("kind", kind.encode())

    def add(self, name: str, data: bytes) -> None:
        self._h.update(f"{name}\0{len(data)}\0".encode())
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def base_tag(recipes: Path, mirror: str) -> str:
    """The tag of the shared base rootfs, ``agentevo-base:<12 hex>``: packages, suite, variant, mirror."""
    h = Hasher("agentevo-base")
    h.add("builder", BUILDER_VERSION.encode())
    h.add("suite", DEBIAN_SUITE.encode())
    h.add("variant", DEBOOTSTRAP_VARIANT.encode())
    h.add("mirror", mirror.encode())
    try:
        h.add(PACKAGES_FILE, (recipes / BASE_NAME / PACKAGES_FILE).read_bytes())
    except OSError as exc:
        raise ImageBuildError(f"cannot read the base recipe: {exc}") from None
    return f"agentevo-{BASE_NAME}:{h.hexdigest()[:TAG_HEX]}"


def own_packages(recipes: Path, name: str) -> Path | None:
    """``sandboxes/<name>/packages.txt`` when the image adds Debian packages of its own, else None."""
    path = recipes / name / PACKAGES_FILE
    return path if path.is_file() else None


def rootfs_tag(recipes: Path, name: str, mirror: str) -> str:
    """The rootfs image ``name`` is built on: the shared base, or ``agentevo-base-<name>:<hash>`` when the
    recipe lists Debian packages of its own (they are installed with apt, which ``docker build
    --network none`` cannot do)."""
    base = base_tag(recipes, mirror)
    packages = own_packages(recipes, name)
    if packages is None:
        return base
    h = Hasher("agentevo-rootfs")
    h.add("base", base.encode())
    h.add(PACKAGES_FILE, packages.read_bytes())
    return f"agentevo-{BASE_NAME}-{name}:{h.hexdigest()[:TAG_HEX]}"


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def image_tag(name: str, recipes: Path, mirror: str) -> str:
    """The tag ``agentevo-<name>:<12 hex>`` that the image ``name`` has when built from the current recipe.

    The hash covers its rootfs tag (base recipe, suite, mirror, its own packages), every file of
    ``sandboxes/<name>/`` and the supervisor's files, which are copied into the image.
    """
    folder = recipes / name
    if name == BASE_NAME or not (folder / "Dockerfile").is_file():
        raise ImageBuildError(
            f"no sandbox image recipe named {name!r} in {recipes} "
            f"(known: {', '.join(image_names(recipes)) or 'none'})"
        )
    h = Hasher("agentevo-image")
    h.add("builder", BUILDER_VERSION.encode())
    h.add("base", rootfs_tag(recipes, name, mirror).encode())
    for path in image_files(folder):
        h.add("recipe/" + path.relative_to(folder).as_posix(), path.read_bytes())
    for path in supervisor_files():
        try:
            h.add(path.name, path.read_bytes())
        except OSError as exc:
            raise ImageBuildError(f"cannot read {path}, which goes into every image: {exc}") from None
    return f"agentevo-{name}:{h.hexdigest()[:TAG_HEX]}"
