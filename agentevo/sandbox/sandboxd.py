"""In-container supervisor: runs commands and moves files for the host over one stdio channel.

This file is copied into every sandbox image as ``/opt/agentevo/sandboxd.py``, with ``procs.py``
beside it, and runs there as PID 1, so it uses the standard library only. Being PID 1 matters: the kernel never delivers
SIGKILL or SIGSTOP from inside the container to a namespace's init, so agent code cannot kill the
supervisor, and as the only holder of the container's stdio it is the only one who can speak. The host
imports the framing helpers below from the same file, so both sides share one definition.

Why a supervisor instead of one ``docker exec`` per command: an exec costs ~130 ms of engine
round trips; a request over the already-attached stdio channel costs a few milliseconds. It also
owns the two things ``docker exec`` gets wrong: timeouts kill the whole process group *inside*
the container, and output is capped while it streams.

Frames (both directions): a 4-byte big-endian header length, a JSON header, then ``size`` raw
payload bytes when the header says so. Requests carry an ``id``; every response echoes it. A payload
is written as it is, never joined to its header: a 32 MiB file is not copied once more to be sent.
"""

from __future__ import annotations

import argparse
import collections
import fcntl
import io
import json
import os
import select
import signal
import struct
import subprocess
import sys
import tarfile
import threading
import time
from typing import BinaryIO

if __package__:  # imported on the host as agentevo.sandbox.sandboxd
    from agentevo import procs
else:  # run as /opt/agentevo/sandboxd.py in the image: procs.py lies beside it, on sys.path[0]
    import procs  # type: ignore[no-redef]

_HEADER = struct.Struct(">I")
MAX_HEADER_BYTES = 1 << 20

# Commands start with this environment plus what the host names for them: never the host's own.
BASE_ENV = {
    "PATH": "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/workspace",
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
}
KILL_GRACE_SECONDS = 1.0
# A fork bomb keeps adding members to a command's group while we signal it: repeat this often.
KILL_ROUNDS, KILL_PAUSE_SECONDS = 50, 0.01
# The stdio pipes the engine gives us hold 64 KiB; each refill waits for the engine's copier to be
# scheduled, which on a busy host is what limits a large transfer. 1 MiB is Linux's default cap
# for an unprivileged process (/proc/sys/fs/pipe-max-size).
PIPE_BYTES = 1 << 20
# tarfile copies a member in 16 KiB steps by default.
TAR_COPY_BYTES = 1 << 20
# After the main process exits, leftover writers holding the pipe get this long before we stop reading.
DRAIN_SECONDS = 0.5


def encode_header(header: dict, size: int) -> bytes:
    """The start of a frame whose payload of ``size`` bytes follows it (``size`` goes into the header)."""
    raw = json.dumps(dict(header, size=size), separators=(",", ":")).encode()
    return _HEADER.pack(len(raw)) + raw


def write_frame(stream: BinaryIO, header: dict, payload: bytes | memoryview = b"") -> None:
    """Write one frame: the header, then the payload as it is (no joined copy)."""
    for part in (encode_header(header, len(payload)), payload):
        view = memoryview(part)
        while len(view):  # an unbuffered stream (python3 -u) may take part of a write, e.g. after a signal
            view = view[stream.write(view) or 0 :]


