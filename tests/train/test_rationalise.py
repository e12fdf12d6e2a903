"""STaR rationalisation: a task no sample solved is tried again with a hint, and a verified answer becomes a
training row under the hint-free prompt.

The chat model here is scripted, for control flow only (what a model answers without a hint and with one); every
verdict is the real evaluator's: hidden tests in fresh Docker sandboxes.
"""

from __future__ import annotations

import json

import pytest

from agentevo.evaluate.evaluator import Evaluator
from agentevo.evaluate.results import run_rows
from agentevo.runs import RunDir
from agentevo.tasks.builtin import load_builtin
from agentevo.tasks.model import Split, Task
from agentevo.train.config import HintKind, Recipe, TrainConfig
from agentevo.train.datasets import RATIONALISED, DatasetError, build_dataset, read_card, read_rows
from agentevo.train.rationalise import RationaliseRecord, make_hint, rationalise_task
from agentevo.train.sampling import sample_round
from agentevo.train.scoring import solve_messages

SOLVED = "builtin/sum-list"  # solved without help: never re-attempted
REFERENCE = "builtin/add"  # fails, then copies the reference solution it is shown
FEEDBACK = "builtin/square"  # no reference here: fails, then fixes its code from the feedback
STUBBORN = "builtin/greet"  # fails, and fails again with the hint: nothing is added
HELD = "builtin/max-of-list"  # a test-split task the model fails: never hinted
SQUARE = "def square(n):\n    return n * n\n"


def fenced(code: str) -> str:
    return f"```python\n{code.strip()}\n```"


@pytest.fixture(scope="module")
def tasks() -> list[Task]:
    by_id = {t.id: t for t in load_builtin()}
    chosen = [by_id[i] for i in (SOLVED, REFERENCE, FEEDBACK, STUBBORN, HELD)]
    assert [t.split for t in chosen] == [Split.train] * 4 + [Split.test]
    return [t.model_copy(update={"canonical_solution": None}) if t.id == FEEDBACK else t for t in chosen]


