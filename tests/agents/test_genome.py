"""The seed's genome: every setting changes what the agent does.

The backbone is a scripted chat model (control flow, not skill): it answers with known right and wrong code, so the
test can say which answer each setting keeps. Episodes run isolated in real sandboxes behind a real gateway, and
the evaluator's hidden tests judge what the agent left; the agreement rule is also driven in-process, where the
order of the answers is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from agentevo.agents import run_isolated, seed_agent_dir
from agentevo.agents.episode import EpisodeBudget
from agentevo.agents.seed.direct import Judge, _inputs
from agentevo.agents.seed.genome import (
    CandidateFilter,
    Demo,
    Genome,
    Section,
    Strategy,
    Tool,
    dump_genome,
    load_genome,
)
from agentevo.agents.seed.workspace import LocalWorkspace
from agentevo.contract import GENOME_FILE
from agentevo.evaluate import Evaluator
from agentevo.evolve.operators import copy_agent
from agentevo.gateway import ChatModelBackend, Gateway, TrajectoryRecorder
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.tasks import Task, load_suite
from tests.agents.scripts import call

TASK = load_suite("ladder", split="train")[
    0
]  # add_constant(n): n plus a constant; the statement shows one example
CONSTANT = TASK.instructions.split("plus ")[1].split(".")[0]
WRONG = [
    "def add_constant(n):\n    return n\n",
    "def add_constant(n):\n    return 0\n",
    "def add_constant(n):\n    return -n\n",
]
SOLVED = f"def add_constant(n):\n    return n + {CONSTANT}\n"


def fenced(code: str) -> str:
    return f"```python\n{code}```"


def agent(tmp_path: Path, **settings: object) -> Path:
    """A copy of the seed with these genome settings."""
    folder = copy_agent(seed_agent_dir(), tmp_path / "agent")
    genome = Genome.model_validate({**load_genome(folder).model_dump(), **settings})
    (folder / GENOME_FILE).write_text(dump_genome(genome))
    return folder


def episode(tmp_path: Path, folder: Path, replies: list, *, steps: int = 6, delay: float = 0.0):
    """One isolated episode of ``folder`` on TASK: whether the evaluator passed it, the calls, the model."""
    model = ScriptedChatModel(replies=replies, delay=delay)
    with Gateway(ChatModelBackend(model, "scripted"), run_dir=tmp_path, run_id="genome") as gateway:
        outcome = run_isolated(TASK, folder, gateway, budget=EpisodeBudget(max_steps=steps), time_limit=300)
    passed = Evaluator().evaluate(TASK, outcome.workspace_tar).passed
    return outcome, passed, TrajectoryRecorder(tmp_path).read(), model


def test_the_schema_refuses_incoherent_genomes_and_names_the_fix():
    assert load_genome(seed_agent_dir()) == Genome()  # the seed's file is the schema's defaults
    assert dump_genome(Genome()) == (seed_agent_dir() / GENOME_FILE).read_text()
    refused = {
        "need a temperature above 0": {"samples": 4},
        "need filter: examples": {"samples": 4, "temperature": 0.5},
        "tools must include submit": {"tools": ["bash"]},
        "names repeat": {"sections": ["stdlib", "stdlib"]},
        "contract": {"contract": 2},
        "Extra inputs are not permitted": {"samples_k": 2},
        "less than or equal to 8": {"samples": 9, "temperature": 0.5},
        "need samples > 1": {"rounds": 2},
    }
    for reason, settings in refused.items():
        with pytest.raises(ValidationError, match=reason):
            Genome.model_validate(settings)


def test_k_samples_and_the_example_filter_keep_the_right_answer_among_wrong_ones(tmp_path, sandbox_image):
    """Scripted replies: three wrong answers and one right one. One sample keeps the first (wrong); four samples
    with the filter keep the one the example passes, and the four calls went out at once, each with the genome's
    temperature and its own seed. (Four samples without the filter are refused by the schema: only the first would
    be read.)"""
    replies = [fenced(WRONG[0]), fenced(WRONG[1]), fenced(SOLVED), fenced(WRONG[2])]
    one, passed_one, _, _ = episode(tmp_path / "k1", agent(tmp_path / "k1"), replies)
    assert one.stop_reason == "submitted" and one.calls == 1 and not passed_one
    filtered = agent(tmp_path / "f", samples=4, temperature=0.7, filter="examples")
    kept, passed, calls, model = episode(tmp_path / "f", filtered, replies, delay=1.0)
    assert kept.stop_reason == "submitted" and kept.calls == 4 and passed, kept.log_tail
    assert "[direct] kept answer" in kept.log_tail and "1/1 examples pass" in kept.log_tail
    assert model.in_flight_peak == 4  # sampled at once: the backbone's parallel slots decode them together
    assert {c.request["temperature"] for c in calls} == {0.7} and {c.request["seed"] for c in calls} == {
        0,
        1,
        2,
        3,
    }
    assert all(c.request["stop"] == ["\n```\n"] and "tools" not in c.request for c in calls)


def test_rounds_sample_again_only_while_no_answer_passes_and_greedy_first_decodes_one_greedily(
    tmp_path, sandbox_image
):
    """Two samples a batch, three rounds at most, the first sample greedy. Two wrong answers: a second batch is
    asked, holds the right one, and no third follows. A right answer in the first batch: no second batch."""
    settings = {"samples": 2, "temperature": 0.7, "filter": "examples", "greedy_first": True, "rounds": 3}
    replies = [fenced(WRONG[0]), fenced(WRONG[1]), fenced(SOLVED), fenced(WRONG[2]), fenced(SOLVED)]
    again, passed, calls, _ = episode(tmp_path / "r", agent(tmp_path / "r", **settings), replies)
    assert again.stop_reason == "submitted" and again.calls == 4 and passed, again.log_tail
    assert sorted((c.request["seed"], c.request["temperature"]) for c in calls) == [
        (0, 0.0),
        (1, 0.7),
        (2, 0.7),
        (3, 0.7),
    ]
    first, passed_first, _, _ = episode(tmp_path / "1", agent(tmp_path / "1", **settings), replies[2:])
    assert first.stop_reason == "submitted" and first.calls == 2 and passed_first, first.log_tail


def test_without_examples_answers_that_agree_on_the_models_inputs_are_kept(tmp_path):
    """In-process (the order of the answers fixed): a stub and no example in the statement; two right answers,
    written differently, agree on the model's inputs; two wrong ones do not; one right answer is kept."""
    answers = [
        "def double(n):\n    return n ** 2\n",
        "def double(n):\n    return n * 2\n",
        "def double(n):\n    return n - 2\n",
        "def double(n):\n    return n + n\n",
    ]
    task = {"id": "t", "instructions": "Write `double(n)`: twice n.", "entry_point": "double"}
    reply = json.dumps({"calls": ["double(3)", "double(-1)", "len([])", "print(1)"]})
    probes, _ = _inputs(ScriptedChatModel(replies=[f"Here: {reply}"]), task)
    assert probes == ["double(3)", "double(-1)"]  # only calls of the entry point
    kept = Judge(LocalWorkspace(str(tmp_path)), "double", [], probes, CandidateFilter.examples).keep(answers)
    assert kept in (answers[1], answers[3])
    first = Judge(LocalWorkspace(str(tmp_path)), "double", [], probes, CandidateFilter.none).keep(answers)
    assert first == answers[0]


