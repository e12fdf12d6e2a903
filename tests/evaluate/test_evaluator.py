"""The evaluator against the real sandbox: correct scoring, error kinds, gaming attempts, canonical suites.

Every evaluation runs in a fresh sandbox (from a warm pool); nothing is mocked.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentevo.evaluate import ErrorKind, Evaluator, workspace_files
from agentevo.evaluate.harness import RESULT_PREFIX
from agentevo.sandbox import SandboxConfig, SandboxPool
from agentevo.tasks.model import Task
from tests.conftest import BENCHDATA

ADD = Task(
    id="test/add",
    suite="test",
    instructions="Write add(a, b) in solution.py.",
    entry_point="add",
    test_setup="import math\nEXPECTED_SUM = 3",
    tests=[
        "assert add(1, 2) == EXPECTED_SUM",
        "assert add(-1, 1) == 0",
        "assert math.isclose(add(0.1, 0.2), 0.3)",
        "assert sorted(add([2], [1])) == [1, 2]",
    ],
    time_limit=3.0,
)
GOOD = "def add(a, b):\n    return a + b\n"
# Right for the 2nd and 4th tests only.
HALF = "def add(a, b):\n    return a + b if isinstance(a, list) or a < 0 else a * b\n"
WRONG = "def add(a, b):\n    return None\n"


@pytest.fixture(scope="module")
def pool(sandbox_image):
    with SandboxPool(SandboxConfig(pool_size=4)) as pool:
        yield pool


@pytest.fixture(scope="module")
def evaluator(pool) -> Evaluator:
    return Evaluator(pool=pool)


def fails(result, kind: ErrorKind | None = None) -> bool:
    ok = not result.passed and result.score < 1.0
    return ok and (kind is None or result.error_kind == kind)


# -- scoring and error kinds ------------------------------------------------------------------------


def test_correct_solution_passes(evaluator):
    result = evaluator.evaluate_solution(ADD, GOOD)
    assert result.passed and result.score == 1.0, result.feedback
    assert (result.tests_passed, result.tests_total, result.error_kind) == (4, 4, None)
    assert [t.status for t in result.tests] == ["passed"] * 4
    assert result.task_id == ADD.id and result.elapsed > 0


def test_wrong_solution_scores_the_fraction_passed(evaluator):
    result = evaluator.evaluate_solution(ADD, HALF)
    assert fails(result, ErrorKind.tests_failed)
    assert (result.tests_passed, result.tests_total, result.score) == (2, 4, 0.5)
    assert [t.status for t in result.tests] == ["failed", "passed", "failed", "passed"]
    assert result.feedback.startswith("2/4 tests passed") and "AssertionError" in result.feedback
    # Feedback is safe to show: it never quotes the hidden tests.
    assert "EXPECTED_SUM" not in result.feedback and "math.isclose" not in result.feedback


@pytest.mark.parametrize(
    "workspace",
    [
        {},
        {"other.py": GOOD},
        {"solution.py": ""},
        {"solution.py": "  \n\t\n"},
        {"solution.py/inner.py": GOOD},
        b"",
    ],
    ids=["empty-dict", "other-file", "empty-file", "blank-file", "directory", "empty-tar"],
)
def test_missing_or_empty_solution_is_no_solution(evaluator, workspace):
    result = evaluator.evaluate(ADD, workspace)
    assert fails(result, ErrorKind.no_solution)
    assert result.score == 0.0 and result.tests_passed == 0 and result.tests_total == 4
    assert "solution.py" in result.feedback


def test_solution_that_does_not_import_is_import_error(evaluator):
    syntax = evaluator.evaluate_solution(ADD, "def add(a, b) return a + b\n")
    assert fails(syntax, ErrorKind.import_error)
    assert "SyntaxError" in syntax.feedback and "solution.py" in syntax.feedback
    assert "_agentevo_wrapper" not in syntax.feedback  # the wrapper's own frames are cut
    raising = evaluator.evaluate_solution(ADD, "import no_such_module_anywhere\n" + GOOD)
    assert fails(raising, ErrorKind.import_error) and "ModuleNotFoundError" in raising.feedback
    # Once the import failed the remaining tests are not run again.
    assert [t.status for t in raising.tests] == ["import_error"] * 4


def test_infinite_loop_times_out_quickly(evaluator):
    task = ADD.model_copy(update={"time_limit": 1.0})
    started = time.monotonic()
    in_call = evaluator.evaluate_solution(task, "def add(a, b):\n    while True:\n        pass\n")
    at_import = evaluator.evaluate_solution(task, "while True:\n    pass\n" + GOOD)
    assert time.monotonic() - started < 15
    for result in (in_call, at_import):
        assert fails(result, ErrorKind.timeout)
        assert result.tests[0].status == "timeout" and result.tests[0].seconds < 3
        assert [t.status for t in result.tests[1:]] == ["not_run"] * 3
        assert "time limit" in result.feedback


def test_slow_test_after_fast_ones_is_a_timeout_with_partial_score(evaluator):
    task = ADD.model_copy(update={"time_limit": 1.0})
    result = evaluator.evaluate_solution(
        task, "import time\ndef add(a, b):\n    if a == 0.1:\n        time.sleep(60)\n    return a + b\n"
    )
    assert fails(result, ErrorKind.timeout)
    assert [t.status for t in result.tests] == ["passed", "passed", "timeout", "not_run"]
    assert result.score == 0.5


def test_workspace_forms_tar_folder_dict(evaluator, sandbox, tmp_path):
    # A tar stream exactly as an agent's sandbox hands it over.
    sandbox.write_file("/workspace/solution.py", GOOD)
    sandbox.write_file("/workspace/notes/readme.md", "scratch")
    tar_result = evaluator.evaluate(ADD, sandbox.get_tar("/workspace"))
    assert tar_result.passed, tar_result.feedback
    (tmp_path / "solution.py").write_text(GOOD)
    assert evaluator.evaluate(ADD, tmp_path).passed
    assert evaluator.evaluate(ADD, {"./solution.py": GOOD.encode()}).passed
    assert asyncio.run(evaluator.evaluate_async(ADD, {"solution.py": GOOD})).passed
    # A solution that imports a helper module beside it.
    helper = {
        "solution.py": "from helper import plus as add\n",
        "helper.py": "def plus(a, b):\n    return a + b\n",
    }
    assert evaluator.evaluate(ADD, helper).passed


def test_solution_in_a_subfolder_and_task_files(evaluator):
    task = ADD.model_copy(update={"solution_file": "pkg/impl.py", "files": {"pkg/data.txt": "2"}})
    source = (
        "import os\nOFFSET = int(open(os.path.join(os.path.dirname(__file__), 'data.txt')).read()) - 2\n"
        + GOOD
    )
    result = evaluator.evaluate_solution(task, source)
    assert result.passed, result.feedback


def test_agent_deleting_its_workspace_is_no_solution(evaluator, sandbox):
    sandbox.write_file("/workspace/solution.py", GOOD)
    sandbox.exec("rm -rf /workspace/* /workspace/.[!.]*")
    result = evaluator.evaluate(ADD, sandbox.get_tar("/workspace"))
    assert fails(result, ErrorKind.no_solution)


def test_sandbox_is_closed_after_every_evaluation(docker, pool):
    from agentevo.sandbox.docker_host import LABEL, LABEL_OWNER, LABEL_RUN, owner_id

    def ours() -> set[str]:  # this process's containers, the warm pool's aside
        listed = docker.containers.list(all=True, filters={"label": LABEL})
        return {
            c.name
            for c in listed
            if c.labels.get(LABEL_OWNER) == owner_id() and c.labels.get(LABEL_RUN) != pool.run_id
        }

    before = ours()
    evaluator = Evaluator(SandboxConfig())
    assert evaluator.evaluate_solution(ADD, GOOD).passed
    assert not evaluator.evaluate_solution(ADD, "import os\nos.kill(os.getppid(), 9)\n").passed
    deadline = time.monotonic() + 10
    while (extra := ours() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not extra


# -- gaming attempts: none of these may pass -------------------------------------------------------

FAKE_LINES = (
    "import sys\n"
    "LINES = ['PASS', 'OK', 'all 4 tests passed', '4 passed in 0.01s',\n"
    "         '" + RESULT_PREFIX + " 0123456789abcdef0123456789abcdef "
    '{"v":1,"solution":"ok","tests":[{"status":"passed"},{"status":"passed"},{"status":"passed"},{"status":"passed"}]}\']\n'
    "def shout():\n"
    "    for line in LINES:\n"
    "        print(line, flush=True)\n"
    "        print(line, file=sys.stderr, flush=True)\n"
    "shout()\n"
    "import atexit\n"
    "atexit.register(shout)\n"
    "def add(a, b):\n"
    "    shout()\n"
    "    return None\n"
)

GAMING = {
    "prints-fake-pass-lines": FAKE_LINES,
    "os-exit-0-at-import": "import os\nos._exit(0)\n",
    "sys-exit-0-at-import": "import sys\nsys.exit(0)\n",
    "os-exit-0-in-call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "sys-exit-0-in-call": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "raise-systemexit-in-call": "def add(a, b):\n    raise SystemExit(0)\n",
    "kill-parent-at-import": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + GOOD,
    "kill-parent-in-call": "import os, signal\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGKILL)\n",
    "stop-parent": "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n",
    "kill-everything": "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n",
    "rewrite-harness-and-spec": (
        "import os, glob\n"
        "FAKE = 'import sys\\nprint(\"" + RESULT_PREFIX + " x {}\")\\n'\n"
        "for path in glob.glob('/tmp/agentevo-eval/*'):\n"
        "    try:\n"
        "        open(path, 'w').write(FAKE)\n"
        "    except OSError:\n"
        "        pass\n"
        "open('/tmp/agentevo-eval/harness.py', 'w').write(FAKE)\n"
        "open('/tmp/agentevo-eval/spec.json', 'w').write('{}')\n" + WRONG
    ),
    "delete-evaluator-files": "import shutil\nshutil.rmtree('/tmp/agentevo-eval', ignore_errors=True)\n"
    + WRONG,
    "forge-verdict-pipe": (
        "import os\n"
        "for fd in range(3, 256):\n"
        "    try:\n"
        "        os.write(fd, b'I' + b'0' * 32)\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)\n"
    ),
    "patch-exec-and-exit": (
        "import builtins, os\n"
        "_real_exit = os._exit\n"
        "builtins.exec = lambda *a, **k: None\n"
        "builtins.compile = lambda *a, **k: None\n"
        "os._exit = lambda code: _real_exit(0)\n" + WRONG
    ),
    "fork-bomb-in-call": (
        "import os\n"
        "def add(a, b):\n"
        "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass\n"
    ),
    "detached-fork-bomb-at-import": (
        "import os\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass\n"
        "def add(a, b):\n"
        "    return None\n"
    ),
    "export-own-builtins": (
        "import builtins\n"
        "__all__ = ['add', '__builtins__']\n"
        "__builtins__ = dict(vars(builtins), sorted=lambda x: [1, 2])\n"
        "def add(a, b):\n"
        "    return 'nonsense'\n"
    ),
    "shadow-builtins": (
        "import builtins\n"
        "def sorted(x):\n"
        "    return [1, 2]\n"
        "builtins.sorted = sorted\n"
        "def add(a, b):\n"
        "    return 'nonsense'\n"
    ),
}


@pytest.mark.parametrize("name", list(GAMING))
def test_gaming_attempt_does_not_pass(evaluator, name):
    result = evaluator.evaluate_solution(ADD.model_copy(update={"time_limit": 2.0}), GAMING[name])
    assert not result.passed, f"{name} passed: {result}"
    assert result.error_kind is not None
    if name in ("shadow-builtins", "export-own-builtins"):  # the sorted() test must not have been fooled
        assert result.tests[3].status == "failed"
    if name == "kill-everything":  # the harness went too: no trustworthy line, never a pass
        assert result.error_kind == ErrorKind.no_result and "without a result" in result.feedback
    if name.startswith(("kill-parent", "stop-parent")):  # the parent is the judge: caught interfering
        assert result.error_kind == ErrorKind.tampering and result.score == 0.0


def test_correct_solution_that_also_prints_fake_lines_still_scores_on_the_tests(evaluator):
    # Printing does not hurt an honest solution, and does not help a dishonest one (above).
    result = evaluator.evaluate_solution(ADD, FAKE_LINES.replace("return None", "return a + b"))
    assert result.passed, result.feedback


PROBE = """
import os

