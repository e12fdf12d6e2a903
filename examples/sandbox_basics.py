"""Run untrusted code in a hardened sandbox: commands, files, timeouts, a warm pool, asyncio.

Run with ``python examples/sandbox_basics.py`` after ``make test`` or ``make demo`` (they build the image).
"""

import asyncio
import tempfile
from pathlib import Path

from agentevo import AsyncSandbox, Sandbox, SandboxConfig, SandboxPool


def basics() -> None:
    with Sandbox.start() as sb:
        sb.write_file("/workspace/hello.py", "import sys; print('hello from', sys.version.split()[0])")
        print(sb.exec("python hello.py").output, end="")

        slow = sb.exec("sleep 30", timeout=1)  # killed inside the container, not just abandoned
        print("timed out:", slow.timed_out, "exit code:", slow.exit_code)

        flood = sb.exec("yes | head -c 10000000", max_output_bytes=2000)
        print("kept", len(flood.output), "chars;", f"{flood.dropped_bytes:,}", "bytes dropped")

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "pkg").mkdir()
            (Path(tmp) / "pkg" / "data.txt").write_text("copied in\n")
            sb.put_dir(tmp, "/workspace/project")
            sb.exec("cat pkg/data.txt > pkg/copy.txt", cwd="/workspace/project")
            back = sb.get_dir("/workspace/project", Path(tmp) / "back")
            print((back / "pkg" / "copy.txt").read_text(), end="")


def pool() -> None:
    # Loosen nothing, tighten what a task needs: 256 MiB and 64 processes.
    config = SandboxConfig(memory="256m", pids=64, pool_size=2)
    with SandboxPool(config) as warm:
        warm.wait_ready()
        with warm.acquire() as sb:  # already started: no container start-up on this path
            print(sb.exec("nproc; free -m | head -2").output, end="")


async def concurrent() -> None:
    async with await AsyncSandbox.start() as sb:
        results = await asyncio.gather(*(sb.exec(f"sleep 1; echo job {i}") for i in range(4)))
        print([r.output.strip() for r in results], "in", max(r.elapsed for r in results).__round__(2), "s")


if __name__ == "__main__":
    basics()
    pool()
    asyncio.run(concurrent())
