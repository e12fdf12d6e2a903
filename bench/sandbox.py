"""Benchmark: agentevo sandboxes against the raw ``docker`` CLI doing the same work.

Run ``.venv/bin/python bench/sandbox.py [--quick] [--json-out PATH]``. Prints a table and the
detail JSON on stdout and writes the JSON to ``bench/results/sandbox-<timestamp>.json`` (or PATH).
Both sides use the same image and, where Docker allows it, the same hardened container profile.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table
from stats import stats, write_report  # bench/ is sys.path[0] when run as a script

from agentevo.runs import new_run_id
from agentevo.sandbox import Sandbox, SandboxConfig, SandboxPool, images
from agentevo.sandbox.docker_host import LABEL_RUN, container_kwargs, docker_client

# A short TTL: the expires label (and the supervisor's own timer) end anything a crash leaves behind.
CONFIG = SandboxConfig(ttl_seconds=600)
POOL_SIZE = 2
CLI_TIMEOUT = 60.0
MiB = 1 << 20
FULL = dict(start=8, pool=10, exec=50, transfer=5)
QUICK = dict(start=4, pool=5, exec=20, transfer=2)
EXEC_WARMUP = 3
READY_TRIES = 50  # raw containers: exec attempts before "never became ready"
FOOTNOTE_CP = (
    "docker cp (and the SDK's get_archive under it) cannot reach a tmpfs or write a read-only root, so the "
    "raw transfer container drops --read-only and uses a directory /data on its (overlayfs) root; agentevo "
    "writes to its /workspace tmpfs."
)
FOOTNOTE_POOL = "There is no raw pool: the pool rows compare with the raw cold start (docker run + exec)."
TAR_LABEL = "32 MiB file"  # also fetched as a tar: get_tar against the SDK's get_archive, no CLI in the way

log = Console(stderr=True)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Milliseconds ``fn`` took, and what it returned."""
    t0 = time.perf_counter()
    value = fn()
    return (time.perf_counter() - t0) * 1000, value


# -- raw docker side ----------------------------------------------------------------------------


def docker_cli(*args: str) -> str:
    """Run one docker CLI command; raise with its stderr if it fails."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=CLI_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:2])} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def hardened_run_flags(run_id: str, *, read_only: bool = True) -> list[str]:
    """``docker run`` flags mirroring ``container_kwargs``, so both sides get the same profile.

    Derived from the project's own spec rather than typed out, so the two cannot drift apart.
    """
    kw = container_kwargs(CONFIG, images.image_tag("python"), run_id)
    flags = [f"--label={k}={v}" for k, v in kw["labels"].items()]
    flags += [f"--hostname={kw['hostname']}", f"--user={kw['user']}", f"--workdir={kw['working_dir']}"]
    flags += [f"--env={k}={v}" for k, v in kw["environment"].items()]
    flags += [f"--network={kw['network_mode']}"] + (["--read-only"] if read_only and kw["read_only"] else [])
    flags += [f"--tmpfs={path}:{opts}" for path, opts in kw["tmpfs"].items()]
    flags += [f"--cap-drop={cap}" for cap in kw["cap_drop"]] + [f"--cap-add={c}" for c in kw["cap_add"] or []]
    flags += [f"--security-opt={opt}" for opt in kw["security_opt"]]
    flags += [f"--pids-limit={kw['pids_limit']}", f"--memory={kw['mem_limit']}"]
    flags += [f"--memory-swap={kw['memswap_limit']}"]
    flags += [f"--cpus={kw['nano_cpus'] / 1e9}", f"--log-driver={kw['log_config']['type']}"]
    flags += [f"--ulimit={u.name}={u.soft}:{u.hard}" for u in kw["ulimits"]]
    return flags


def raw_start(run_id: str, *, read_only: bool = True) -> str:
    """``docker run -d`` then ``docker exec true`` until it succeeds; returns the container id."""
    flags = hardened_run_flags(run_id, read_only=read_only)
    cid = docker_cli("run", "-d", *flags, images.image_tag("python"), "sleep", "300")
    for _ in range(READY_TRIES):
        probe = subprocess.run(["docker", "exec", cid, "true"], capture_output=True, timeout=CLI_TIMEOUT)
        if probe.returncode == 0:
            return cid
        time.sleep(0.01)
    raw_remove(cid)
    raise RuntimeError(f"raw container {cid[:12]} never accepted an exec")


def raw_remove(cid: str) -> None:
    """Force-remove a raw container (running or not); a missing one is fine."""
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=CLI_TIMEOUT)


@contextlib.contextmanager
def raw_container(run_id: str, *, read_only: bool = True) -> Iterator[str]:
    """A ready raw container for the duration of a ``with`` block."""
    cid = raw_start(run_id, read_only=read_only)
    try:
        yield cid
    finally:
        raw_remove(cid)


# -- measurements -------------------------------------------------------------------------------


def bench_cold_start(run_id: str, n: int) -> tuple[list[float], list[float]]:
    """Sandbox.start() vs docker run + first exec, alternating so drift hits both sides alike."""
    ours, raw = [], []
    for i in range(n + 1):  # sample 0 is an untimed warm-up (page cache, engine caches)
        ms, sb = timed(lambda: Sandbox.start(CONFIG, run_id=run_id))
        sb.close()
        ms_raw, cid = timed(lambda: raw_start(run_id))
        raw_remove(cid)
        if i:
            ours.append(ms)
            raw.append(ms_raw)
    return ours, raw


def bench_pool(run_id: str, n: int) -> tuple[list[float], list[float]]:
    """pool.acquire() on a full pool; also acquire + first exec, proving the sandbox is live."""
    acquire, first_exec = [], []
    with SandboxPool(CONFIG, size=POOL_SIZE, run_id=run_id) as pool:
        for _ in range(n):
            if not pool.wait_ready(60):
                raise RuntimeError(f"pool did not fill: {pool.last_error!r}")
            ms, sb = timed(pool.acquire)
            try:
                ms_exec, result = timed(lambda sb=sb: sb.exec("true"))
                assert result.ok, result
            finally:
                sb.close()
            acquire.append(ms)
            first_exec.append(ms + ms_exec)
    return acquire, first_exec


def sample(fn: Callable[[], object], n: int, warmup: int = 0) -> list[float]:
    """``n`` timings of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return [timed(fn)[0] for _ in range(n)]


