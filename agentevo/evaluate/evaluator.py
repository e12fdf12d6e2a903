"""The evaluator: a task's hidden tests, run against an agent's workspace in a fresh sandbox.

Flow of ``Evaluator.evaluate``:

1. The workspace (a tar stream from ``RunningSandbox.get_tar("/workspace")``, a host folder, or a
   ``{path: content}`` dict) is read on the host into plain files: only regular files survive,
   symlinks become copies of the in-tree file they point to (or are dropped), so nothing in it can
   point outside the submission. A missing or empty solution file is ``no_solution`` at once,
   without a sandbox.
2. A fresh sandbox (from the pool when one is given, else from the provider the sandbox config names; never
   reused) receives the files under
   ``/workspace/submission`` and the harness (``harness.py`` of this package, read on the host) at
   ``/tmp/agentevo-eval/harness.py``: nothing the agent wrote can replace it.
3. The spec (tests, limits, session nonce) is written to a 0600 file right before the harness
   starts, and the harness unlinks it before any test code runs. Why a file: the exec API has no
   stdin, argv is world-readable in ``/proc/*/cmdline``, and an environment variable would stay
   readable in ``/proc/<pid>/environ`` of the ``timeout``/``bash`` processes that start the harness
   (they are not ours to make non-dumpable). The sandbox is fresh, so no agent process exists to
   race for the file in the few milliseconds it exists.
4. The host accepts only the ``AGENTEVO-RESULT <session nonce>`` line: no line (the harness was
   killed) is ``no_result``, never a pass. The sandbox is closed whatever happens.

Scoring: ``score = tests passed / tests``; ``passed`` only when every test passed. A submission that
interfered with the judging process (``tampering``) scores 0 whatever its other tests did.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import posixpath
import secrets
import tarfile
import time
from pathlib import Path

from pydantic import BaseModel, Field

from agentevo.evaluate import harness
from agentevo.evaluate.results import ErrorKind
from agentevo.sandbox import RunningSandbox, SandboxConfig, SandboxError, SandboxPool, start_sandbox
from agentevo.tasks.model import Task

EVAL_DIR = "/tmp/agentevo-eval"
HARNESS_PATH = f"{EVAL_DIR}/harness.py"
SUBMISSION_DIR = "/workspace/submission"
# Per test, on top of the task's time limit: interpreter start and the wrapper's imports.
STARTUP_ALLOWANCE_SECONDS = 0.5
# Past the harness's own deadline, how long the exec may run before the sandbox kills it.
BACKSTOP_SECONDS = 5.0
MAX_OUTPUT_BYTES = 4 << 20
FEEDBACK_CHARS = 1500
HARNESS_SOURCE = Path(harness.__file__).read_bytes()


def _module_source(name: str) -> str:
    """The source of the installed module ``name`` (read on the host, never from a sandbox)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImportError(f"{name} has no source file: reinstall agentevo (`make venv`)")
    return Path(spec.origin).read_text()


# The judge's, the solution host's and procs' sources travel in the spec, so the harness holds them in memory.
JUDGE_SOURCES = {name: _module_source(name) for name in harness.SHIPPED_MODULES}

Submission = bytes | Path | str | dict[str, str | bytes]  # a final workspace, in any form the evaluator reads
Files = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)


class TestOutcome(BaseModel):
    """One hidden test: its status (see ``harness``), time, and the last line of its error output."""

    __test__ = False  # not a pytest class

    status: str
    seconds: float = 0.0
    error: str = ""


class EvalResult(BaseModel):
    """The verdict on one workspace. ``error_kind`` is None exactly when ``passed``."""

    task_id: str
    passed: bool
    score: float = Field(ge=0.0, le=1.0)
    tests_passed: int
    tests_total: int
    error_kind: ErrorKind | None = None
    feedback: str = Field(
        "",
        description="Short and safe to show to an agent: no test source, no nonces, no value of the hidden tests.",
    )
    elapsed: float = Field(0.0, description="Wall seconds of the whole evaluation, sandbox included.")
    tests: list[TestOutcome] = Field(default_factory=list)