class ScriptedModel:
    """Control flow only: wrong (the starting file) without a hint; with one, the reference or the fix."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = tasks
        self.seen: list[tuple[str, str]] = []  # (task id, last user turn) of every call

    def __call__(self, messages: list[dict[str, str]], temperature: float) -> str:
        user = messages[-1]["content"]
        task = next(t for t in self.tasks if user.startswith(t.instructions))
        self.seen.append((task.id, user))
        reference = task.canonical_solution
        if task.id == SOLVED:
            return fenced(reference or "")
        if task.id == REFERENCE and reference and reference.strip() in user:
            return "Following the hint, here it is:\n" + fenced(reference)
        if task.id == FEEDBACK and "tests passed" in user and "NotImplementedError" in user:
            return fenced(SQUARE)
        return fenced(task.files[task.solution_file])


@pytest.fixture(scope="module")
def sampled(tasks: list[Task], sandbox_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("star")
    run = RunDir(root / "archives", "sampled")
    chat = ScriptedModel(tasks)
    config = TrainConfig(rationalise=True, rationalise_tries=1)
    record = sample_round(chat, tasks, 1, 0.0, Evaluator(), run, model="smollm2", config=config)
    return {"root": root, "run": run, "chat": chat, "record": record}


def test_a_verified_hinted_answer_is_trained_on_without_its_hint(sampled: dict, tasks: list[Task]) -> None:
    record, run, chat = sampled["record"], sampled["run"], sampled["chat"]
    assert record.pass_at_1 == pytest.approx(1 / 5)  # the balance metrics count the unaided samples only
    assert record.rationalised == RationaliseRecord(
        tasks_tried=3, tasks_passed=2, tries=3, by_hint={"reference": 1, "feedback": 1}, heldout_skipped=1
    )
    hinted = {task for task, user in chat.seen if "Hint:" in user}
    assert hinted == {REFERENCE, FEEDBACK, STUBBORN}  # never the solved task, never the held-out one
    feedback_hint = next(u for t, u in chat.seen if t == FEEDBACK and "Hint:" in u)
    square = next(t for t in tasks if t.id == FEEDBACK)
    assert "0/4 tests passed" in feedback_hint and not any(test in feedback_hint for test in square.tests)

    rows = {(r.task_id, r.attempt): r for r in run_rows(run.path)}
    assert rows[(REFERENCE, 1)].detail["rationalised"] == "reference" and rows[(REFERENCE, 1)].passed is True
    assert rows[(FEEDBACK, 1)].detail["rationalised"] == "feedback"
    assert (STUBBORN, 1) not in rows and (HELD, 1) not in rows  # a failed re-attempt adds nothing
    requests = [
        json.loads(line)["request"] for line in (run.path / "llm_calls.jsonl").read_text().splitlines()
    ]
    assert not any("Hint:" in m["content"] for r in requests for m in r["messages"])  # never recorded

    out = build_dataset([run.path], Recipe.rft, sampled["root"] / "data", TrainConfig())
    card, train = read_card(out), read_rows(out)
    assert card.verdicts == {"passed": 1, "failed": 4, RATIONALISED: 2}
    assert card.sources == {"rft": 1, RATIONALISED: 2}
    assert card.rationalised == {"reference": 1, "feedback": 1}
    assert card.train_tasks == sorted([SOLVED, REFERENCE, FEEDBACK]) and card.heldout_tasks == [HELD]
    by_task = {r["task_id"]: r for r in train}
    assert set(by_task) == {SOLVED, REFERENCE, FEEDBACK}
    for task in tasks[1:3]:
        row = by_task[task.id]
        assert row["source"] == RATIONALISED and row["hint"] in ("reference", "feedback")
        assert row["prompt"] == solve_messages(task)  # the original prompt, exactly
        prompt = json.dumps(row["prompt"])
        assert "Hint" not in prompt and "tests passed" not in prompt and "Following" not in prompt
        assert row["completion"][0]["content"].startswith("```python\n")  # the verified code alone
    add = next(t for t in tasks if t.id == REFERENCE)
    assert (add.canonical_solution or "").strip() not in json.dumps(by_task[REFERENCE]["prompt"])
    assert "return n * n" in by_task[FEEDBACK]["completion"][0]["content"]
    assert read_rows(out, "heldout.jsonl") == []  # the held-out task never passed, hinted or not
    # Preference pairs need replies drawn from the recorded prompt: rationalised ones are left out.
    with pytest.raises(DatasetError, match="DPO needs both outcomes"):
        build_dataset([run.path], Recipe.dpo, sampled["root"] / "dpo", TrainConfig())


def test_hints_never_quote_the_hidden_tests_and_held_out_tasks_are_never_hinted(tasks: list[Task]) -> None:
    add = next(t for t in tasks if t.id == REFERENCE)
    both = [HintKind.reference, HintKind.feedback]
    hint = make_hint(add, "def add(a, b):\n    return 0\n", "0/5 tests passed. test 1: AssertionError", both)
    assert hint is not None and hint.kind is HintKind.reference and "return a + b" in hint.text
    quoting = add.model_copy(update={"canonical_solution": f"def add(a, b):\n    {add.tests[0]}\n"})
    hint = make_hint(quoting, "x = 1", "0/5 tests passed", both)
    assert hint is not None and hint.kind is HintKind.feedback  # the reference quotes a test: not given
    assert make_hint(add, "x = 1", f"failed: {add.tests[1]}", [HintKind.feedback]) is None
    no_reference = add.model_copy(update={"canonical_solution": None})
    assert make_hint(no_reference, "x = 1", "", both) is None  # nothing to say: no hint

    def never(_: list[dict[str, str]]) -> str:
        raise AssertionError("a held-out task reached the model with a hint")

    held = next(t for t in tasks if t.id == HELD)
    record = RationaliseRecord()
    config = TrainConfig(rationalise=True, rationalise_tries=3)
    assert rationalise_task(never, held, solve_messages(held), ("x = 1", "0/5"), None, config, record) is None
    assert record == RationaliseRecord(heldout_skipped=1)