def bench_exec(run_id: str, n: int) -> dict[str, list[float]]:
    """One no-op command: agentevo channel vs docker exec CLI vs docker SDK exec_run.

    Also keeps the supervisor's own ``elapsed`` for each agentevo call: the rest of the round trip
    is the channel (host, dockerd, shim), which tells where a slow exec spends its time.
    """
    inside: list[float] = []

    def cli() -> None:
        subprocess.run(["docker", "exec", cid, "true"], check=True, capture_output=True, timeout=CLI_TIMEOUT)

    def sdk() -> None:
        assert container.exec_run(["true"]).exit_code == 0

    def ours() -> None:
        result = sb.exec("true")
        assert result.ok, result
        inside.append(result.elapsed * 1000)

    with Sandbox.start(CONFIG, run_id=run_id) as sb, raw_container(run_id) as cid:
        container = docker_client().containers.get(cid)
        timings = {
            "agentevo": sample(ours, n, EXEC_WARMUP),
            "docker exec (CLI)": sample(cli, n, EXEC_WARMUP),
            "docker SDK exec_run": sample(sdk, n, EXEC_WARMUP),
        }
    timings["agentevo in-container"] = inside[EXEC_WARMUP:]
    return timings


def make_inputs(root: Path) -> dict[str, tuple[Path, int]]:
    """The random 1 MiB and 32 MiB files and a directory of 500 x 4 KiB files."""
    inputs = {}
    for label, size in (("1 MiB file", MiB), ("32 MiB file", 32 * MiB)):
        path = root / label.replace(" ", "_")
        path.write_bytes(os.urandom(size))
        inputs[label] = (path, size)
    tree = root / "tree"
    tree.mkdir()
    for i in range(500):
        (tree / f"f{i:03d}.bin").write_bytes(os.urandom(4096))
    inputs["500 x 4 KiB dir"] = (tree, 500 * 4096)
    return inputs


