"""In-sandbox test runner: runs a task's hidden tests against a submission and reports one signed line.

The evaluator writes this file (from the host package, never from the agent's workspace) to
``/tmp/agentevo-eval/harness.py`` in a fresh sandbox and runs it as
``python3 -I -B harness.py SPEC_FILE``. It uses the standard library only, and ``procs`` (the
process helpers), which runs there from the source the spec carries.

Trust model. Test code and the solution run as the same uid as this harness, so nothing they can
reach may decide the verdict:

* The spec (session nonce, tests) comes in a file that is read and unlinked before any test code
  starts; from then on it exists only in this process, which is made non-dumpable before any test
  code starts, so same-uid code cannot read its memory, environment or file descriptors through
  ``/proc`` nor ptrace it. (The exec API has no stdin; an environment variable would also reach
  the ``timeout`` and ``bash`` processes that start us, which stay dumpable, so the file is the
  safer carrier.)
* Each test runs in a judge child ``python3 -I -B -c BOOTSTRAP`` (the bootstrap travels in argv
  from this process's memory, not from a file the tests could edit), in its own session, with its
  sources and the test on stdin and an extra pipe for the verdict. A test passes only if the judge
  exits 0, wrote exactly ``I`` + its per-test nonce on that pipe (it writes the nonce only after the
  test snippet returned) and finished in time. Printing "PASS", exiting 0 early or editing files on
  disk cannot produce that.
* The result is one stdout line ``AGENTEVO-RESULT <session nonce> <json>``. The host accepts only
  the line with its own session nonce, which test code never sees; fake lines are ignored, and a
  killed harness means no result, never a pass.
* Between tests every process that is not this harness, its ancestors or PID 1 is frozen and
  killed, so nothing a test left running (even in a new session, even a fork bomb) reaches the
  next test or the result line. Test children run at nice 10, below the harness, so the harness
  always gets the CPU to enforce time limits.

No shared interpreter. The test code runs in a *judge* process and the submission in a process of
its own, started by the judge (``judge.py``, ``solution_host.py``); calls cross between them as plain
data (``crossing.py``), so no object of the submission's making meets an ``==`` or an ``assert``,
and its code can reach neither the judge's frames, builtins, ``sys.modules`` nor ``unittest``. Both
processes start from sources this harness holds in memory (they came in the spec), so editing files
in the sandbox changes neither. A judge that finds the solution's side interfering (a forged or
malformed reply, a signal to the judge) reports ``tampering``, which scores the attempt zero.
"""

from __future__ import annotations

import binascii
import json
import marshal
import os
import select
import signal
import subprocess
import sys
import time
import types

TYPE_CHECKING = False  # not typing's: the harness runs on the standard library alone, and starts fast
if TYPE_CHECKING or __package__:  # imported on the host: the evaluator reads the constants below
    from agentevo import procs
else:  # run alone in a sandbox: main() builds procs from the source the spec carries
    procs = None

RESULT_PREFIX = "AGENTEVO-RESULT"
TAIL_BYTES = 4096  # per child stream kept for feedback
DRAIN_SECONDS = 0.2  # after a child exits, how long leftover writers may keep its pipes open
IMPORT_OK = b"I"  # written by the judge on the verdict pipe once the solution has imported
MAX_VERDICT_BYTES = 512  # ``I``, then the nonce, ``T`` or ``F`` and the judge's reason for a failure

# Statuses of one test, as reported in the result line.
PASSED, FAILED, IMPORT_ERROR, TIMEOUT = "passed", "failed", "import_error", "timeout"
NOT_RUN, ERROR, TAMPERING = "not_run", "error", "tampering"

