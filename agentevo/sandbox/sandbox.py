"""A hardened Docker sandbox: run commands and move files, sync or async."""

from __future__ import annotations

import asyncio
import atexit
import io
import os
import tarfile
import time
import weakref
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import docker

from agentevo.runs import new_run_id
from agentevo.sandbox.channel import Channel
from agentevo.sandbox.config import SandboxConfig
from agentevo.sandbox.docker_host import container_kwargs, docker_client, engine_errors
from agentevo.sandbox.errors import SandboxDied, SandboxOperationError
from agentevo.sandbox.images import resolve_image
from agentevo.sandbox.provider import ExecResult, FileContent
from agentevo.sandbox.sandboxd import KILL_GRACE_SECONDS

# How long past a command's own timeout the host waits before declaring the sandbox hung.
HOST_BACKSTOP_SECONDS = 10.0
FILE_OP_TIMEOUT_SECONDS = 300.0
START_TIMEOUT_SECONDS = 60.0

_live: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def files_tar(files: Mapping[str, FileContent]) -> bytes:
    """A tar stream of in-memory files, in name order; the one way files made on the host enter a sandbox."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in sorted(files.items()):
            data, mode = content if isinstance(content, tuple) else (content, 0o644)
            payload = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(payload), int(time.time())
            info.mode = 0o755 if mode & 0o100 else 0o644
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _elision(dropped: int) -> bytes:
    return f"\n[... {dropped:,} bytes of output dropped ...]\n".encode()


class Sandbox:
    """One running hardened container, driven through its in-container supervisor: the Docker provider's
    ``RunningSandbox``. Engine failures are raised as ``SandboxUnavailable``, never as the Docker SDK's own.

    Use ``Sandbox.start()`` (or a ``SandboxPool``) and close it, ideally as a context manager::

        with Sandbox.start() as sb:
            print(sb.exec("python3 -c 'print(6*7)'").output)
    """

    def __init__(
        self,
        container: Any,
        channel: Channel,
        config: SandboxConfig,
        run_id: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.container = container
        self.config = config
        self.run_id = run_id
        self.env = dict(env or {})
        self.started_at = time.time()
        self._channel = channel
        self._closed = False
        _live.add(self)

    @classmethod
    def start(
        cls,
        config: SandboxConfig | None = None,
        *,
        run_id: str | None = None,
        client: docker.DockerClient | None = None,
        env: dict[str, str] | None = None,
        gateway_socket: str | Path | None = None,
        binds: Mapping[Path, str] | None = None,
    ) -> Sandbox:
        """Create, start and wait for a sandbox; the container is removed if anything fails.

        ``env`` is given to every command (on top of ``config.pass_env``); ``gateway_socket`` is the
        LLM gateway's Unix socket on the host; ``binds`` (host path -> path inside) are the other host paths a
        caller names on purpose (a web episode's browser sockets). No other host path reaches a sandbox.
        """
        config = config or SandboxConfig()
        run_id = run_id or new_run_id()
        socket_path = Path(gateway_socket) if gateway_socket else None
        with engine_errors("start a sandbox"):
            client = client or docker_client()
            kwargs = container_kwargs(config, resolve_image(config.image, client), run_id, socket_path, binds)
            kwargs.pop("detach")
            container = client.containers.create(**kwargs)
            try:
                sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
                container.start()
                channel = Channel(getattr(sock, "_sock", sock), container.name)
                sandbox = cls(container, channel, config, run_id, env)
                sandbox._request({"op": "ping"}, timeout=START_TIMEOUT_SECONDS)
            except BaseException:
                _remove(container)
                raise
        return sandbox

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def alive(self) -> bool:
        return not self._closed and self._channel.closed is None

    def exec(
        self,
        cmd: str,
        *,
        cwd: str = "/workspace",
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        max_output_bytes: int | None = None,
    ) -> ExecResult:
        """Run ``cmd`` with bash. The process group is killed at ``timeout`` seconds, inside the container."""
        future, deadline = self._submit_exec(cmd, cwd, env, timeout, max_output_bytes)
        return self._exec_result(*self._wait(future, deadline))

    def write_file(self, path: str, data: str | bytes, mode: int = 0o644) -> None:
        """Write one file, creating its parent directories."""
        payload = data.encode() if isinstance(data, str) else data
        self._request({"op": "write_file", "path": path, "mode": mode}, payload)

    def read_file(self, path: str) -> bytes:
        """Read one file's bytes."""
        return self._request({"op": "read_file", "path": path})[1]

    def put_tar(self, tar_bytes: bytes, dest: str = "/workspace") -> None:
        """Extract a tar stream into ``dest``."""
        self._request({"op": "put_tar", "dest": dest}, tar_bytes)

    def put_files(self, files: Mapping[str, FileContent], dest: str = "/workspace") -> None:
        """Write in-memory files (relative name -> content) under ``dest`` in one round trip."""
        self.put_tar(files_tar(files), dest)

    def get_tar(self, path: str) -> bytes:
        """A tar stream of ``path`` (file or directory), its last component as the top entry."""
        return self._request({"op": "get_tar", "path": path})[1]

    def put_dir(self, local_dir: str | Path, dest: str = "/workspace") -> None:
        """Copy the contents of a host directory into ``dest``."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(str(local_dir), arcname=".")
        self.put_tar(buf.getvalue(), dest)

    def get_dir(self, path: str, local_dir: str | Path) -> Path:
        """Copy the contents of directory ``path`` into a host directory and return it."""
        target = Path(local_dir)
        target.mkdir(parents=True, exist_ok=True)
        data = self._request({"op": "get_tar", "path": path, "arcname": "."})[1]
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(target, filter="data")
        return target

    def close(self) -> None:
        """Stop and remove the container. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        _live.discard(self)
        self._channel.close()
        _remove(self.container)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sandbox({self.name}, run={self.run_id}, alive={self.alive})"

    # -- internals shared with AsyncSandbox ---------------------------------------------------

    def _submit_exec(
        self,
        cmd: str,
        cwd: str,
        env: dict[str, str] | None,
        timeout: float | None,
        max_output_bytes: int | None,
    ) -> tuple[Future, float]:
        timeout = self.config.exec_timeout if timeout is None else timeout
        named = {name: os.environ[name] for name in self.config.pass_env if name in os.environ}
        header = {
            "op": "exec",
            "cmd": cmd,
            "cwd": cwd,
            "env": {**named, **self.env, **(env or {})},
            "timeout": timeout,
            "max_output_bytes": max_output_bytes or self.config.max_output_bytes,
        }
        return self._channel.submit(header), timeout + KILL_GRACE_SECONDS + HOST_BACKSTOP_SECONDS

    def _exec_result(self, header: dict, payload: bytes) -> ExecResult:
        dropped = header["dropped"]
        if dropped:
            cut = header["head_len"]
            payload = payload[:cut] + _elision(dropped) + payload[cut:]
        return ExecResult(
            exit_code=header["exit_code"],
            output=payload.decode(errors="replace"),
            truncated=dropped > 0,
            dropped_bytes=dropped,
            timed_out=header["timed_out"],
            elapsed=header["elapsed"],
        )

    def _request(
        self, header: dict, payload: bytes = b"", timeout: float = FILE_OP_TIMEOUT_SECONDS
    ) -> tuple[dict, bytes]:
        return self._wait(self._channel.submit(header, payload), timeout)

    def _wait(self, future: Future, timeout: float) -> tuple[dict, bytes]:
        try:
            header, payload = future.result(timeout)
        except FutureTimeout:
            # The supervisor should have answered long ago: treat the sandbox as hung and end it.
            self.close()
            raise SandboxDied(
                f"sandbox {self.name} did not answer within {timeout:.0f} s and was removed"
            ) from None
        return _checked(header, payload)


def _checked(header: dict, payload: bytes) -> tuple[dict, bytes]:
    if not header.get("ok"):
        raise SandboxOperationError(header.get("error", "unknown error"), header.get("kind", "Error"))
    return header, payload


def _remove(container: Any) -> None:
    with engine_errors(f"remove sandbox {container.name}"):
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: auto-remove already under way
                raise


class AsyncSandbox:
    """The asyncio face of ``Sandbox``: commands await the channel without holding a thread."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sync = sandbox

    @classmethod
    async def start(cls, config: SandboxConfig | None = None, *, run_id: str | None = None) -> AsyncSandbox:
        return cls(await asyncio.to_thread(Sandbox.start, config, run_id=run_id))

    @property
    def name(self) -> str:
        return self.sync.name

    async def exec(
        self,
        cmd: str,
        *,
        cwd: str = "/workspace",
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        max_output_bytes: int | None = None,
    ) -> ExecResult:
        """See ``Sandbox.exec``."""
        future, deadline = self.sync._submit_exec(cmd, cwd, env, timeout, max_output_bytes)
        try:
            header, payload = await asyncio.wait_for(asyncio.wrap_future(future), deadline)
        except TimeoutError:
            await asyncio.to_thread(self.sync.close)
            raise SandboxDied(
                f"sandbox {self.name} did not answer within {deadline:.0f} s and was removed"
            ) from None
        return self.sync._exec_result(*_checked(header, payload))

    async def write_file(self, path: str, data: str | bytes, mode: int = 0o644) -> None:
        await asyncio.to_thread(self.sync.write_file, path, data, mode)

    async def read_file(self, path: str) -> bytes:
        return await asyncio.to_thread(self.sync.read_file, path)

    async def put_dir(self, local_dir: str | Path, dest: str = "/workspace") -> None:
        await asyncio.to_thread(self.sync.put_dir, local_dir, dest)

    async def get_dir(self, path: str, local_dir: str | Path) -> Path:
        return await asyncio.to_thread(self.sync.get_dir, path, local_dir)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


@atexit.register
def _close_all() -> None:
    # Owner-exit cleanup; a SIGKILLed owner is covered by the supervisor seeing end of input.
    for sandbox in list(_live):
        try:
            sandbox.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass
