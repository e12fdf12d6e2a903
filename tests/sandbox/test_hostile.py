"""The hostile battery: each attack is contained, and the sandbox (and machine) stay healthy afterwards."""

from __future__ import annotations

import socket
import threading

import pytest

from agentevo.sandbox import Sandbox, SandboxConfig, SandboxDied
from tests.conftest import HOSTILE


def assert_healthy(sb: Sandbox) -> None:
    result = sb.exec("echo still-alive", timeout=10)
    assert result.exit_code == 0 and result.output.strip() == "still-alive"


def count_processes(sb: Sandbox) -> int:
    return int(sb.exec("ps -e --no-headers | wc -l").output.strip())


def test_fork_bomb_is_contained(hostile):
    baseline = count_processes(hostile)
    result = hostile.exec(":(){ :|:& };:; sleep 2", timeout=8)
    assert result.exit_code != 0 or "Resource temporarily unavailable" in result.output
    assert_healthy(hostile)
    assert count_processes(hostile) == baseline


def test_memory_hog_is_killed_not_the_supervisor(hostile):
    result = hostile.exec("python3 -c \"x = b'x' * (600 * 1024 * 1024); print('allocated')\"", timeout=30)
    assert result.exit_code in (137, -9, 1), result
    assert "allocated" not in result.output
    assert_healthy(hostile)


@pytest.mark.parametrize("mount,size_mb", [("/workspace", 64), ("/tmp", 32)])
def test_disk_fill_hits_the_tmpfs_cap(hostile, mount, size_mb):
    fill = (
        f"for i in 1 2 3 4; do head -c 30M /dev/zero > {mount}/fill$i || break; done; df -m {mount} | tail -1"
    )
    result = hostile.exec(fill, timeout=30)
    assert "No space left on device" in result.output
    total_mb = int(result.output.strip().splitlines()[-1].split()[1])
    assert total_mb == size_mb
    assert (
        hostile.exec(f"rm -f {mount}/fill* && echo freed > {mount}/ok && cat {mount}/ok").output.strip()
        == "freed"
    )


def test_file_size_limit(hostile):
    result = hostile.exec("head -c 60M /dev/zero > /workspace/big; stat -c %s /workspace/big", timeout=30)
    assert result.exit_code == 0 or "File size limit exceeded" in result.output
    assert int(result.output.strip().splitlines()[-1]) == 48 * 1024 * 1024


def test_huge_stdout_is_capped_while_streaming(hostile):
    result = hostile.exec(
        "head -c 100000000 /dev/zero | tr '\\0' a; echo; echo THE-END", max_output_bytes=65536, timeout=60
    )
    assert result.exit_code == 0
    assert result.truncated
    kept = 65536
    assert result.dropped_bytes == 100_000_000 + len("\nTHE-END\n") - kept
    assert result.output.startswith("a" * 1000)
    assert result.output.rstrip().endswith("THE-END")  # the tail, where errors usually are, is kept
    assert f"{result.dropped_bytes:,} bytes of output dropped" in result.output
    assert len(result.output) < kept + 200


def test_infinite_loop_is_killed_inside_the_container(hostile):
    attack = "(sleep 900 &); trap '' TERM; while true; do : loop-marker-1; done"
    result = hostile.exec(attack, timeout=2)
    assert result.timed_out
    assert 2 <= result.elapsed < 8
    survivors = hostile.exec("pgrep -fc 'loop-marker-[1]'; pgrep -xc sleep", timeout=10).output.split()
    assert survivors == ["0", "0"]
    assert_healthy(hostile)


def test_background_leftovers_end_with_their_command(hostile):
    result = hostile.exec("sleep 900 & echo started", timeout=10)
    assert result.output.strip() == "started" and result.elapsed < 5
    assert hostile.exec("pgrep -xc sleep").output.strip() == "0"


