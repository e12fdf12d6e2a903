"""The ``meta`` and ``self`` operators driven end to end by the real embedded model (SmolLM2-135M-Instruct on
the llama.cpp backbone), in real Docker sandboxes, into a real git archive: the seed is gated and scored, one
expansion runs (a diagnosis, then a coding agent editing the parent's code in a sandbox), and whatever the
model made is recorded correctly. A gate refusal is a correct outcome; what must hold is the record.
(``reflect`` has its real-model run in test_demo.py.)

A third run gives ``meta`` a coding agent that cannot start (its requirements do not install): each meta-step
fails (MutationFailed), is counted as a failed expansion and logged, and the run stops as failing, never
crashes.

Shortened to fit the suite: one built-in train task, two steps per task episode, two coder steps, 128-token
replies, one worker. Safety probes are off: they are three more sandboxed episodes per node (test_hostile.py
and test_rules.py cover them), and what is under test here is the operator's record, which the probes do not
touch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentevo.agents.episode import seed_agent_dir
from agentevo.archive import Archive
from agentevo.config import AgentevoConfig
from agentevo.config.evolve import EvolveConfig, OperatorName, PolicyName, SafetyMode, Stage
from agentevo.contract import REQUIREMENTS_FILE
from agentevo.evolve.budget import StopCause
from agentevo.evolve.gates import GateFailure
from agentevo.evolve.loop import Status
from agentevo.evolve.operators import copy_agent
from agentevo.evolve.start import evolve_run, open_run
from agentevo.gateway import Backend
from agentevo.llm.config import LLMConfig
from agentevo.serving.backbone import open_backend
from tests.llm.conftest import free_port, llamacpp_test_config

CODER_STEPS = 2


@pytest.fixture(scope="module")
def llm() -> LLMConfig:
    """One slot with room for a coding agent's growing history; short replies keep each call a few seconds."""
    return LLMConfig(
        backbone="llamacpp",
        max_tokens=128,
        llamacpp=llamacpp_test_config(free_port(), parallel=1, ctx_per_slot=4096),
    )


@pytest.fixture(scope="module")
def embedded(llm: LLMConfig, sandbox_image: str) -> Iterator[Backend]:
    """The backbone as `agentevo evolve` opens it (a supervised llama.cpp server), shared by this module."""
    with open_backend(AgentevoConfig(llm=llm)) as backend:
        yield backend


def _evolve(
    archives: Path, llm: LLMConfig, backend: Backend, operator: OperatorName, **extra: object
) -> tuple[Status, Path]:
    config = AgentevoConfig(archives_dir=archives, llm=llm)
    evolve = EvolveConfig(
        policy=PolicyName.greedy, operator=operator, workers=1, max_nodes=2, max_steps=2, coder_steps=CODER_STEPS,
        stages=[Stage(name="small", tasks=1)], safety=SafetyMode.off, **extra,
    )  # fmt: skip
    run, evolve = open_run(config, evolve)
    started = time.monotonic()
    status = evolve_run(config, evolve, run, backend=backend, mutator_backend=backend)
    said = status.model_dump_json(include={"cause", "nodes", "expansions_failed", "error"})
    print(f"\n{operator.value} run: {time.monotonic() - started:.0f} s, {said}")
    return status, run.path


def _calls(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "llm_calls.jsonl").read_text().splitlines()]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("operator", [OperatorName.meta, OperatorName.self])
def test_the_embedded_model_drives_one_code_expansion(operator, tmp_path, llm, embedded):
    status, run_dir = _evolve(tmp_path / "archives", llm, embedded, operator)
    errors = run_dir / "evolve_errors.log"
    assert status.error is None and status.expansions_failed == 0, (
        errors.read_text() if errors.exists() else status
    )
    assert status.cause is StopCause.nodes and status.nodes == 2, status

    with Archive.open(run_dir) as archive:
        seed, child = archive.nodes()
        assert (child.id, child.parent, child.operator, child.generation) == ("n1", "n0", operator.value, 1)
        # The commit is in the archive's repository, on top of its parent's.
        commit = archive.repo.repo.commit(child.commit)
        assert [p.hexsha for p in commit.parents] == [seed.commit]
        same_files = commit.tree.hexsha == archive.repo.repo.commit(seed.commit).tree.hexsha
        diff = archive.diff(child.id)

    # The change recorded is the diagnosis the model gave (its one evolve/diagnose call).
    calls = _calls(run_dir)
    mutator = [c for c in calls if str(c["task_id"]).startswith("evolve/")]
    [diagnosis] = [c for c in mutator if c["task_id"] == "evolve/diagnose"]
    assert diagnosis["agent_id"] == "n0" and diagnosis["status"] == 200, diagnosis
    said = (diagnosis["response"]["choices"][0]["message"]["content"] or "").strip()
    assert child.change == f"{operator.value}: {said}"
    # The coding agent's calls: its own episode on the parent's code, within its step budget.
    coder = [c for c in mutator if c["agent_id"] == f"{operator.value}:n0"]
    assert 1 <= len(coder) <= CODER_STEPS and {c["task_id"] for c in coder} == {"evolve/n0"}, coder
    assert all(c["episode_id"].startswith(f"{operator.value}-n0-") for c in coder)

    # The gate was decided, with its reason; only an admitted child is scored.
    gate = child.gate
    assert gate is not None, child
    if gate.passed:
        assert gate.failure is None and child.scores["small"].tasks == 1, child
    else:
        failure = GateFailure(gate.failure)
        assert gate.reason and not child.scores, child
        assert (failure is GateFailure.empty_diff) == same_files, (failure, diff[:2000])
    print(f"{operator.value} child: gate {gate.model_dump()}, {child.diff_lines} diff lines\n{diff[:1500]}")


@pytest.mark.timeout(600)
def test_a_meta_step_that_fails_counts_as_a_failed_expansion(tmp_path, llm, embedded):
    coder = copy_agent(seed_agent_dir(), tmp_path / "coder")
    # pip refuses this line before any download, so the coder's sandbox image cannot be built.
    (coder / REQUIREMENTS_FILE).write_text("this is not a requirement ===\n")
    # No contract check: the seed's gate is not under test here, and its smoke episode would only add time.
    status, run_dir = _evolve(
        tmp_path / "archives", llm, embedded, OperatorName.meta, coder=str(coder), contract_check=False
    )
    assert status.cause is StopCause.failing and status.nodes == 1, status
    assert status.expansions_failed == 2 * 2  # the loop's limit: twice the node budget
    lines = (run_dir / "evolve_errors.log").read_text().splitlines()
    logged = [line for line in lines if not line.startswith(" ")]  # a record's detail is indented under it
    assert len(logged) == 4 and all(
        "expand n0 failed: MutationFailed: the meta step left no workspace" in line for line in logged
    ), logged
    assert "requirement" in status.error, status.error
    # Each try diagnosed first (a real call, recorded); none reached a coding episode.
    mutator = [c for c in _calls(run_dir) if str(c["task_id"]).startswith("evolve/")]
    assert [c["task_id"] for c in mutator] == ["evolve/diagnose"] * 4, mutator
