"""A web environment on the host's side: the ``web`` sandbox, its browser server, and the control link.

The browser runs in its own hardened container (no network, read-only root, no capabilities), never
in the agent's. The host drives episodes (``reset``) and reads the reward (``result``) through the
control socket, which no agent container is given; agents get only ``agent_socket``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from pydantic import BaseModel

from agentevo.contract.browser import BrowserServerError, LineClient
from agentevo.sandbox import RunningSandbox, SandboxConfig, SandboxError, start_sandbox

BROWSERD_SOURCE = Path(__file__).with_name("browserd.py")
SOCKET_DIR_IN_SANDBOX = "/run/agentevo-web"
BROWSERD_IN_SANDBOX = "/tmp/browserd.py"
PAGES_IN_SANDBOX = "/opt/venv/lib/python3.11/site-packages/miniwob/html"
START_TIMEOUT_S = 180.0
# Longer than the server's own page-load limit, so a slow page is its error, not a lost connection.
CONTROL_TIMEOUT_S = 180.0
# Chromium renders in several processes: it may use both cores of a small machine (agents get one).
WEB_SANDBOX = SandboxConfig(
    image="web", memory="1g", pids=256, tmp_size="256m", cpus=float(min(2, os.cpu_count() or 1))
)


class WebResult(BaseModel):
    """What the page recorded for the episode: read by the host from its own connection, never from the agent."""

    done: bool
    raw_reward: float
    reward: float
    reason: str | None = None

    @property
    def success(self) -> bool:
        return self.done and self.raw_reward > 0


class WebEnv:
    """One running web sandbox. Use ``WebEnv.start()`` as a context manager; ``close`` stops everything."""

    def __init__(self, sandbox: RunningSandbox, folder: Path, server: threading.Thread, log: list) -> None:
        self.sandbox = sandbox
        self.folder = folder
        self._server = server
        self._server_log = log
        self.control = LineClient(folder / "control.sock", timeout=CONTROL_TIMEOUT_S)
        self.launch_seconds = float(self._control("info")["launch_seconds"])

    @property
    def agent_socket(self) -> Path:
        """The host path of the agent's socket: bind it into an agent's sandbox, nothing else."""
        return self.folder / "agent.sock"

    @classmethod
    def start(cls, config: SandboxConfig | None = None, *, run_id: str | None = None) -> WebEnv:
        """Start the web sandbox and its browser server; raises BrowserServerError if it does not come up."""
        config = config or WEB_SANDBOX
        folder = Path(tempfile.mkdtemp(prefix="agentevo-web-"))
        os.chown(folder, config.uid, config.gid)
        try:
            sandbox = start_sandbox(config, run_id=run_id, binds={folder: SOCKET_DIR_IN_SANDBOX})
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # e.g. the image is not built: leave nothing behind
            raise
        try:
            sandbox.write_file(BROWSERD_IN_SANDBOX, BROWSERD_SOURCE.read_bytes())
            log: list = []
            command = f"python {BROWSERD_IN_SANDBOX} --dir {SOCKET_DIR_IN_SANDBOX} --pages {PAGES_IN_SANDBOX}"
            server = threading.Thread(
                target=_serve,
                args=(sandbox, command, config.ttl_seconds, log),
                name=f"browserd-{sandbox.name}",
                daemon=True,
            )
            server.start()
            _wait_for(folder / "agent.sock", server, log)
            return cls(sandbox, folder, server, log)
        except BaseException:
            sandbox.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def reset(self, task: str, seed: int, *, max_seconds: float = 600.0, max_chars: int = 6000) -> dict:
        """Open the task's page and start a seeded episode; its goal and URL."""
        return self._control("reset", task=task, seed=seed, max_seconds=max_seconds, max_chars=max_chars)

    def result(self) -> WebResult:
        """The reward the page recorded for the current episode."""
        return WebResult.model_validate(self._control("result"))

    def _control(self, op: str, **args: object) -> dict:
        try:
            return self.control.request(op, **args)
        except BrowserServerError as exc:
            self._server.join(timeout=5)
            if self._server.is_alive() or not self._server_log:
                raise
            ended = self._server_log[0]
            raise BrowserServerError(
                f"{exc}; the browser server exited ({ended.exit_code}):\n{ended.output[-2000:]}"
            ) from None

    def close(self) -> None:
        """Stop the browser server and remove the sandbox and the socket folder. Safe to call twice."""
        try:
            self.control.request("close")
        except BrowserServerError:
            pass
        self.control.close()
        self._server.join(timeout=10)
        self.sandbox.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> WebEnv:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _serve(sandbox: RunningSandbox, command: str, timeout: float, log: list) -> None:
    """Run the browser server until it is told to close (or its sandbox is removed under it)."""
    try:
        log.append(sandbox.exec(command, cwd="/tmp", timeout=timeout))
    except SandboxError:
        pass  # closing the environment removes the sandbox: the server's end, not a fault


def _wait_for(socket_path: Path, server: threading.Thread, log: list) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not socket_path.exists():
        if not server.is_alive():
            output = log[0].output[-2000:] if log else "(no output)"
            raise BrowserServerError(f"the browser server exited before it listened:\n{output}")
        if time.monotonic() > deadline:
            raise BrowserServerError(f"the browser server did not listen within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.05)