def bench_transfer(run_id: str, n: int) -> dict[str, tuple[int, dict[str, list[float]]]]:
    """Both directions for each input: agentevo file/dir API vs docker cp; name -> (bytes, timings)."""
    out: dict[str, tuple[int, dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="agentevo-bench-") as tmp:
        root = Path(tmp)
        inputs = make_inputs(root)
        with Sandbox.start(CONFIG, run_id=run_id) as sb, raw_container(run_id, read_only=False) as cid:
            (root / "empty").mkdir()
            docker_cli("cp", str(root / "empty"), f"{cid}:/data")  # creates /data, untimed
            for label, (src, size) in inputs.items():
                out[f"upload {label}"] = size, upload(sb, cid, src, n)
                out[f"download {label}"] = size, download(sb, cid, src, root / "dl", n)
            src, size = inputs[TAR_LABEL]
            out[f"download {TAR_LABEL} as tar"] = size, download_tar(sb, cid, src, n)
    return out


def upload(sb: Sandbox, cid: str, src: Path, n: int) -> dict[str, list[float]]:
    """Host to sandbox: write_file / put_dir vs docker cp into /data."""
    if src.is_dir():
        ours = lambda: sb.put_dir(src, f"/workspace/{src.name}")
        raw = lambda: docker_cli("cp", f"{src}/.", f"{cid}:/data/{src.name}")
    else:
        data = src.read_bytes()  # agentevo takes bytes; reading the host file is not its cost
        ours = lambda: sb.write_file(f"/workspace/{src.name}", data)
        raw = lambda: docker_cli("cp", str(src), f"{cid}:/data/{src.name}")
    return {"agentevo": sample(ours, n), "docker cp": sample(raw, n)}


def download(sb: Sandbox, cid: str, src: Path, dest_root: Path, n: int) -> dict[str, list[float]]:
    """Sandbox to host: read_file / get_dir vs docker cp out of /data; each copy is checked once."""
    dest = dest_root / src.name

    def fresh() -> None:  # every sample lands in an empty place, outside the timing
        shutil.rmtree(dest_root, ignore_errors=True)
        dest_root.mkdir()

    def one(fn: Callable[[], object]) -> float:
        fresh()
        ms, value = timed(fn)
        check(src, dest, value)
        return ms

    if src.is_dir():
        ours = lambda: sb.get_dir(f"/workspace/{src.name}", dest)
        raw = lambda: docker_cli("cp", f"{cid}:/data/{src.name}/.", str(dest))
    else:
        ours = lambda: sb.read_file(f"/workspace/{src.name}")
        raw = lambda: docker_cli("cp", f"{cid}:/data/{src.name}", str(dest))
    result = {"agentevo": [one(ours) for _ in range(n)], "docker cp": [one(raw) for _ in range(n)]}
    shutil.rmtree(dest_root, ignore_errors=True)
    return result


def download_tar(sb: Sandbox, cid: str, src: Path, n: int) -> dict[str, list[float]]:
    """Sandbox to host as a tar stream in memory: get_tar vs the Docker SDK's get_archive (what docker cp uses)."""
    container = docker_client().containers.get(cid)
    expected = src.read_bytes()

    def ours() -> bytes:
        return sb.get_tar(f"/workspace/{src.name}")

    def raw() -> bytes:
        stream, _ = container.get_archive(f"/data/{src.name}")
        return b"".join(stream)

    for fn in (ours, raw):  # each side's bytes are checked once, outside the timing
        with tarfile.open(fileobj=io.BytesIO(fn())) as tar:
            member = tar.extractfile(src.name)
            assert member is not None and member.read() == expected, f"{fn.__name__}: different bytes"
    return {"agentevo": sample(ours, n), "SDK get_archive": sample(raw, n)}


def check(src: Path, dest: Path, value: object) -> None:
    """The bytes that came back are the bytes that went in."""
    if isinstance(value, bytes):
        assert value == src.read_bytes(), "read_file returned different bytes"
    elif src.is_dir():
        assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in src.iterdir()), "dir differs"
    else:
        assert dest.read_bytes() == src.read_bytes(), "docker cp returned different bytes"


# -- report -------------------------------------------------------------------------------------


def row(
    name: str,
    ours: list[float],
    raw: list[float],
    raw_label: str,
    *,
    size: int | None = None,
    target: str = "-",
    met: Callable[[dict, float], bool] | None = None,
) -> dict:
    """One comparison: stats of both sides, speedup (raw p50 / agentevo p50), target verdict."""
    a, r = stats(ours), stats(raw)
    speedup = r["p50"] / a["p50"]
    entry = {
        "measurement": name,
        "agentevo": a,
        "raw": r,
        "raw_label": raw_label,
        "speedup": speedup,
        "target": target,
        "met": met(a, speedup) if met else None,
    }
    if size is not None:  # throughput at the median time
        entry["bytes"] = size
        entry["agentevo"]["MiB_per_s_p50"] = size / MiB / (a["p50"] / 1000)
        entry["raw"]["MiB_per_s_p50"] = size / MiB / (r["p50"] / 1000)
    return entry