def test_no_network_egress(hostile):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(3)
    port = listener.getsockname()[1]
    accepted = []

    def accept() -> None:
        try:
            accepted.append(listener.accept())
        except OSError:
            pass

    waiter = threading.Thread(target=accept)
    waiter.start()
    probe = (
        "python3 - <<'EOF'\n"
        "import os, socket\n"
        "print('interfaces', sorted(os.listdir('/sys/class/net')))\n"
        "print('routes', len(open('/proc/net/route').read().splitlines()) - 1)\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')\n"
        "except OSError as e:\n"
        "    print('refused', e.errno)\n"
        "EOF"
    )
    result = hostile.exec(probe, timeout=20)
    waiter.join(5)
    listener.close()
    assert "interfaces ['lo']" in result.output
    assert "routes 0" in result.output
    assert "refused" in result.output and "connected" not in result.output
    assert accepted == []


def test_cannot_write_outside_the_workspace(hostile):
    targets = ["/etc/x", "/usr/x", "/opt/venv/x", "/x", "/opt/agentevo/sandboxd.py"]
    result = hostile.exec(
        f"for p in {' '.join(targets)}; do touch $p 2>&1; done; touch /workspace/ok /tmp/ok && echo writable"
    )
    assert result.output.count("cannot touch") == len(targets)
    assert result.output.count("Read-only file system") == len(targets) - 1  # the last one: not our file
    assert "writable" in result.output


def test_host_environment_does_not_leak(monkeypatch, sandbox_image):
    monkeypatch.setenv("AGENTEVO_TEST_SECRET", "s3cr3t-host-value")
    monkeypatch.setenv("AGENTEVO_TEST_NAMED", "named-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-enter")
    config = SandboxConfig(pass_env=["AGENTEVO_TEST_NAMED"])
    with Sandbox.start(config) as sb:
        result = sb.exec("env; cat /proc/1/environ | tr '\\0' '\\n'", env={"EXPLICIT": "given"})
    assert "s3cr3t-host-value" not in result.output
    assert "sk-should-never-enter" not in result.output
    assert "AGENTEVO_TEST_NAMED=named-value" in result.output
    assert "EXPLICIT=given" in result.output


def test_privilege_escalation_fails(hostile):
    probe = (
        "grep -E '^(CapEff|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status; id -u; "
        "su root -c 'id -u' </dev/null 2>&1 | tail -1; "
        "unshare -Ur id -u 2>&1 | tail -1; "
        "python3 -c 'import os; os.setuid(0)' 2>&1 | tail -1; "
        "cp /bin/bash /workspace/b && chmod u+s /workspace/b && /workspace/b -p -c 'echo euid=$EUID'"
    )
    out = hostile.exec(probe, timeout=20).output
    assert "CapEff:\t0000000000000000" in out and "CapPrm:\t0000000000000000" in out
    assert "NoNewPrivs:\t1" in out
    assert "Seccomp:\t2" in out
    lines = out.splitlines()
    assert lines[4] == "1000"
    assert "\n0\n" not in f"\n{out}\n"  # no probe ever printed uid 0
    assert "PermissionError" in out
    assert "euid=1000" in out


def test_supervisor_cannot_be_forged_through_proc(hostile):
    # Commands share the supervisor's uid; it is non-dumpable, so its stdio is out of their reach.
    result = hostile.exec(
        "ls -l /proc/1/fd/ 2>&1; echo fake > /proc/1/fd/1 && echo forged; head -c1 /proc/1/fd/0 && echo stole"
    )
    assert "forged" not in result.output and "stole" not in result.output
    assert result.output.count("Permission denied") >= 2
    assert_healthy(hostile)


def test_supervisor_survives_kill_all_and_stop(hostile):
    attack = "sleep 900 & sleep 1; kill -KILL 1; kill -STOP 1; kill -INT 1; kill -TERM 1; kill -9 -1"
    assert hostile.exec(attack, timeout=10).exit_code != 0  # kill -1 takes down the command's `timeout` too
    assert hostile.exec("pgrep -xc sleep").output.strip() == "0"  # kill -1 reached everything it could...
    assert_healthy(hostile)  # ...but not the supervisor: PID 1 cannot be signalled from inside


def test_hung_sandbox_hits_the_host_backstop(docker, sandbox_image):
    sb = Sandbox.start(HOSTILE)
    try:
        docker.containers.get(sb.name).pause()  # freeze everything inside, supervisor included
        with pytest.raises(SandboxDied, match="did not answer"):
            sb.exec("echo never", timeout=1)
        assert not sb.alive
    finally:
        sb.close()