class Evaluator:
    """Scores workspaces against tasks' hidden tests; thread-safe, one fresh sandbox per evaluation."""

    def __init__(self, sandbox_config: SandboxConfig | None = None, pool: SandboxPool | None = None) -> None:
        self.pool = pool
        self.sandbox_config = pool.config if pool is not None and sandbox_config is None else sandbox_config

    # -- public API ------------------------------------------------------------------------------

    def evaluate(self, task: Task, workspace: Submission) -> EvalResult:
        """Run ``task``'s hidden tests against ``workspace`` in a fresh sandbox."""
        started = time.monotonic()
        solution_file = _clean_path(task.solution_file)
        try:
            files = workspace_files(workspace, solution_file)
        except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
            return _verdict(task, started, ErrorKind.no_solution, f"the workspace could not be read: {exc}")
        entry = files.get(solution_file)
        if entry is None:
            return _verdict(task, started, ErrorKind.no_solution, f"no solution: {solution_file} is missing")
        if not entry[0].strip():
            return _verdict(task, started, ErrorKind.no_solution, f"no solution: {solution_file} is empty")
        try:
            sandbox = self.pool.acquire() if self.pool is not None else start_sandbox(self.sandbox_config)
        except SandboxError as exc:
            return _verdict(task, started, ErrorKind.sandbox_error, f"no evaluation sandbox: {exc}")
        try:
            with sandbox:
                return self._run(task, sandbox, files, solution_file, started)
        except SandboxError as exc:
            return _verdict(task, started, ErrorKind.sandbox_error, f"the evaluation sandbox failed: {exc}")

    def evaluate_solution(self, task: Task, solution_source: str) -> EvalResult:
        """Evaluate one solution file, placed among the task's own starting files."""
        return self.evaluate(task, {**task.files, task.solution_file: solution_source})

    async def evaluate_async(self, task: Task, workspace: Submission) -> EvalResult:
        """``evaluate`` for asyncio code (runs in a worker thread)."""
        return await asyncio.to_thread(self.evaluate, task, workspace)

    def _run(
        self, task: Task, sandbox: RunningSandbox, files: Files, solution_file: str, started: float
    ) -> EvalResult:
        sandbox.put_files(files, SUBMISSION_DIR)
        sandbox.write_file(HARNESS_PATH, HARNESS_SOURCE, 0o644)
        session = secrets.token_hex(16)
        total_timeout = task.time_limit + STARTUP_ALLOWANCE_SECONDS * len(task.tests)
        spec = {
            "session_nonce": session,
            "modules": JUDGE_SOURCES,
            "solution_path": f"{SUBMISSION_DIR}/{solution_file}",
            "entry_point": task.entry_point,
            "compare_objects": task.compare_objects,
            "test_setup": task.test_setup,
            "tests": task.tests,
            "per_test_timeout": task.time_limit,
            "total_timeout": total_timeout,
        }
        spec_path = f"{EVAL_DIR}/spec-{secrets.token_hex(8)}.json"
        sandbox.write_file(spec_path, json.dumps(spec), 0o600)
        result = sandbox.exec(
            f"exec python3 -I -B {HARNESS_PATH} {spec_path}",
            cwd=EVAL_DIR,
            timeout=total_timeout + BACKSTOP_SECONDS,
            max_output_bytes=MAX_OUTPUT_BYTES,
        )
        report = _find_report(result.output, session, len(task.tests))
        if report is None:
            if result.timed_out:
                return _verdict(task, started, ErrorKind.timeout, "the tests overran the time limit; stopped")
            return _verdict(
                task,
                started,
                ErrorKind.no_result,
                f"the test harness ended without a result (exit code {result.exit_code}); "
                "the solution may have killed it",
            )
        if report["solution"] != "ok":
            state = report["solution"]
            return _verdict(task, started, ErrorKind.no_solution, f"no solution: {solution_file} is {state}")
        return _scored(task, started, report["tests"])


# -- scoring --------------------------------------------------------------------------------------


def _find_report(output: str, session: str, total: int) -> dict | None:
    """The harness's report: the one line carrying our session nonce, well formed; else None."""
    prefix = f"{harness.RESULT_PREFIX} {session} "
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    if len(lines) != 1:
        return None
    try:
        report = json.loads(lines[0][len(prefix) :])
    except ValueError:
        return None
    if not isinstance(report, dict) or report.get("solution") not in ("ok", "missing", "empty", "unreadable"):
        return None
    tests = report.get("tests")
    if report["solution"] == "ok" and (not isinstance(tests, list) or len(tests) != total):
        return None
    return report


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _scored(task: Task, started: float, tests: list[dict]) -> EvalResult:
    outcomes = [
        TestOutcome(
            status=str(t.get("status")),
            seconds=float(t.get("seconds") or 0.0),
            error=str(t.get("reason") or _last_line(t.get("stderr", "")))[:200],
        )
        for t in tests
    ]
    statuses = [o.status for o in outcomes]
    passed = statuses.count(harness.PASSED)
    total = len(outcomes)
    if harness.TAMPERING in statuses:
        number = statuses.index(harness.TAMPERING) + 1
        return _verdict(
            task,
            started,
            ErrorKind.tampering,
            f"test {number}: the submission interfered with the process that judges the tests "
            "(a forged or malformed reply, or a signal to it); the attempt scores 0",
            tests=outcomes,
        )
    if passed == total:
        kind, feedback = None, f"all {total} tests passed"
    elif harness.IMPORT_ERROR in statuses:
        kind = ErrorKind.import_error
        first = next(t for t in tests if t.get("status") == harness.IMPORT_ERROR)
        tail = "\n".join((first.get("stderr") or "").strip().splitlines()[-12:])
        feedback = (
            f"{task.solution_file} failed to import:\n{tail}"
            if tail
            else (
                f"{task.solution_file} failed to import (its process ended with exit code {first.get('rc')})"
            )
        )
    else:
        timed = harness.TIMEOUT in statuses or harness.NOT_RUN in statuses
        kind = ErrorKind.timeout if timed else ErrorKind.tests_failed
        notes: list[str] = []
        for number, outcome in enumerate(outcomes, start=1):
            if outcome.status == harness.PASSED:
                continue
            if len(notes) == 3:
                notes.append("...")
                break
            if outcome.status == harness.TIMEOUT:
                notes.append(f"test {number}: exceeded the time limit ({task.time_limit:g} s for all tests)")
            elif outcome.status == harness.NOT_RUN:
                notes.append(f"test {number}: not run, the time limit was used up")
            else:
                notes.append(f"test {number}: {outcome.error or 'failed'}")
        feedback = f"{passed}/{total} tests passed. " + "; ".join(notes)
    return EvalResult(
        task_id=task.id,
        passed=passed == total,
        score=passed / total,
        tests_passed=passed,
        tests_total=total,
        error_kind=kind,
        feedback=feedback[:FEEDBACK_CHARS],
        elapsed=time.monotonic() - started,
        tests=outcomes,
    )