TAMPERED = b"T"  # written by the judge on the verdict pipe when the solution interfered with it
FAILED_REASON = b"F"  # precedes the judge's reason for a failed test (values of the test redacted)
JUDGE_MODULE = "agentevo.evaluate.judge"
CROSSING_MODULE = "agentevo.evaluate.crossing"
SOLUTION_MODULE = "agentevo.evaluate.solution_host"
PROCS_MODULE = "agentevo.procs"
# The modules whose sources the evaluator puts in the spec (read from the host package, never the sandbox).
SHIPPED_MODULES = (CROSSING_MODULE, JUDGE_MODULE, SOLUTION_MODULE, PROCS_MODULE)
# When a test's judge ends or overruns, its process group is killed this often, a few ms apart.
KILL_ROUNDS, KILL_PAUSE_SECONDS = 20, 0.005

# Starts the judge and the solution's process alike: reads one length-prefixed JSON payload from the
# file descriptor in argv[1], creates its modules from source (never from disk) and runs ``main``.
# It travels with -c, so it exists only in argv and the process's memory. Only what must come before
# any module exists is written here: reading the payload and making the modules. The judge becomes
# non-dumpable through ``procs`` right after its modules load and before ``main`` starts the
# solution's process; until then no untrusted process exists (the harness swept every stray before
# this test), so doing it here, inline, would protect nothing more.
BOOTSTRAP = r"""
import json, marshal, os, sys, types
from binascii import a2b_base64
def _agentevo_boot():
    try:
        os.nice(10)  # below the harness, so it always gets the CPU to enforce limits (no way back up)
    except OSError:
        pass
    fd = int(sys.argv[1])
    def read(size):
        data = bytearray()
        while len(data) < size:
            chunk = os.read(fd, size - len(data))
            if not chunk:
                os._exit(70)
            data += chunk
        return bytes(data)
    payload = json.loads(read(int.from_bytes(read(4), "big")))
    for name in ("agentevo", "agentevo.evaluate"):
        package = types.ModuleType(name)
        package.__path__ = []
        sys.modules[name] = package
    for name, code in payload["modules"].items():
        module = types.ModuleType(name)
        module.__file__ = "<" + name + ">"
        sys.modules[name] = module
        exec(marshal.loads(a2b_base64(code)), module.__dict__)
    if payload.get("nondumpable"):  # the judge: same-uid code cannot read or trace it from now on
        sys.modules["agentevo.procs"].make_nondumpable()
    sys.modules[payload["main"]].main(payload, fd)
_agentevo_boot()
"""


def compiled(sources: dict[str, str]) -> dict[str, str]:
    """Each module's code object, compiled once here and sent as base64 marshal data (trusted: ours)."""
    return {
        name: binascii.b2a_base64(marshal.dumps(compile(source, f"<{name}>", "exec")), newline=False).decode()
        for name, source in sources.items()
    }


def _load_procs(code: str) -> None:
    """In the sandbox this file runs alone: ``procs`` is made from the compiled source the spec carried."""
    global procs
    if procs is None:
        procs = types.ModuleType(PROCS_MODULE)
        exec(marshal.loads(binascii.a2b_base64(code)), procs.__dict__)  # noqa: S102 - our own code


class _Tail:
    """The last ``limit`` bytes of a stream."""

    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self.limit = limit
        self.data = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        cut = "[...]\n" if self.total > len(self.data) else ""
        return cut + self.data.decode("utf-8", errors="replace")


def _kill_group(pgid: int) -> None:
    procs.kill_group(pgid, rounds=KILL_ROUNDS, pause=KILL_PAUSE_SECONDS)


def _ancestors() -> set[int]:
    pids: set[int] = set()
    pid: int | None = os.getppid()
    while pid is not None and pid > 1 and pid not in pids:
        pids.add(pid)
        pid = procs.parent(pid)
    return pids


def _others(keep: set[int], *, zombies: bool = True) -> list[int]:
    """Pids in /proc but not in ``keep``; without zombies (dead, waiting for PID 1) if asked."""
    others = [pid for pid in procs.pids() if pid not in keep]
    if zombies:
        return others
    return [pid for pid in others if procs.state(pid) not in (None, *procs.DEAD_STATES)]