def _probe():
    leaks = []
    for name in os.listdir("/tmp/agentevo-eval"):
        if name != "harness.py":
            leaks.append("file " + name)
    me = os.getpid()
    for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != me]:
        for what in ("environ", "cmdline"):
            try:
                data = open(f"/proc/{pid}/{what}", "rb").read()
            except OSError:
                continue
            if b"session_nonce" in data or b"per_test_timeout" in data:
                leaks.append(f"spec in /proc/{pid}/{what}")
    judge = os.getppid()  # the solution runs in a child of the judge, itself a child of the harness
    harness = int(open(f"/proc/{judge}/stat").read().rsplit(")", 1)[1].split()[1])
    assert b"harness.py" in open(f"/proc/{harness}/cmdline", "rb").read()
    for pid in (judge, harness):
        for what in ("environ", "mem", "maps"):
            try:
                open(f"/proc/{pid}/{what}", "rb").close()
                leaks.append(f"{pid} {what} readable")
            except OSError:
                pass
        try:
            os.listdir(f"/proc/{pid}/fd")
            leaks.append(f"{pid} fds listable")
        except OSError:
            pass
        for fd in range(0, 8):
            try:
                os.close(os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY))
                leaks.append(f"{pid} fd {fd} writable")
            except OSError:
                pass
    return leaks

