"""Benchmark: MiniWoB++ episodes in agentevo's web sandbox against Playwright driving Chromium on the host.

Run ``.venv/bin/python bench/web.py [--episodes N] [--json-out PATH]``. Both sides run the same browser
code (``agentevo/web/browserd.py``: the same Chromium flags, page, guard and tree) and the same scripted
episode (reset ``click-button`` at a seed, observe, click the named button, read the reward):

* sandbox: ``WebEnv`` - the ``web`` container (no network, read-only, no capabilities), the browser
  server in it, the actions over the agent socket and the reward over the control socket, as in a run;
* host: ``browserd.Browser`` in this process with the host's Debian ``/usr/bin/chromium``, no container,
  no sockets - the obvious alternative.

Measured: browser start (sandbox: container + server + Chromium; host: Chromium), steps per second (an
observe or a click, with its new observation), and episodes per minute with 1 and 2 browsers at once.
Prints a table, then the JSON, and keeps the JSON in ``bench/results/web-<time>.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table
from stats import stats, write_report  # bench/ is sys.path[0] when run as a script

from agentevo.contract.browser import BrowserTools
from agentevo.files import default_cache_dir
from agentevo.sandbox import images
from agentevo.sandbox.recipes import recipe_dir
from agentevo.sandbox.wheelhouse import ensure_wheelhouse
from agentevo.web import browserd
from agentevo.web.env import WebEnv

TASK = "click-button"
HOST_CHROMIUM = Path("/usr/bin/chromium")


class Side:
    """One browser driven one way: ``reset``, ``observe``, ``click``, ``result``."""

    start_s: float

    def reset(self, seed: int) -> None: ...
    def observe(self) -> dict: ...
    def click(self, aid: int) -> dict: ...
    def result(self) -> dict: ...
    def close(self) -> None: ...


class SandboxSide(Side):
    def __init__(self) -> None:
        t0 = time.perf_counter()
        self.env = WebEnv.start()
        self.tools = BrowserTools(self.env.agent_socket)
        self.start_s = time.perf_counter() - t0

    def reset(self, seed: int) -> None:
        self.env.reset(TASK, seed)

    def observe(self) -> dict:
        return self.tools.observe().__dict__

    def click(self, aid: int) -> dict:
        return self.tools.click(aid).__dict__

    def result(self) -> dict:
        return self.env.result().model_dump()

    def close(self) -> None:
        self.tools.close()
        self.env.close()


class HostSide(Side):
    def __init__(self, pages: Path) -> None:
        t0 = time.perf_counter()
        self.browser = browserd.Browser(pages)
        self.start_s = time.perf_counter() - t0

    def reset(self, seed: int) -> None:
        self.browser.reset(TASK, seed, 600.0, 6000)

    def observe(self) -> dict:
        return self.browser.act("observe", {})

    def click(self, aid: int) -> dict:
        return self.browser.act("click", {"id": aid})

    def result(self) -> dict:
        return self.browser.result()

    def close(self) -> None:
        self.browser.close()


def episode(side: Side, seed: int, step_ms: list[float]) -> bool:
    """The scripted episode; True when the page scored it a success."""
    side.reset(seed)
    t0 = time.perf_counter()
    obs = side.observe()
    step_ms.append((time.perf_counter() - t0) * 1000)
    name = re.findall(r'"([^"]*)"', obs["goal"])[0]
    aid = next(
        int(m.group(1)) for m in re.finditer(r'\[(\d+)\] button "([^"]*)"', obs["tree"]) if m.group(2) == name
    )
    t0 = time.perf_counter()
    side.click(aid)
    step_ms.append((time.perf_counter() - t0) * 1000)
    result = side.result()
    return bool(result["done"] and result["raw_reward"] > 0)


def throughput(make: Callable[[], Side], episodes: int, parallel: int) -> dict:
    """``episodes`` episodes over ``parallel`` browsers, each started (untimed) and used in its own thread
    (Playwright's sync API stays on the thread that made it); episodes per minute of wall time."""
    step_ms: list[float] = []
    won: list[bool] = []
    starts: list[float] = []
    lock = threading.Lock()
    ready = threading.Barrier(parallel + 1)

    def work(seeds: list[int]) -> None:
        side = make()
        mine: list[float] = []
        try:
            ready.wait()
            outcomes = [episode(side, seed, mine) for seed in seeds]
        finally:
            side.close()
        with lock:
            starts.append(side.start_s)
            step_ms.extend(mine)
            won.extend(outcomes)

    workers = [
        threading.Thread(target=work, args=(list(range(i, episodes, parallel)),)) for i in range(parallel)
    ]
    for thread in workers:
        thread.start()
    ready.wait()
    t0 = time.perf_counter()
    for thread in workers:
        thread.join()
    wall = time.perf_counter() - t0
    return {
        "parallel": parallel,
        "episodes": len(won),
        "won": sum(won),
        "wall_s": wall,
        "episodes_per_min": len(won) / wall * 60,
        "steps_per_s": len(step_ms) / (sum(step_ms) / 1000) * parallel if step_ms else 0.0,
        "step_ms": stats(step_ms),
        "start_s": starts,
    }


def host_pages(folder: Path) -> Path:
    """The MiniWoB++ pages from the web image's own wheelhouse (the same miniwob wheel the image installs)."""
    wheels = ensure_wheelhouse(recipe_dir() / "web" / "requirements.txt", lambda _: None, default_cache_dir())
    (wheel,) = wheels.glob("miniwob-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder, [n for n in archive.namelist() if n.startswith("miniwob/html/")])
    return folder / "miniwob" / "html"


def render(report: dict) -> Table:
    table = Table(
        title=f"MiniWoB {TASK}: agentevo web sandbox vs Playwright on the host ({report['episodes']} episodes)"
    )
    for column in ("side", "browser start s", "parallel", "episodes/min", "steps/s", "step p50 ms", "won"):
        table.add_column(column, justify="left" if column == "side" else "right")
    for name in ("sandbox", "host"):
        for row in report[name]:
            table.add_row(
                name, f"{sum(row['start_s']) / len(row['start_s']):.2f}", str(row["parallel"]),
                f"{row['episodes_per_min']:.1f}", f"{row['steps_per_s']:.1f}", f"{row['step_ms']['p50']:.0f}",
                f"{row['won']}/{row['episodes']}",
            )  # fmt: skip
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10, help="episodes per side and parallelism")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if not HOST_CHROMIUM.exists():
        print("the host needs Debian's chromium: run `bash scripts/ensure-system.sh`", file=sys.stderr)
        return 2
    images.ensure_image("web")
    report: dict = {"episodes": args.episodes, "sandbox": [], "host": []}
    with tempfile.TemporaryDirectory() as tmp:
        pages = host_pages(Path(tmp))
        for parallel in (1, 2):  # the two sides alternate, so drift in the machine's load hits both alike
            report["sandbox"].append(throughput(SandboxSide, args.episodes, parallel))
            report["host"].append(throughput(lambda: HostSide(pages), args.episodes, parallel))
    report["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()}
    Console(width=160).print(render(report))
    write_report(report, "web", args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