def machine_info() -> dict:
    """What the figures depend on: cores, kernel, Docker versions, image, host load."""
    client = docker_client()
    version = client.version()
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "docker_server": version.get("Version"),
        "docker_api": version.get("ApiVersion"),
        "docker_cli": docker_cli("version", "--format", "{{.Client.Version}}"),
        "storage_driver": client.info().get("Driver"),
        "image": images.image_tag("python"),
        # Other work on the host skews every figure; record how busy it was.
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def render(report: dict) -> Table:
    """The summary table: p50 of both sides (throughput for transfers), speedup, target verdict."""
    table = Table(title=f"agentevo sandbox vs raw docker ({report['mode']} mode, ms unless MiB/s)")
    for col in ("measurement", "agentevo p50", "raw p50", "speedup", "target", "met?"):
        table.add_column(col, justify="left" if col in ("measurement", "target") else "right")
    for r in report["results"]:
        if "bytes" in r:
            ours, raw = (f"{r[side]['MiB_per_s_p50']:.1f} MiB/s" for side in ("agentevo", "raw"))
        else:
            ours, raw = f"{r['agentevo']['p50']:.2f} ms", f"{r['raw']['p50']:.1f} ms"
        met = {None: "-", True: "[green]yes[/]", False: "[red]NO[/]"}[r["met"]]
        name = f"{r['measurement']}  [dim](raw: {r['raw_label']})[/]"
        table.add_row(name, ours, raw, f"{r['speedup']:.1f}x", r["target"], met)
    table.caption = " ".join(f"[{i}] {note}" for i, note in enumerate(report["footnotes"], 1))
    return table


def leftovers(run_id: str) -> list[str]:
    """Names of containers still carrying this run's label."""
    found = docker_client().containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
    return [c.name for c in found]


def run(quick: bool) -> dict:
    """Every measurement, in order, and the report built from them."""
    n = QUICK if quick else FULL
    run_id = "bench-" + new_run_id()
    images.ensure_image("python", client=docker_client())
    began = time.perf_counter()
    load_before = [round(x, 2) for x in os.getloadavg()]
    try:
        log.print("cold start ...")
        cold_ours, cold_raw = bench_cold_start(run_id, n["start"])
        log.print("warm pool ...")
        acquire, acquire_exec = bench_pool(run_id, n["pool"])
        log.print("exec round trip ...")
        execs = bench_exec(run_id, n["exec"])
        log.print("file transfer ...")
        transfers = bench_transfer(run_id, n["transfer"])
    finally:
        # Each measurement removes its own containers; this sweep catches what a failure skipped,
        # and a leftover after a clean run is a bug in the bench, reported by the assert below.
        left = leftovers(run_id)
        for name in left:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=CLI_TIMEOUT)
    assert not left, f"containers left behind: {left}"
    cold = "docker run + exec [2]"
    exec_row = row(
        "3. exec true",
        execs["agentevo"],
        execs["docker exec (CLI)"],
        "docker exec CLI",
        target="p50 < 30 ms, >= 5x",
        met=lambda a, s: a["p50"] < 30 and s >= 5,
    )
    exec_row["agentevo_in_container"] = stats(execs["agentevo in-container"])
    results = [
        row("1. cold start", cold_ours, cold_raw, "docker run + exec"),
        row(
            "2. warm pool acquire",
            acquire,
            cold_raw,
            cold,
            target="p50 < 50 ms",
            met=lambda a, s: a["p50"] < 50,
        ),
        row("2b. pool acquire + first exec", acquire_exec, cold_raw, cold),
        exec_row,
        row("3b. exec true", execs["agentevo"], execs["docker SDK exec_run"], "SDK exec_run"),
    ]
    for i, (name, (size, sides)) in enumerate(transfers.items(), 1):
        ours = sides.pop("agentevo")
        [(raw_label, raw)] = sides.items()
        results.append(row(f"4.{i} {name}", ours, raw, f"{raw_label} [1]", size=size))
    return {
        "mode": "quick" if quick else "full",
        "run_id": run_id,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runtime_s": round(time.perf_counter() - began, 1),
        "machine": {**machine_info(), "loadavg_at_start": load_before},
        "pool_size": POOL_SIZE,
        "exec_warmup": EXEC_WARMUP,
        "results": results,
        "footnotes": [FOOTNOTE_CP, FOOTNOTE_POOL],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    parser.add_argument("--json-out", type=Path, help="where to write the JSON (default bench/results/)")
    args = parser.parse_args()
    report = run(args.quick)
    Console(width=160).print(render(report))
    write_report(report, "sandbox", args.json_out)
    return 0 if all(r["met"] is not False for r in report["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
