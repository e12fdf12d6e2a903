"""Self-play: proposals verified by the real evaluator (hidden tests in fresh Docker sandboxes), filtered by the
solver's difficulty band, and what the kept ones give as RFT and DPO rows.

The proposer and the solver here are scripted, for control flow only (which proposal comes, which sample passes);
every verdict is the evaluator's. The proposer is asked through ``ask_structured``, so its request is checked to
carry the schema as ``response_format``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from agentevo.evaluate.evaluator import Evaluator
from agentevo.runs import RunDir
from agentevo.tasks.builtin import load_builtin
from agentevo.train.config import Recipe, TrainConfig
from agentevo.train.datasets import build_dataset, read_card, read_rows
from agentevo.train.propose import ProposedTask, as_task
from agentevo.train.selfplay import POOL_FILE, PROPOSALS_FILE, Refusal, SelfPlay

GOOD = {
    "entry_point": "triple", "statement": "Write a function `triple(n)` that returns n times 3. Example: "
    "`triple(2)` returns `6`.", "reference": "def triple(n):\n    return 3 * n\n",
    "tests": [{"call": "triple(2)", "expected": "6"}, {"call": "triple(-1)", "expected": "-3"},
              {"call": "triple(5)", "expected": "15"}],
}  # fmt: skip
ECHO = {  # its tests pass the trivial answer that returns the first argument
    "entry_point": "echo", "statement": "Write a function `echo(x)` that returns x unchanged.",
    "reference": "def echo(x):\n    return x\n",
    "tests": [{"call": "echo(1)", "expected": "1"}, {"call": "echo('a')", "expected": "'a'"},
              {"call": "echo([2])", "expected": "[2]"}],
}  # fmt: skip
WRONG = {**GOOD, "entry_point": "double", "statement": "Write a function `double(n)` that returns 2 * n.",
         "reference": "def double(n):\n    return n + 2\n",
         "tests": [{"call": "double(2)", "expected": "4"}, {"call": "double(3)", "expected": "6"},
                   {"call": "double(0)", "expected": "0"}]}  # fmt: skip
HELD = {**GOOD, "entry_point": "max_of_list", "statement": "Write a function `max_of_list(xs)` returning the max.",
        "reference": "def max_of_list(xs):\n    return max(xs)\n",
        "tests": [{"call": "max_of_list([1, 5])", "expected": "5"}, {"call": "max_of_list([2])", "expected": "2"},
                  {"call": "max_of_list([0, -1])", "expected": "0"}]}  # fmt: skip
EASY = {**GOOD, "entry_point": "negate", "statement": "Write a function `negate(n)` that returns -n.",
        "reference": "def negate(n):\n    return -n\n",
        "tests": [{"call": "negate(2)", "expected": "-2"}, {"call": "negate(-3)", "expected": "3"},
                  {"call": "negate(7)", "expected": "-7"}]}  # fmt: skip
NOT_A_CALL = {**GOOD, "tests": [{"call": "__import__('os')", "expected": "1"}] * 3}
# In order: kept, copy of the first, trivial passes, reference fails, held-out, no valid answer (twice), too easy.
SCRIPT = [GOOD, GOOD, ECHO, WRONG, HELD, NOT_A_CALL, "not json", EASY]


class Proposer:
    """Control flow only: the scripted answers in order, as a backbone that honours the schema would send them."""

    def __init__(self) -> None:
        self.answers = [a if isinstance(a, str) else json.dumps(a) for a in SCRIPT]
        self.formats: list[dict[str, Any]] = []

    def __call__(self, messages: list, **options: Any) -> AIMessage:
        self.formats.append(options["response_format"])
        return AIMessage(content=self.answers.pop(0))


def solver(messages: list[dict[str, str]], temperature: float) -> str:
    """Control flow only: ``triple`` right on every other call, ``negate`` always right."""
    solver.calls = getattr(solver, "calls", 0) + 1  # type: ignore[attr-defined]
    if "negate" in messages[-1]["content"]:
        return "```python\ndef negate(n):\n    return -n\n```"
    body = "3 * n" if solver.calls % 2 else "n + n"  # type: ignore[attr-defined]
    return f"```python\ndef triple(n):\n    return {body}\n```"


@pytest.fixture(scope="module")
def played(sandbox_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("selfplay")
    run = RunDir(root / "archives", "selfplay")
    config = TrainConfig(proposals=7, k=2, band_min=0.1, band_max=0.9)
    proposer = Proposer()
    play = SelfPlay(proposer, solver, load_builtin(), Evaluator(), run, model="smollm2", config=config,
                    temperature=0.8)  # fmt: skip
    return {"record": play(), "run": run, "root": root, "proposer": proposer}


def test_only_verified_proposals_in_the_band_enter_the_pool(played: dict) -> None:
    record, run = played["record"], played["run"]
    lines = [json.loads(x) for x in (run.path / PROPOSALS_FILE).read_text().splitlines()]
    fates = [(x["kept"], x["refusal"]) for x in lines]
    assert fates == [
        (True, None), (False, Refusal.copy), (False, Refusal.trivial_passes), (False, Refusal.reference_fails),
        (False, Refusal.heldout), (False, Refusal.unanswered), (False, Refusal.too_easy),
    ]  # fmt: skip
    assert lines[2]["detail"] == "the trivial answer (first argument) passes every test"
    assert lines[5]["detail"] == "invalid_json"  # a call not of the function, then after one repair no JSON
    assert lines[0]["solved"] == 1 and lines[0]["samples"] == 2 and lines[6]["solved"] == 2
    assert record.proposals == 7 and record.verified == 2 and record.kept == 1
    assert record.rows == {"passed": 1, "failed": 1}
    assert record.refused == {"copy": 1, "trivial_passes": 1, "reference_fails": 1, "heldout": 1,
                              "unanswered": 1, "too_easy": 1}  # fmt: skip
    (pooled,) = [json.loads(x) for x in (run.path / POOL_FILE).read_text().splitlines()]
    assert pooled["id"] == record.pool[0] and pooled["tests"][0] == "assert triple(2) == 6"
    formats = played["proposer"].formats
    assert len(formats) == 8 and formats[0]["json_schema"]["name"] == "ProposedTask"  # 7 asks, one repair
    assert formats[0]["json_schema"]["schema"]["properties"]["tests"]["maxItems"] == 5


def test_the_pool_gives_rft_rows_and_dpo_pairs(played: dict) -> None:
    run, root = played["run"], played["root"]
    rft = build_dataset([run.path], Recipe.rft, root / "data", TrainConfig())
    card, rows = read_card(rft), read_rows(rft)
    assert (
        card.rows["train"] == 1 and card.train_tasks == played["record"].pool
    )  # pool ids are train-split ids
    assert "3 * n" in rows[0]["completion"][0]["content"]
    dpo = read_rows(build_dataset([run.path], Recipe.dpo, root / "dpo", TrainConfig()))
    assert (
        len(dpo) == 1
        and "3 * n" in dpo[0]["chosen"][0]["content"]
        and "n + n" in dpo[0]["rejected"][0]["content"]
    )


def test_a_proposal_becomes_a_task_whose_tests_are_its_asserts() -> None:
    task = as_task(ProposedTask.model_validate(GOOD))
    assert task.tests == ["assert triple(2) == 6", "assert triple(-1) == -3", "assert triple(5) == 15"]
    assert task.split.value == "train" and task.id.startswith("selfplay/triple-")
    with pytest.raises(ValueError, match="not a call of triple"):
        ProposedTask.model_validate(NOT_A_CALL)


def test_held_out_instances_and_templates_never_enter_and_copies_are_named_copies() -> None:
    from agentevo.tasks import load_suite
    from agentevo.tasks.model import Split
    from agentevo.train.selfplay import Novelty

    ladder = load_suite("ladder")
    train = [t for t in ladder if t.split is Split.train]
    held = next(t for t in ladder if t.split is Split.validation and t.instructions not in {x.instructions for x in train}
                and t.canonical_solution not in {x.canonical_solution for x in train})  # fmt: skip
    transfer = next(t for t in ladder if t.metadata["transfer"])
    novelty = Novelty(ladder)

    def proposal(task, statement: str | None = None) -> ProposedTask:
        return ProposedTask.model_validate({**GOOD, "entry_point": task.entry_point, "statement": statement or task.instructions,
                                            "reference": task.canonical_solution, "tests": [{"call": f"{task.entry_point}(1)", "expected": "1"}] * 3})  # fmt: skip

    assert novelty.refusal(proposal(held)) == (
        Refusal.heldout,
        "the statement or reference of a held-out task",
    )
    assert novelty.refusal(proposal(transfer))[0] is Refusal.heldout  # a template no train task comes from
    assert novelty.refusal(proposal(train[0]))[0] is Refusal.copy