def _verdict(
    task: Task, started: float, kind: ErrorKind, feedback: str, tests: list[TestOutcome] | None = None
) -> EvalResult:
    return EvalResult(
        task_id=task.id,
        passed=False,
        score=0.0,
        tests_passed=0,
        tests_total=len(task.tests),
        error_kind=kind,
        feedback=feedback[:FEEDBACK_CHARS],
        elapsed=time.monotonic() - started,
        tests=tests or [],
    )


# -- workspaces -----------------------------------------------------------------------------------


def _clean_path(name: str) -> str:
    """A workspace-relative POSIX path, or ValueError if it is absolute or climbs out."""
    norm = posixpath.normpath(name.replace("\\", "/")).lstrip("/") if not name.startswith("/") else None
    if not norm or norm in (".", "..") or norm.startswith("../"):
        raise ValueError(f"{name!r} is not a path inside the workspace")
    return norm


def workspace_files(
    workspace: Submission, solution_file: str = "solution.py"
) -> dict[str, tuple[bytes, int]]:
    """The regular files of a workspace: ``{relative path: (content, mode)}``.

    A tar stream may hold the workspace folder itself as its top entry (what ``get_tar("/workspace")``
    gives); that level is stripped unless ``solution_file`` exists without stripping.
    """
    if isinstance(workspace, dict):
        out = {}
        for name, content in workspace.items():
            data = content.encode() if isinstance(content, str) else bytes(content)
            out[_clean_path(name)] = (data, 0o644)
        return out
    if isinstance(workspace, (str, Path)):
        return _folder_files(Path(workspace))
    if isinstance(workspace, (bytes, bytearray, memoryview)):
        return _tar_files(bytes(workspace), solution_file)
    raise TypeError(f"a workspace is tar bytes, a folder or a dict, not {type(workspace).__name__}")


def _folder_files(root: Path) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    if not root.is_dir():
        return out
    real_root = root.resolve()
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(real_root) or not target.is_file():
                continue
        elif not path.is_file():
            continue
        out[path.relative_to(root).as_posix()] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return out


def _tar_files(data: bytes, solution_file: str) -> dict[str, tuple[bytes, int]]:
    if not data:
        return {}
    regular: dict[str, tuple[bytes, int]] = {}
    links: dict[str, str] = {}
    dirs: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        members = tar.getmembers()
        for member in members:
            try:
                name = _clean_path(member.name)
            except ValueError:
                continue  # "." (the root itself) or a path that climbs out
            if member.isdir():
                dirs.append(name)
            elif member.isfile() or member.islnk():
                try:
                    fh = tar.extractfile(member)
                except (KeyError, tarfile.TarError):
                    continue
                if fh is not None:
                    regular[name] = (fh.read(), member.mode & 0o777)
            elif member.issym():
                links[name] = member.linkname
    for name in links:  # symlinks become copies of the in-tree file they lead to, or nothing
        content = _follow(name, links, regular)
        if content is not None:
            regular[name] = content
    top = members[0].name.rstrip("/") if members else ""
    top = posixpath.normpath(top) if top else ""
    if solution_file not in regular and top and top in dirs and "/" not in top:
        prefix = top + "/"
        if all(n.startswith(prefix) for n in regular):
            regular = {n[len(prefix) :]: v for n, v in regular.items()}
    return regular


def _follow(name: str, links: dict[str, str], regular: Files) -> tuple[bytes, int] | None:
    current = name
    for _ in range(8):
        target = links[current]
        if target.startswith("/"):
            return None
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
        if resolved in regular:
            return regular[resolved]
        if resolved not in links:
            return None
        current = resolved
    return None