LEAKS = _probe()
print("LEAKS", LEAKS)

def add(a, b):
    return None if LEAKS else a + b
"""


def test_tests_cannot_see_the_spec_or_the_harness_internals(evaluator):
    # This solution is only right if, from the solution's process, nothing of the spec or of the judge's
    # and the harness's memory and file descriptors is reachable: passing means the probe found no leak.
    result = evaluator.evaluate_solution(ADD, PROBE)
    assert result.passed, result.feedback


WORKSPACE_DECOYS = {
    "harness.py": f"print('{RESULT_PREFIX} x {{}}')\n",
    "sitecustomize.py": "import os\nos._exit(0)\n",
    "usercustomize.py": "import os\nos._exit(0)\n",
    "conftest.py": "import os\nos._exit(0)\n",
    "json.py": "raise SystemExit(0)\n",
    "solution/__init__.py": GOOD,  # a fake package named like the solution module
    "lib/solution.py": GOOD,
    "tests/test_solution.py": "def test_ok():\n    assert True\n",
    ".pytest_cache/v/cache/lastfailed": "{}",
    "tmp/agentevo-eval/harness.py": "print('PASS')\n",
}


def test_workspace_decoys_do_not_change_the_verdict(evaluator):
    wrong = evaluator.evaluate(ADD, {**WORKSPACE_DECOYS, "solution.py": WRONG})
    assert fails(wrong, ErrorKind.tests_failed)
    right = evaluator.evaluate(ADD, {**WORKSPACE_DECOYS, "solution.py": GOOD})
    assert right.passed, right.feedback


def test_hostile_tar_members_cannot_reach_the_harness(evaluator):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_file(name: str, data: str) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data.encode())
            tar.addfile(info, io.BytesIO(data.encode()))

        def add_link(name: str, target: str) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)

        add_file("/tmp/agentevo-eval/harness.py", "print('PASS')\n")
        add_file("../../tmp/agentevo-eval/harness.py", "print('PASS')\n")
        add_link("evil", "/tmp/agentevo-eval")
        add_link("passwd", "/etc/passwd")
        add_file("real.py", WRONG)
        add_link("solution.py", "real.py")  # an in-tree symlink is followed (as a copy)
    files = workspace_files(buf.getvalue())
    assert set(files) == {"real.py", "solution.py"}
    assert fails(evaluator.evaluate(ADD, buf.getvalue()), ErrorKind.tests_failed)


def test_processes_left_by_one_test_do_not_reach_the_next(evaluator):
    # Right only when no process from an earlier test survives: each test's import spawns a
    # detached `sleep`, and the next test's import looks for it.
    source = (
        "import os, subprocess\n"
        "def _strays():\n"
        "    found = 0\n"
        "    for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "        try:\n"
        "            if open(f'/proc/{pid}/cmdline', 'rb').read() == b'sleep\\x00301\\x00':\n"
        "                found += 1\n"
        "        except OSError:\n"
        "            pass\n"
        "    return found\n"
        "STRAYS = _strays()\n"
        "subprocess.Popen(['sleep', '301'], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "def add(a, b):\n"
        "    return None if STRAYS else a + b\n"
    )
    result = evaluator.evaluate_solution(ADD, source)
    assert result.passed, result.feedback


def test_flooding_output_is_capped_and_scored_normally(evaluator):
    source = "import sys\nsys.stdout.write('x' * 5_000_000)\nsys.stderr.write('y' * 5_000_000)\n" + GOOD
    result = evaluator.evaluate_solution(ADD, source)
    assert result.passed, result.feedback
    failing = evaluator.evaluate_solution(ADD, source.replace("a + b", "None"))
    assert fails(failing, ErrorKind.tests_failed) and len(failing.feedback) <= 1500


def test_agent_loop_error_kinds_exist():
    values = {kind.value for kind in ErrorKind}
    assert {"no_solution", "import_error", "tests_failed", "timeout", "no_submit", "step_budget",
            "token_budget", "sandbox_error", "agent_crash", "no_result"} <= values  # fmt: skip


# -- canonical solutions of the real suites --------------------------------------------------------


def _suite(spec: str) -> list[Task]:
    from agentevo.tasks.suites import load_suite

    return load_suite(spec)


@pytest.fixture(scope="module")
def humaneval() -> list[Task]:
    tasks = _suite(f"humaneval:{BENCHDATA / 'humaneval'}")
    assert len(tasks) == 164
    return tasks


@pytest.fixture(scope="module")
def mbpp() -> list[Task]:
    tasks = _suite(f"mbpp-sanitized:{BENCHDATA / 'mbpp' / 'sanitized-mbpp.json'}")
    assert len(tasks) == 427
    return tasks


def _evaluate_all(
    evaluator: Evaluator, pairs: list[tuple[Task, str]], workers: int = 4
) -> tuple[list, float]:
    started = time.monotonic()
    with ThreadPoolExecutor(workers) as threads:
        results = list(threads.map(lambda pair: evaluator.evaluate_solution(*pair), pairs))
    return results, time.monotonic() - started


def _report(capsys, label: str, results: list, wall: float) -> None:
    with capsys.disabled():
        print(
            f"\n{label}: {sum(r.passed for r in results)}/{len(results)} passed, {wall:.1f} s wall, "
            f"{wall / len(results):.3f} s per evaluation (4 threads), "
            f"median {statistics.median(r.elapsed for r in results):.3f} s each"
        )


@pytest.mark.parametrize(
    "suite,label,stride", [("humaneval", "HumanEval canonical", 4), ("mbpp", "MBPP sanitized canonical", 6)]
)
def test_canonical_solutions_all_pass(evaluator, request, capsys, suite, label, stride):
    # Every reference solution of every suite passes its tests on the host (tests/tasks/test_suites.py); here a
    # fixed, evenly spread sample (every ``stride``-th task) goes through the sandboxed harness too.
    tasks = request.getfixturevalue(suite)[::stride]
    results, wall = _evaluate_all(evaluator, [(t, t.canonical_solution) for t in tasks])
    _report(capsys, label, results, wall)
    failed = [(r.task_id, r.error_kind, r.feedback[:200]) for r in results if not r.passed]
    assert not failed
    assert sum(r.passed for r in results) == len(tasks) > 40


def test_empty_solutions_all_fail(evaluator, humaneval, mbpp):
    for task in humaneval + mbpp:
        assert fails(evaluator.evaluate_solution(task, ""), ErrorKind.no_solution), task.id


def test_humaneval_untouched_stubs_fail(evaluator, humaneval, capsys):
    # The workspace as the agent received it (signature and docstring only) must fail: the hidden
    # tests are not vacuous and the evaluator does not pass a do-nothing agent. Every 4th task keeps
    # this to ~10 s (all 164 also fail; that run takes as long as the canonical one).
    results, wall = _evaluate_all(evaluator, [(t, t.files["solution.py"]) for t in humaneval[::4]])
    _report(capsys, "HumanEval stubs", results, wall)
    passed = [r.task_id for r in results if r.passed]
    assert not passed
    assert all(r.error_kind in (ErrorKind.tests_failed, ErrorKind.import_error) for r in results)
