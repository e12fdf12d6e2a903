"""Sandboxes run side by side, and requests inside one sandbox do not queue behind each other."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from agentevo.sandbox import AsyncSandbox, Sandbox


def _job(i: int) -> tuple[str, str]:
    with Sandbox.start() as sb:
        sb.write_file("/workspace/n.txt", str(i))
        out = sb.exec("python3 -c \"print(int(open('n.txt').read()) ** 2)\"").output.strip()
        return sb.name, out


def test_eight_sandboxes_in_parallel_threads(sandbox_image):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(_job, range(8)))
    assert [out for _, out in results] == [str(i * i) for i in range(8)]
    assert len({name for name, _ in results}) == 8


def test_eight_async_sandboxes(sandbox_image):
    async def one(i: int) -> str:
        async with await AsyncSandbox.start() as sb:
            await sb.write_file("/workspace/i", str(i))
            return (await sb.exec("cat /workspace/i")).output

    async def main() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(8)))

    assert asyncio.run(main()) == [str(i) for i in range(8)]


def test_concurrent_commands_in_one_sandbox_overlap(sandbox_image):
    async def main() -> list[float]:
        async with await AsyncSandbox.start() as sb:
            results = await asyncio.gather(*(sb.exec(f"sleep 1; echo {i}") for i in range(6)))
            assert [r.output.strip() for r in results] == [str(i) for i in range(6)]
            return [r.elapsed for r in results]

    loop_start = asyncio.run(main())
    # Serialised, six one-second sleeps would each see up to 6 s of queueing; overlapped, each is ~1 s.
    assert max(loop_start) < 3


def test_pool_serves_asyncio_code(sandbox_image):
    from agentevo.sandbox import SandboxPool

    async def main(pool: SandboxPool) -> list[str]:
        async def one(i: int) -> str:
            async with await pool.acquire_async() as sb:
                return (await sb.exec(f"echo {i}")).output.strip()

        return await asyncio.gather(*(one(i) for i in range(3)))

    with SandboxPool(size=2) as pool:
        assert asyncio.run(main(pool)) == ["0", "1", "2"]