def sweep_strays(keep: set[int], ancestors: set[int]) -> int:
    """Kill every process but ``keep``. Returns how many were found.

    ``kill(-1, SIGSTOP)`` first freezes every process we may signal in one atomic pass (a fork in
    flight is either caught or aborted), so a fork bomb cannot refill the slots we free; then the
    strays are killed and our ancestors (frozen too) continued.
    """
    if not _others(keep):
        return 0
    found: set[int] = set()
    try:
        os.kill(-1, signal.SIGSTOP)
    except OSError:
        pass
    try:
        for _ in range(50):
            left = _others(keep, zombies=False)
            if not left:
                break
            found.update(left)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.002)
    finally:
        for pid in ancestors:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
    return len(found)


def run_test(child: dict, *, timeout: float, cwd: str, env: dict[str, str], sweep=lambda: 0) -> dict:
    """Run one test in a fresh judge and read its verdict. See the module docstring for the rules.

    ``child`` is the judge's payload: ``modules``, ``solution_modules``, ``boot`` and ``spec`` (the
    test); this adds the per-test nonce and the verdict pipe.
    """
    nonce = os.urandom(16).hex()
    verdict_r, verdict_w = os.pipe()
    spec = {**child["spec"], "nonce": nonce, "verdict_fd": verdict_w}
    body = json.dumps({**child, "main": JUDGE_MODULE, "nondumpable": True, "spec": spec}).encode()
    payload = len(body).to_bytes(4, "big") + body
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", BOOTSTRAP, "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(verdict_w,),
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        os.close(verdict_r)
        os.close(verdict_w)
        return {"status": ERROR, "seconds": 0.0, "stdout": "", "stderr": f"cannot start the test: {exc}"}
    os.close(verdict_w)
    out, err, verdict = _Tail(), _Tail(), bytearray()
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None  # PIPE, all three
    readers = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, verdict_r: None}
    stdin_fd = proc.stdin.fileno()
    os.set_blocking(stdin_fd, False)
    pending: memoryview | None = memoryview(payload)
    deadline = started + timeout
    timed_out = stopped = False
    exited_at = None
    while True:
        now = time.monotonic()
        if exited_at is None and proc.poll() is not None:
            exited_at = now
            _kill_group(proc.pid)  # whatever it left in its group goes with it
            if readers:  # something outside its group still holds its pipes: end it now
                sweep()
        if exited_at is None and now >= deadline:
            timed_out = True
            stopped = _stopped(proc.pid)
            _kill_group(proc.pid)
            try:
                proc.kill()
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            exited_at = now
            sweep()
        if exited_at is not None and (not readers or now - exited_at >= DRAIN_SECONDS):
            break
        if not readers:  # every pipe closed but the child not yet reaped
            try:
                proc.wait(max(0.0, min(0.05, deadline - now)))
            except subprocess.TimeoutExpired:
                pass
            continue
        wait = 0.05 if exited_at is not None else max(0.0, min(0.05, deadline - now))
        writers = [stdin_fd] if pending is not None else []
        try:
            ready_r, ready_w, _ = select.select(list(readers), writers, [], wait)
        except InterruptedError:
            continue
        if ready_w and pending is not None:  # (only then was stdin asked about)
            try:
                sent = os.write(stdin_fd, pending[: 1 << 16])
                pending = pending[sent:]
            except BlockingIOError:
                pass
            except OSError:  # the child is gone or closed its stdin
                pending = memoryview(b"")
            if not len(pending):
                proc.stdin.close()
                pending = None
        for fd in ready_r:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                del readers[fd]
                continue
            sink = readers[fd]
            if sink is None:
                if len(verdict) <= MAX_VERDICT_BYTES:
                    verdict += chunk[: MAX_VERDICT_BYTES + 1]
            else:
                sink.feed(chunk)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        try:
            pipe.close()
        except OSError:
            pass
    os.close(verdict_r)
    elapsed = time.monotonic() - started
    rc = proc.returncode
    verdict_bytes = bytes(verdict)
    reason = ""
    if verdict_bytes.startswith(IMPORT_OK + FAILED_REASON):
        reason = verdict_bytes[2:].decode("utf-8", "replace")
        verdict_bytes = IMPORT_OK
    if not timed_out and rc == 0 and verdict_bytes == IMPORT_OK + nonce.encode():
        status = PASSED
    elif (
        verdict_bytes in (TAMPERED, IMPORT_OK + TAMPERED)
        or stopped
        or (rc is not None and rc < 0 and not timed_out)
    ):
        status = TAMPERING  # the judge said so, or something froze or killed it: not the harness
    elif timed_out:
        status = TIMEOUT
    elif not verdict_bytes.startswith(IMPORT_OK):
        status = IMPORT_ERROR  # the solution never finished importing (or the child died first)
    else:
        status = FAILED
    outcome = {"status": status, "seconds": round(elapsed, 4), "rc": rc}
    if status == IMPORT_ERROR:  # the solution's own import, before any test code: nothing of the tests in it
        outcome["stderr"] = err.text()
    elif status == FAILED:
        outcome["reason"] = reason  # never the test's output, which the solution's process writes to as well
    return outcome


