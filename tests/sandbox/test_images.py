"""The sandbox image builder, against the real Docker engine.

The first run builds the images (about a minute, needs the Debian and PyPI mirrors); later runs
find them by their content-hash tags and take a few seconds.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from agentevo.sandbox import Sandbox, images, recipes, wheelhouse
from agentevo.sandbox.docker_host import docker_client
from agentevo.sandbox.errors import DockerUnavailable
from agentevo.sandbox.images import (
    ImageBuildError,
    ensure_image,
    image_exists,
    image_names,
    image_tag,
    recipe_dir,
)


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="module")
def python_image(client: docker.DockerClient) -> str:
    return ensure_image("python", client=client)


@pytest.fixture(scope="module")
def box(python_image: str) -> Iterator[Sandbox]:
    """The image as the runtime starts it: no network, read-only root, no capabilities."""
    with Sandbox.start() as sb:
        yield sb


def run(box: Sandbox, cmd: str) -> tuple[int, str]:
    result = box.exec(cmd, timeout=30)
    return result.exit_code, result.output


def copy_recipes(tmp_path: Path) -> Path:
    dst = tmp_path / "sandboxes"
    shutil.copytree(recipe_dir(), dst)
    return dst


def test_recipe_dir_and_names() -> None:
    assert recipe_dir() == Path(images.__file__).resolve().parents[2] / "sandboxes"
    assert (recipe_dir() / "base" / "packages.txt").is_file()
    names = image_names()
    assert "python" in names
    assert "base" not in names


def test_tag_is_deterministic_content_hash(tmp_path: Path) -> None:
    recipes = copy_recipes(tmp_path)
    tag = image_tag("python", recipes)
    assert re.fullmatch(r"agentevo-python:[0-9a-f]{12}", tag)
    assert image_tag("python", recipes) == tag
    assert image_tag("python") == tag  # same content, other folder: same tag
    assert re.fullmatch(r"agentevo-base:[0-9a-f]{12}", images.base_tag(recipes))


@pytest.mark.parametrize("relpath", ["python/Dockerfile", "python/requirements.txt", "base/packages.txt"])
def test_tag_changes_with_any_recipe_file(tmp_path: Path, relpath: str) -> None:
    recipes = copy_recipes(tmp_path)
    before = image_tag("python", recipes)
    base_before = images.base_tag(recipes)
    path = recipes / relpath
    original = path.read_bytes()
    path.write_bytes(original + b"\n# changed\n")
    assert image_tag("python", recipes) != before
    assert (images.base_tag(recipes) != base_before) == relpath.startswith("base/")
    path.write_bytes(original)
    assert image_tag("python", recipes) == before


def test_tag_changes_with_the_supervisor_files_and_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = image_tag("python")
    real = recipes.supervisor_files()
    assert [path.name for path in real] == ["sandboxd.py", "procs.py"]
    for i, path in enumerate(real):  # sandboxd.py and the procs.py it imports both go into the image
        fake = tmp_path / path.name
        fake.write_bytes(path.read_bytes() + b"\n# changed\n")
        monkeypatch.setattr(
            recipes, "supervisor_files", lambda i=i, fake=fake: [*real[:i], fake, *real[i + 1 :]]
        )
        assert image_tag("python") != before
    assert images.base_tag(mirror="http://mirror.example/debian") != images.base_tag()


def test_unknown_image_is_a_clear_error() -> None:
    with pytest.raises(ImageBuildError, match="no sandbox image recipe named 'nope'"):
        ensure_image("nope")
    with pytest.raises(ImageBuildError):
        image_tag("base")


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    docker_client.cache_clear()  # the shared client was made for the real engine
    try:
        with pytest.raises(DockerUnavailable, match="no Docker engine answers.*ensure-system.sh"):
            ensure_image("python")
    finally:
        docker_client.cache_clear()


def test_mirror_comes_from_apt_config(tmp_path: Path) -> None:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    with pytest.raises(ImageBuildError, match="name no Debian mirror for bookworm"):
        images.debian_mirror(apt)  # none is written into the project
    (apt / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg] http://list.example/debian/ bookworm main\n"
    )
    assert images.debian_mirror(apt) == "http://list.example/debian"
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "# a comment\nTypes: deb\nURIs: http://deb822.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert images.debian_mirror(apt) == "http://deb822.example/debian"


def test_pinned_requirements_are_complete() -> None:
    lines = [line.strip() for line in (recipe_dir() / "python" / "requirements.txt").read_text().splitlines()]
    pins = [line for line in lines if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[a-z0-9-]+==[\w.]+", pin) for pin in pins), pins
    names = {pin.split("==")[0] for pin in pins}
    assert {"pip", "langgraph", "langchain-core", "openai", "pydantic", "pydantic-core"} <= names


def test_an_image_with_its_own_packages_gets_its_own_rootfs(tmp_path: Path) -> None:
    recipes_dir = copy_recipes(tmp_path)
    mirror = images.host_mirror()
    assert recipes.rootfs_tag(recipes_dir, "python", mirror) == images.base_tag(recipes_dir)
    web_root = recipes.rootfs_tag(recipes_dir, "web", mirror)
    assert re.fullmatch(r"agentevo-base-web:[0-9a-f]{12}", web_root)
    before = image_tag("web", recipes_dir)
    (recipes_dir / "web" / "packages.txt").write_text("chromium\n")
    assert recipes.rootfs_tag(recipes_dir, "web", mirror) != web_root
    assert image_tag("web", recipes_dir) != before


@pytest.mark.docker
def test_recipes_resolve_once_per_process(
    client: docker.DockerClient, python_image: str, monkeypatch
) -> None:
    images.resolve_image("python", client)  # resolved (and cached) here or earlier in this process
    monkeypatch.setattr(images, "debian_mirror", lambda: pytest.fail("apt sources read again"))
    monkeypatch.setattr(recipes, "image_tag", lambda *a: pytest.fail("the recipe was hashed again"))
    assert images.resolve_image("python", client) == python_image


@pytest.mark.docker
def test_ensure_image_is_a_no_op_when_up_to_date(client: docker.DockerClient, python_image: str) -> None:
    assert image_exists(client, "python")
    messages: list[str] = []
    assert ensure_image("python", log=messages.append) == python_image
    assert messages == []  # nothing was built
    labels = client.images.get(python_image).labels
    assert labels["agentevo"] == "1"
    assert client.images.get(images.base_tag()).labels["agentevo"] == "1"


@pytest.mark.docker
def test_packages_import_in_hardened_container(box: Sandbox) -> None:
    code, out = run(
        box, "/opt/venv/bin/python -c 'import langgraph, langchain_core, openai, pydantic; print(\"ok\")'"
    )
    assert (code, out.strip()) == (0, "ok"), out
    code, out = run(box, "python3 -c 'import sys; print(sys.prefix, sys.version_info[:2])'")
    assert code == 0 and out.strip() == "/opt/venv (3, 11)", out


@pytest.mark.docker
def test_tools_exist(box: Sandbox) -> None:
    code, out = run(box, "git --version && ps -o pid= -p 1 && timeout 5 true && echo done")
    assert code == 0 and "git version" in out and out.strip().endswith("done"), out


@pytest.mark.docker
def test_agent_user_and_filesystem(box: Sandbox) -> None:
    code, out = run(box, "id -u; id -g; id -un; getent passwd agent | cut -d: -f6; pwd")
    assert code == 0 and out.split() == ["1000", "1000", "agent", "/workspace", "/workspace"], out
    code, out = run(
        box, "echo hi > /workspace/f && echo hi > /tmp/f && cat /opt/agentevo/sandboxd.py >/dev/null"
    )
    assert code == 0, out
    code, out = run(box, "touch /opt/venv/x")
    assert code != 0 and "Read-only file system" in out, out
    code, out = run(box, "ls /usr/share/man | wc -l")
    assert out.strip() == "0", out  # the base is slimmed


@pytest.mark.docker
def test_wheelhouse_is_not_in_the_image(client: docker.DockerClient, python_image: str) -> None:
    steps = [layer["CreatedBy"] for layer in client.images.get(python_image).history()]
    assert not any("wheels" in step for step in steps), steps


@pytest.mark.slow
def test_bad_pin_names_the_requirement(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydantic-core==0.0.0.404\n")
    with pytest.raises(ImageBuildError, match=r"pydantic-core==0\.0\.0\.404"):
        wheelhouse.ensure_wheelhouse(requirements, lambda _: None, tmp_path / "cache")
    # A failed download leaves nothing that could pass for a wheelhouse.
    assert list((tmp_path / "cache" / "wheelhouse").iterdir()) == []
