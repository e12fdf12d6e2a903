"""Files cross the sandbox boundary intact: binary, large, nested."""

from __future__ import annotations

import filecmp
import hashlib
import os
from pathlib import Path

import pytest

from agentevo.sandbox import SandboxOperationError


def test_binary_round_trip(sandbox):
    data = bytes(range(256)) * 4096 + os.urandom(4096)
    sandbox.write_file("/workspace/bin/all-bytes.dat", data)
    assert sandbox.read_file("/workspace/bin/all-bytes.dat") == data
    digest = sandbox.exec("sha256sum /workspace/bin/all-bytes.dat").output.split()[0]
    assert digest == hashlib.sha256(data).hexdigest()


def test_large_file_round_trip(sandbox):
    data = os.urandom(50 * 1024 * 1024)
    sandbox.write_file("/workspace/large.bin", data)
    assert hashlib.sha256(sandbox.read_file("/workspace/large.bin")).digest() == hashlib.sha256(data).digest()


def test_text_and_mode(sandbox):
    sandbox.write_file("/workspace/run.sh", "#!/bin/bash\necho ran-$((6*7))\n", mode=0o755)
    assert sandbox.exec("./run.sh").output.strip() == "ran-42"


def _tree(root: Path) -> None:
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "top.txt").write_text("top\n")
    (root / "a" / "one.bin").write_bytes(os.urandom(70_000))
    (root / "a" / "b" / "c" / "deep.py").write_text("print('deep')\n")
    (root / "a" / "b" / "ünïcode name.txt").write_text("ü\n")


def _same(left: Path, right: Path) -> bool:
    cmp = filecmp.dircmp(left, right)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(_same(left / d, right / d) for d in cmp.common_dirs)


def test_nested_dirs_round_trip(sandbox, tmp_path):
    src, back = tmp_path / "src", tmp_path / "back"
    _tree(src)
    sandbox.put_dir(src, "/workspace/project")
    assert sandbox.exec("python3 a/b/c/deep.py", cwd="/workspace/project").output.strip() == "deep"
    sandbox.exec("echo made-inside > /workspace/project/a/new.txt")
    sandbox.get_dir("/workspace/project", back)
    assert (back / "a" / "new.txt").read_text() == "made-inside\n"
    (back / "a" / "new.txt").unlink()
    assert _same(src, back)


def test_tar_streams(sandbox):
    sandbox.write_file("/workspace/t/x.txt", "x")
    tar_bytes = sandbox.get_tar("/workspace/t")
    sandbox.put_tar(tar_bytes, "/tmp/copy")
    assert sandbox.read_file("/tmp/copy/t/x.txt") == b"x"


def test_file_errors_are_clear_and_harmless(sandbox):
    with pytest.raises(SandboxOperationError, match="FileNotFoundError"):
        sandbox.read_file("/workspace/missing.txt")
    with pytest.raises(SandboxOperationError, match="Read-only file system|Permission denied"):
        sandbox.write_file("/etc/evil", "x")
    with pytest.raises(SandboxOperationError, match="no such file"):
        sandbox.get_tar("/workspace/nothing-here")
    assert sandbox.exec("echo ok").output.strip() == "ok"
