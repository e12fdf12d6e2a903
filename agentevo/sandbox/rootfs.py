"""Debian root filesystems for the sandbox images, made offline from the host's own apt mirror.

No image registry is reachable from the machines this runs on, so nothing is pulled: a rootfs is
made with ``debootstrap`` (plus, for an image that lists Debian packages of its own, ``apt-get
install`` in a chroot using the host's apt sources, security suite included), slimmed, and
imported with ``docker import``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from agentevo.progress import Log
from agentevo.sandbox.errors import ImageBuildError
from agentevo.sandbox.recipes import DEBIAN_SUITE, DEBOOTSTRAP_VARIANT

ERROR_TAIL_LINES = 20
_DEBOOTSTRAP_TIMEOUT_S = 30 * 60
_APT_TIMEOUT_S = 30 * 60
_IMPORT_TIMEOUT_S = 10 * 60
APT_DIR = Path("/etc/apt")


def tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


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


def _source_files(apt_dir: Path) -> list[Path]:
    candidates = sorted((apt_dir / "sources.list.d").glob("*.sources"))
    return candidates + [apt_dir / "sources.list"] + sorted((apt_dir / "sources.list.d").glob("*.list"))


def debian_mirror(apt_dir: Path = APT_DIR, suite: str = DEBIAN_SUITE) -> str:
    """The Debian mirror the host's apt uses for ``suite``.

    debootstrap must use the host's mirror: on these machines it is the one that is reachable, and no
    mirror is written into the project. Raises ImageBuildError when the host's apt names none.
    """
    for path in _source_files(apt_dir):
        try:
            text = path.read_text()
        except OSError:
            continue
        parse = _parse_deb822_mirror if path.suffix == ".sources" else _parse_one_line_mirror
        uri = parse(text, suite)
        if uri:
            return uri.rstrip("/")
    raise ImageBuildError(
        f"the host's apt sources ({apt_dir}/sources.list, {apt_dir}/sources.list.d/) name no Debian mirror "
        f"for {suite}; add one (e.g. a deb822 file with 'Suites: {suite}') so debootstrap can use it"
    )


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
    """Unmount whatever is still mounted inside ``root`` (debootstrap and our chroot mount /proc).

    An interrupted build can leave those mounts behind, and deleting the rootfs would then walk
    into the host's /proc and /sys.
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
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory under /var/tmp (rootfs and contexts are too big for a tmpfs /tmp)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    try:
        yield path
    finally:
        _unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)


def debootstrap(rootfs: Path, packages: list[str], mirror: str, log: Log) -> None:
    """A minbase rootfs of ``DEBIAN_SUITE`` with ``packages`` in ``rootfs``."""
    exe = _debootstrap_exe()
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
            f"packages {','.join(packages)}):\n" + tail(detail)
        )
    log(f"[agentevo] debootstrap took {time.monotonic() - t0:.1f} s")


def apt_install(rootfs: Path, packages: list[str], log: Log, apt_dir: Path = APT_DIR) -> None:
    """``apt-get install`` ``packages`` in a chroot of ``rootfs``, from the host's apt sources.

    The host's sources, not debootstrap's single suite: they carry the security suite, where Debian
    ships current browsers. The sources and lists are removed again afterwards.
    """
    sources = rootfs / "etc" / "apt" / "sources.list.d"
    sources.mkdir(parents=True, exist_ok=True)
    for path in _source_files(apt_dir):
        if path.is_file():
            shutil.copyfile(path, sources / f"host-{path.name}")
    shutil.copyfile("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")
    log(f"[agentevo] apt-get install {' '.join(packages)} in the rootfs (a few minutes)")
    t0 = time.monotonic()
    subprocess.run(["mount", "-t", "proc", "proc", str(rootfs / "proc")], check=True, capture_output=True)
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    try:
        for cmd in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        ):
            try:
                proc = subprocess.run(
                    ["chroot", str(rootfs), *cmd],
                    check=False,
                    capture_output=True,
                    text=True,
                    timeout=_APT_TIMEOUT_S,
                    env=env,
                )
            except subprocess.TimeoutExpired:
                raise ImageBuildError(f"`{' '.join(cmd)}` did not finish within {_APT_TIMEOUT_S} s") from None
            if proc.returncode != 0:
                raise ImageBuildError(
                    f"`{' '.join(cmd)}` in the image rootfs failed (exit {proc.returncode}); "
                    f"check the package names and the host's apt sources:\n" + tail(proc.stdout + proc.stderr)
                )
    finally:
        _unmount_below(rootfs)
        for path in sources.glob("host-*"):
            path.unlink()
        (rootfs / "etc" / "resolv.conf").unlink(missing_ok=True)
    log(f"[agentevo] apt-get install took {time.monotonic() - t0:.1f} s")


def slim(rootfs: Path) -> None:
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


def import_rootfs(tag: str, rootfs: Path, image_label: str) -> None:
    """Stream ``rootfs`` into ``docker import`` as ``tag``."""
    docker_cli = shutil.which("docker")
    if not docker_cli:
        raise ImageBuildError(
            "the docker CLI is not installed (it imports the base rootfs); run `bash scripts/ensure-system.sh`"
        )
    # Streamed through a pipe: a rootfs tarball on disk would double the scratch space for nothing.
    with tempfile.TemporaryFile() as tar_err, tempfile.TemporaryFile() as imp_err:
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE, stderr=tar_err
        )
        assert tar.stdout is not None
        try:
            imp = subprocess.Popen(
                [docker_cli, "import", "--change", "LABEL agentevo=1",
                 "--change", f"LABEL agentevo.image={image_label}", "-", tag],
                stdin=tar.stdout, stdout=subprocess.DEVNULL, stderr=imp_err,
            )  # fmt: skip
        finally:
            tar.stdout.close()  # only the importer holds the pipe now, so tar sees EPIPE if it dies
        try:
            imp_rc = imp.wait(timeout=_IMPORT_TIMEOUT_S)
            tar_rc = tar.wait(timeout=60)
        except subprocess.TimeoutExpired:
            imp.kill()
            tar.kill()
            raise ImageBuildError(
                f"docker import of the rootfs did not finish within {_IMPORT_TIMEOUT_S} s"
            ) from None
        if tar_rc != 0 or imp_rc != 0:
            tar_err.seek(0)
            imp_err.seek(0)
            raise ImageBuildError(
                f"importing the rootfs as {tag} failed (tar exit {tar_rc}, docker import exit {imp_rc}):\n"
                + tail(tar_err.read().decode(errors="replace") + imp_err.read().decode(errors="replace"))
            )


def build_rootfs(
    tag: str,
    label: str,
    base_packages: list[str],
    own_packages: list[str],
    mirror: str,
    log: Log,
) -> None:
    """debootstrap (+ apt-get install of ``own_packages``), slim, and import the rootfs as ``tag``."""
    with scratch_dir(f"agentevo-{label}-") as scratch:
        rootfs = scratch / "rootfs"
        debootstrap(rootfs, base_packages, mirror, log)
        if own_packages:
            apt_install(rootfs, own_packages, log)
        slim(rootfs)
        t0 = time.monotonic()
        import_rootfs(tag, rootfs, label)
        log(f"[agentevo] docker import {tag} took {time.monotonic() - t0:.1f} s")