def read_exact(stream: BinaryIO, n: int) -> bytes:
    """Read exactly ``n`` bytes or raise EOFError."""
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("channel closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO) -> tuple[dict, bytes]:
    """Read one frame from a blocking binary stream."""
    (length,) = _HEADER.unpack(read_exact(stream, _HEADER.size))
    if length > MAX_HEADER_BYTES:
        raise ValueError(f"frame header of {length} bytes is too large")
    header = json.loads(read_exact(stream, length))
    payload = read_exact(stream, header.get("size", 0)) if header.get("size") else b""
    return header, payload


class CappedBuffer:
    """Keeps the first and last ``limit/2`` bytes of a stream and counts what falls between."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit - limit // 2
        self.tail_limit = limit // 2
        self.head = bytearray()
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_len = 0
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail.append(data)
        self.tail_len += len(data)
        while self.tail_len > self.tail_limit:
            excess = self.tail_len - self.tail_limit
            first = self.tail[0]
            if len(first) <= excess:
                self.tail.popleft()
                self.tail_len -= len(first)
                self.dropped += len(first)
            else:
                self.tail[0] = first[excess:]
                self.tail_len -= excess
                self.dropped += excess

    def parts(self) -> tuple[bytes, bytes]:
        return bytes(self.head), b"".join(self.tail)


class Reaper:
    """Collects every child's exit status, orphans included: the supervisor is PID 1."""

    MAX_KEPT = 4096

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.statuses: dict[int, int] = {}
        threading.Thread(target=self._run, name="reaper", daemon=True).start()

    def spawned(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def wait(self, pid: int, timeout: float) -> int | None:
        """The exit code of ``pid`` once it has exited, waiting at most ``timeout``; else None."""
        with self.cond:
            if pid not in self.statuses:
                self.cond.wait_for(lambda: pid in self.statuses, timeout)
            status = self.statuses.pop(pid, None)
        return None if status is None else os.waitstatus_to_exitcode(status)

    def _run(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                with self.cond:
                    self.cond.wait(0.5)
                continue
            with self.cond:
                self.statuses[pid] = status
                while len(self.statuses) > self.MAX_KEPT:  # orphans nobody asks about
                    self.statuses.pop(next(iter(self.statuses)))
                self.cond.notify_all()


def run_command(req: dict, reaper: Reaper) -> tuple[dict, bytes]:
    """Run one shell command in its own process group, capped in time and output."""
    timeout = float(req.get("timeout") or 0)
    inner = ["bash", "-c", req["cmd"]]
    if timeout > 0:
        inner = ["timeout", "-k", f"{KILL_GRACE_SECONDS}s", f"{timeout}s", *inner]
    # Commands volunteer for the OOM killer first, so a memory hog never takes the supervisor down.
    argv = ["/bin/sh", "-c", 'echo 1000 >/proc/self/oom_score_adj 2>/dev/null; exec "$@"', "sh", *inner]
    env = dict(BASE_ENV)
    env.update(req.get("env") or {})
    buf = CappedBuffer(int(req.get("max_output_bytes") or 1_000_000))
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=req.get("cwd") or "/workspace",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return {"ok": False, "error": f"cannot start command: {exc}", "kind": type(exc).__name__}, b""
    reaper.spawned()
    assert proc.stdout is not None  # stdout=PIPE
    deadline = start + timeout + KILL_GRACE_SECONDS + 0.5 if timeout > 0 else None
    fd = proc.stdout.fileno()
    fd_open = True
    timed_out = False
    exit_code = None
    drain_until: float | None = None
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline and not timed_out:
            timed_out = True
            procs.kill_group(proc.pid, rounds=KILL_ROUNDS, pause=KILL_PAUSE_SECONDS)
            drain_until = now + DRAIN_SECONDS
        if exit_code is None:
            exit_code = reaper.wait(proc.pid, 0)
        if exit_code is not None and drain_until is None:
            # The command is done: whatever it left running in its group goes with it.
            procs.kill_group(proc.pid, rounds=KILL_ROUNDS, pause=KILL_PAUSE_SECONDS)
            drain_until = now + DRAIN_SECONDS
        if exit_code is not None and drain_until is not None and (now >= drain_until or not fd_open):
            break
        wait = 0.05
        if deadline is not None and not timed_out:
            wait = max(0.0, min(wait, deadline - now))
        if fd_open:
            ready, _, _ = select.select([fd], [], [], wait)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    buf.feed(chunk)
                else:
                    fd_open = False
        elif exit_code is None:
            exit_code = reaper.wait(proc.pid, wait)
    proc.stdout.close()
    proc.returncode = exit_code  # the reaper owns waiting; this keeps Popen from waiting again
    elapsed = time.monotonic() - start
    if timeout > 0 and elapsed >= timeout and exit_code in (124, 137, -9):
        timed_out = True
    head, tail = buf.parts()
    return (
        {
            "ok": True,
            "exit_code": exit_code,
            "timed_out": timed_out,
            "dropped": buf.dropped,
            "head_len": len(head),
            "elapsed": elapsed,
        },
        head + tail,
    )


def _extract(tar: tarfile.TarFile, dest: str) -> None:
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
    else:  # Python builds without extraction filters; the sandbox itself still bounds the damage.
        tar.extractall(dest)


def handle(req: dict, payload: bytes, reaper: Reaper) -> tuple[dict, bytes | memoryview]:
    """Dispatch one request; errors become error responses, never a dead supervisor."""
    op = req.get("op")
    try:
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}, b""
        if op == "exec":
            return run_command(req, reaper)
        if op == "write_file":
            path = req["path"]
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(payload)
            os.chmod(path, int(req.get("mode", 0o644)))
            return {"ok": True}, b""
        if op == "read_file":
            with open(req["path"], "rb") as fh:
                return {"ok": True}, fh.read()
        if op == "put_tar":
            os.makedirs(req["dest"], exist_ok=True)
            with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
                _extract(tar, req["dest"])
            return {"ok": True}, b""
        if op == "get_tar":
            path = req["path"].rstrip("/") or "/"
            if not os.path.exists(path):
                raise FileNotFoundError(f"no such file or directory: {path}")
            out = io.BytesIO()
            # copybufsize is TarFile's own keyword, which typeshed's open() does not list.
            with tarfile.open(fileobj=out, mode="w", copybufsize=TAR_COPY_BYTES) as tar:  # type: ignore[call-overload]
                tar.add(path, arcname=req.get("arcname") or os.path.basename(path) or ".")
            return {"ok": True}, out.getbuffer()  # the tar as it lies in memory: no copy
        return {"ok": False, "error": f"unknown op {op!r}", "kind": "ValueError"}, b""
    except Exception as exc:  # noqa: BLE001 - reported to the host, which raises it there
        return {"ok": False, "error": str(exc), "kind": type(exc).__name__}, b""


def _harden_self() -> None:
    # Commands run as our uid: without this they could open /proc/1/fd/{0,1} to steal or forge frames.
    procs.make_nondumpable()
    # As PID 1 we only receive signals we handle. A no-op handler (not SIG_IGN, which children
    # would inherit) keeps Ctrl-C-style signals from commands from ending the supervisor.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda *_: None)


def _widen_pipes(*fds: int) -> None:
    """Give our stdio pipes ``PIPE_BYTES`` each (best effort: a file or a socket is left as it is)."""
    for fd in fds:
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass


def serve(inp: BinaryIO, out: BinaryIO, ttl: float) -> None:
    """Answer requests until the host closes the channel or the time to live runs out."""
    lock = threading.Lock()
    reaper = Reaper()

    def reply(req_id: int, header: dict, payload: bytes | memoryview) -> None:
        with lock:
            write_frame(out, dict(header, id=req_id), payload)
            out.flush()

    def work(req: dict, payload: bytes) -> None:
        header, body = handle(req, payload, reaper)
        reply(req.get("id", 0), header, body)

    if ttl > 0:
        # Outlive no owner: past the TTL the container ends even if the host forgot it.
        timer = threading.Timer(ttl, os._exit, (3,))
        timer.daemon = True
        timer.start()
    while True:
        try:
            req, payload = read_frame(inp)
        except EOFError:
            return
        try:
            threading.Thread(target=work, args=(req, payload), daemon=True).start()
        except RuntimeError as exc:  # no thread left under the pids limit: answer inline
            reply(
                req.get("id", 0), {"ok": False, "error": f"supervisor busy: {exc}", "kind": "BusyError"}, b""
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ttl", type=float, default=0, help="seconds before the sandbox ends itself")
    args = parser.parse_args()
    _harden_self()
    _widen_pipes(sys.stdin.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, sys.stdout.buffer, args.ttl)
    # Threads may still be running commands; leaving through os._exit kills them with us.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