def _stopped(pid: int) -> bool:
    """Whether ``pid`` is frozen by a signal (SIGSTOP from the solution's side), not merely slow."""
    return procs.state(pid) in procs.STOPPED_STATES


def _solution_state(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 16):
                if chunk.strip():
                    return "ok"
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return "missing"
    except OSError:
        return "unreadable"
    return "empty"


def main(argv: list[str]) -> int:
    spec_path = argv[1]
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    os.unlink(spec_path)  # before any test code runs: afterwards the spec lives only in our memory
    modules = compiled(spec["modules"])  # the judge's, the solution host's and procs' sources, from the host
    _load_procs(modules[PROCS_MODULE])
    # Before any test code exists. Reading the spec first exposes nothing: until the unlink above it was
    # a file same-uid code could read, and no such code has run in this fresh sandbox.
    procs.make_nondumpable()
    session = spec["session_nonce"]
    solution_path = spec["solution_path"]
    tests = spec["tests"]
    ancestors = _ancestors()
    keep = {os.getpid(), 1} | ancestors
    sweep_strays(keep, ancestors)  # a fresh sandbox has nothing to kill; this is belt and braces
    state = _solution_state(solution_path)
    results: list[dict] = []
    if state == "ok":
        started = time.monotonic()
        deadline = started + float(spec["total_timeout"])
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/workspace"),
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",
        }
        cwd = os.path.dirname(solution_path) or "/"

        def sweep() -> int:
            return sweep_strays(keep, ancestors)

        skip = None  # once the solution failed to import, or the time limit is spent, the rest are not run
        for test in tests:
            left = min(float(spec["per_test_timeout"]), deadline - time.monotonic())
            if skip is not None:
                results.append({"status": skip, "seconds": 0.0, "skipped": True})
                continue
            if left <= 0:
                results.append({"status": NOT_RUN, "seconds": 0.0})
                continue
            child = {
                "modules": {name: modules[name] for name in (CROSSING_MODULE, JUDGE_MODULE, PROCS_MODULE)},
                "solution_modules": {name: modules[name] for name in (CROSSING_MODULE, SOLUTION_MODULE)},
                "boot": BOOTSTRAP,
                "spec": {
                    "solution_path": solution_path,
                    "setup": spec.get("test_setup") or "",
                    "test": test,
                    "entry_point": spec.get("entry_point"),
                    "compare_objects": spec.get("compare_objects") is True,
                },
            }
            outcome = run_test(child, timeout=left, cwd=cwd, env=env, sweep=sweep)
            sweep_strays(keep, ancestors)
            if outcome["status"] == IMPORT_ERROR:
                skip = IMPORT_ERROR
            elif outcome["status"] in (TIMEOUT, TAMPERING):
                skip = (
                    NOT_RUN  # it used the whole limit (per test = all tests), or interfered: the rest is moot
                )
            results.append(outcome)
    report = {"v": 1, "solution": state, "tests": results}
    line = f"{RESULT_PREFIX} {session} {json.dumps(report, separators=(',', ':'))}\n"
    sys.stdout.write(line)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
