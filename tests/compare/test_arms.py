"""Arms as users write them (``--arm NAME=SPEC`` and a YAML file), applied to the configuration, and the plan a
resumed or extended comparison must agree with. No episode runs here."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agentevo.compare import compare
from agentevo.compare.arms import Arm, ArmError, check_arms, load_arms, parse_arm
from agentevo.compare.plan import CompareError, Design, open_plan
from agentevo.config import AgentevoConfig
from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.report import RunState, run_status
from agentevo.runs import PLAN_FILE, RunDir
from agentevo.tasks import SuiteError


def test_spec_keys_set_the_arm_and_its_configuration(tmp_path):
    arm = parse_arm(
        f"big=seed,base_url=http://127.0.0.1:8000/v1,model=qwen,temperature=0.7,max_steps=3,memory={tmp_path}"
        ",llm.max_tokens=256,sandbox.memory=2g"
    )
    assert (arm.name, arm.agent, arm.memory, arm.library) == ("big", "seed", True, tmp_path)
    settings = arm.settings(AgentevoConfig())
    assert (settings.llm.backbone, settings.llm.base_url, settings.llm.model) == (
        "openai",
        "http://127.0.0.1:8000/v1",
        "qwen",
    )
    assert (settings.llm.temperature, settings.llm.max_tokens, settings.sandbox.memory) == (
        0.7,
        256,
        2 * 2**30,
    )
    assert (settings.memory.enabled, settings.memory.path, settings.memory.learn) == (True, tmp_path, False)
    learning = parse_arm("l=seed,memory=on,memory.learn=true").settings(AgentevoConfig())
    assert learning.memory.learn  # held-out episodes teach the library only when the arm says so
    assert (
        arm.budget().max_steps == 3 and arm.budget().max_tokens == 20_000
    )  # the other budget keeps its default
    assert parse_arm(arm.describe().join(["big=", ""])) == arm  # the spec it shows reads back as the same arm


def test_defaults_memory_off_base_weights_agent_budget():
    arm = parse_arm("base=seed")
    settings = arm.settings(AgentevoConfig(memory={"enabled": True}))
    assert not settings.memory.enabled and arm.adapter is None and arm.budget() is None
    assert parse_arm("a=seed,adapter=none").adapter is None
    assert parse_arm("a=seed,adapter=active").adapter == "active"
    assert (
        parse_arm("a=archive:20260101-000000-abc:best,memory=on").agent == "archive:20260101-000000-abc:best"
    )


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("seed", "write NAME=AGENT"),
        ("x=seed,foo", "'foo' in 'seed,foo' is not KEY=VALUE"),
        ("x=seed,bogus=1", "unknown key 'bogus' (keys: agent, memory"),
        ("x=seed,max_steps=0", "max_steps: Input should be greater than or equal to 1"),
        ("bad name=seed", "name: String should match pattern"),
    ],
)
def test_bad_specs_say_what_to_write(spec, says):
    with pytest.raises(ArmError, match="^.*" + says.replace("(", r"\(").replace(")", r"\)")):
        parse_arm(spec)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("x=seed,llm.nope=1", "llm.nope='1': Extra inputs are not permitted"),
        ("x=seed,nope.x=1", "'nope.x' is not a configuration field"),
        ("x=seed,llm.max_tokens=abc", "llm.max_tokens='abc': Input should be a valid integer"),
    ],
)
def test_bad_configuration_fields_are_refused_when_applied(spec, says):
    with pytest.raises(ArmError, match=says.replace("(", r"\(")):
        parse_arm(spec).settings(AgentevoConfig())


def test_a_yaml_file_of_arms_in_order(tmp_path):
    path = tmp_path / "arms.yaml"
    path.write_text(
        "base: seed\nshort: {agent: seed, max_steps: 1}\nlessons: {memory: on, llm.temperature: 0.5}\n"
    )
    arms = load_arms(path)
    assert [a.name for a in arms] == ["base", "short", "lessons"]  # the first is the baseline
    assert arms[1].max_steps == 1 and arms[2].memory and arms[2].config == {"llm.temperature": 0.5}
    path.write_text("- base\n")
    with pytest.raises(ArmError, match="must map arm names to specs"):
        load_arms(path)


def test_arms_need_two_distinct_names():
    with pytest.raises(ArmError, match="at least two arms"):
        check_arms([Arm(name="a")])
    with pytest.raises(ArmError, match="given more than once: a"):
        check_arms([Arm(name="a"), Arm(name="a", max_steps=1)])


def test_the_plan_is_kept_and_extended(tmp_path: Path):
    """A new run takes the defaults; a resumed one the saved plan; contradicting it is refused with the way out."""
    base, short = parse_arm("base=seed"), parse_arm("short=seed,max_steps=1")
    plan = open_plan(tmp_path, [base, short], Design(limit=3), tmp_path)
    assert (plan.suite, plan.split, plan.attempts, plan.seed) == ("builtin", "test", 1, 0)
    assert plan.tasks == ["builtin/answer", "builtin/max-of-list", "builtin/is-prime"]
    assert (tmp_path / PLAN_FILE).is_file()
    again = open_plan(tmp_path, [], Design(), tmp_path)
    assert again == plan
    extended = open_plan(tmp_path, [parse_arm("hot=seed,temperature=0.8")], Design(attempts=1), tmp_path)
    assert [a.name for a in extended.arms] == ["base", "short", "hot"] and extended.agents["hot"] == "seed"
    with pytest.raises(CompareError, match="runs attempts 1, not 2: leave --attempts out"):
        open_plan(tmp_path, [], Design(attempts=2), tmp_path)
    with pytest.raises(
        ArmError, match="arm 'short' is seed,max_steps=1 in this comparison, not seed,max_steps=2"
    ):
        open_plan(tmp_path, [parse_arm("short=seed,max_steps=2")], Design(), tmp_path)
    assert [t.id for t in extended.load_tasks()] == plan.tasks


def test_a_bad_arm_or_suite_is_refused_before_anything_is_written(tmp_path):
    config = AgentevoConfig(archives_dir=tmp_path)
    with pytest.raises(ArmError, match="llm.bogus"):
        compare([parse_arm("a=seed"), parse_arm("b=seed,llm.bogus=1")], config=config)
    with pytest.raises(ArmError, match="at least two arms"):
        compare([parse_arm("a=seed")], config=config)
    with pytest.raises(SuiteError, match="unknown suite 'nope'"):
        compare([parse_arm("a=seed"), parse_arm("b=seed")], suite="nope", config=config)
    assert list(tmp_path.iterdir()) == []  # no run folder left behind


def test_status_of_a_comparison_counts_every_arm(tmp_path):
    """`agentevo status` on a comparison left between its arms (as kill -9 leaves it): its first arm's run_suite
    wrote `finished`, yet the episodes of the second are missing, and the way on is `agentevo compare --run`."""
    run = RunDir(tmp_path)
    run.describe(command="agentevo compare", arms={"base": "seed", "short": "seed,max_steps=1"})
    run.describe(tasks=2, attempts=1, finished=time.time())  # what run_suite leaves after the first arm
    with ResultsStore(run.path / "results.sqlite") as store:
        for task in ("builtin/a", "builtin/b"):
            store.add(ResultRow(run_id=run.run_id, agent_id="base", task_id=task, passed=True, score=1.0))
    status = run_status(run.path)
    assert (status.state, status.episodes, status.planned) == (RunState.stopped, 2, 4)
    assert f"agentevo compare --run {run.run_id}" in status.hint
