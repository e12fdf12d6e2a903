"""Agent variants as git commits (GitPython): each commit's tree is a whole agent package.

The repository is bare: a folder is committed through a private index with that folder as the work
tree, so committing never touches the folder and any parent can be named. Every node's commit is kept
reachable by a ref ``refs/nodes/<node id>``.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

import git

IGNORED = ("__pycache__/", "*.pyc", "*.pyo", ".pytest_cache/", "*.sqlite", "*.sqlite-*")
IDENTITY = {
    "GIT_AUTHOR_NAME": "agentevo",
    "GIT_AUTHOR_EMAIL": "agentevo@localhost",
    "GIT_COMMITTER_NAME": "agentevo",
    "GIT_COMMITTER_EMAIL": "agentevo@localhost",
}


class AgentRepo:
    """A bare git repository of agent packages."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if (self.path / "HEAD").exists():
            self.repo = git.Repo(self.path)
        else:
            self.repo = git.Repo.init(self.path, bare=True, mkdir=True)
            (self.path / "info").mkdir(exist_ok=True)
            (self.path / "info" / "exclude").write_text("\n".join(IGNORED) + "\n")

    def commit_folder(self, folder: Path, message: str, parent: str | None, node_id: str) -> str:
        """Commit the files under ``folder`` (with ``parent`` as the git parent); returns the commit sha."""
        folder = Path(folder).resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not an agent folder")
        with tempfile.TemporaryDirectory() as tmp:
            env = {**IDENTITY, "GIT_INDEX_FILE": str(Path(tmp) / "index"), "GIT_WORK_TREE": str(folder)}
            self.repo.git.add("--all", ".", env=env)
            tree = self.repo.git.write_tree(env=env)
            parents = ["-p", parent] if parent else []
            sha = self.repo.git.commit_tree(tree, *parents, "-m", message, env=env)
        self.repo.git.update_ref(f"refs/nodes/{node_id}", sha)
        return sha

    def has(self, sha: str) -> bool:
        try:
            return self.repo.commit(sha).hexsha == sha
        except (ValueError, git.BadName):
            return False

    def diff(self, old: str | None, new: str, *, context: int = 3) -> str:
        """The unified diff from ``old`` (or the empty tree) to ``new``, ``context`` lines around each change."""
        base = old or self.repo.git.hash_object("-t", "tree", os.devnull)
        return self.repo.git.diff(base, new, f"-U{context}", "--no-color")

    def changed_files(self, old: str, new: str) -> list[str]:
        """Paths that differ between the commits ``old`` and ``new``."""
        return self.repo.git.diff(old, new, "--name-only").splitlines()

    def tree_of(self, sha: str) -> str:
        """The tree id of commit ``sha``: two commits with the same files have the same tree."""
        return self.repo.git.rev_parse(f"{sha}^{{tree}}")

    def files_at(self, sha: str) -> dict[str, str]:
        """Every file of commit ``sha``: path -> git blob id (equal ids, equal contents)."""
        listing = self.repo.git.ls_tree("-r", sha).splitlines()
        return {line.split("\t", 1)[1]: line.split()[2] for line in listing}

    def read_at(self, sha: str, path: str) -> str:
        """The text of ``path`` in commit ``sha``; ``KeyError`` when the commit has no such file."""
        try:
            return self.repo.git.show(f"{sha}:{path}")
        except git.GitCommandError:
            raise KeyError(f"{path} is not in commit {sha}") from None

    def diff_lines(self, old: str | None, new: str) -> int:
        """Lines added plus removed (binary files count one each)."""
        base = old or self.repo.git.hash_object("-t", "tree", os.devnull)
        total = 0
        for line in self.repo.git.diff(base, new, "--numstat").splitlines():
            added, removed, _ = line.split("\t", 2)
            total += 1 if added == "-" else int(added) + int(removed)
        return total

    def export(self, sha: str, dest: Path) -> Path:
        """Write the agent package of ``sha`` into the new folder ``dest``."""
        dest = Path(dest)
        if dest.exists() and any(dest.iterdir()):
            raise FileExistsError(f"{dest} exists and is not empty; export into a new folder")
        dest.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        self.repo.archive(buffer, treeish=sha, format="tar")
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            tar.extractall(dest, filter="data")
        return dest