def test_the_loop_reads_tools_steps_temperature_sections_demos_and_the_example_check(tmp_path, sandbox_image):
    """Scripted tool calls on the loop: a wrong file, submit (refused: the statement's example fails), the right
    file; the genome's three steps end it although the budget allows six. Every request carries the genome's
    tools, temperature, reply length, sections and demo."""
    demo = Demo(
        task_id="ladder/other-1", task="Write `one()` returning 1.", solution="def one():\n    return 1\n"
    )
    folder = agent(
        tmp_path, strategy=Strategy.loop, tools=[Tool.create, Tool.submit], max_steps=3, temperature=0.3,
        reply_tokens=200, sections=[Section.edge_cases], demos=[demo], filter=CandidateFilter.examples,
    )  # fmt: skip
    replies = [
        call("create", 1, path="solution.py", content=WRONG[0]),
        call("submit", 2),
        call("create", 3, path="solution.py", content=SOLVED),
        call("submit", 4),
    ]
    outcome, passed, calls, _ = episode(tmp_path, folder, replies)
    assert outcome.stop_reason == "step_budget" and outcome.calls == 3 and passed, outcome.log_tail
    for record in calls:
        request = record.request
        assert {t["function"]["name"] for t in request["tools"]} == {"create", "submit"}
        assert request["temperature"] == 0.3 and request["max_tokens"] == 200
        system, first = request["messages"][0]["content"], request["messages"][1]["content"]
        assert (seed_agent_dir() / "prompts/sections/edge-cases.md").read_text().strip() in system
        assert first == demo.task
    refused = calls[2].request["messages"][-1]
    assert refused["role"] == "tool" and refused["content"].startswith(
        "not submitted: `assert (add_constant("
    )


def test_a_task_that_is_not_one_function_takes_the_loop(tmp_path, sandbox_image):
    """The direct strategy answers one-function tasks only: a task without an entry point gets the tool loop."""
    task = Task(id="t/notes", suite="t", instructions="Write notes.txt saying hi.", files={}, tests=["pass"])
    model = ScriptedChatModel(replies=[call("create", 1, path="notes.txt", content="hi"), call("submit", 2)])
    with Gateway(ChatModelBackend(model, "scripted"), run_dir=tmp_path, run_id="g") as gateway:
        outcome = run_isolated(task, seed_agent_dir(), gateway, budget=EpisodeBudget(max_steps=4))
    assert outcome.stop_reason == "submitted" and outcome.calls == 2 and "[act]" in outcome.log_tail
