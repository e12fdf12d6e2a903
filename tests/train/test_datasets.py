"""Dataset builders on recorded runs: counts, TRL formats, held-out tasks never trained on, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentevo.runs import RunDir
from agentevo.tasks.model import Split, split_of
from agentevo.train.config import Recipe, TrainConfig
from agentevo.train.datasets import DatasetError, build_dataset, read_card, read_rows
from agentevo.train.trajectories import TrajectoryError, load_episodes
from tests.train.recorded import SYSTEM, record_episode, record_verdict, task_ids

GOOD = "def add(a, b):\n    return a + b\n"
BAD = "def add(a, b):\n    return a - b\n"


def make_run(root: Path, run_id: str, plan: dict[str, list[tuple]]) -> Path:
    """``plan``: task id -> [(code, passed[, final reply])] per attempt."""
    run = RunDir(root, run_id)
    for task, attempts in plan.items():
        for attempt, (code, passed, *final) in enumerate(attempts):
            record_episode(run, task, attempt, code, passed, final=final[0] if final else "Done.")
    return run.path


@pytest.fixture
def tasks() -> dict[str, list[str]]:
    return {"train": task_ids(Split.train, 3), "held": task_ids(Split.test, 2)}


def test_episodes_render_as_the_text_backbone_saw_them(tmp_path: Path, tasks: dict[str, list[str]]) -> None:
    t = tasks["train"][0]
    run = make_run(tmp_path, "r1", {t: [(GOOD, True), (BAD, False)]})
    episodes = sorted(load_episodes(run), key=lambda e: e.attempt)
    assert [(e.task_id, e.attempt, e.passed) for e in episodes] == [(t, 0, True), (t, 1, False)]
    first, second = episodes[0].turns
    assert first.prompt[0]["role"] == "system" and first.prompt[0]["content"].startswith(SYSTEM)
    assert "write_file" in first.prompt[0]["content"]  # the tools prompt the fenced backbone was given
    assert first.completion["role"] == "assistant" and "```action" in first.completion["content"]
    assert '"tool": "write_file"' in first.completion["content"]
    # The tool result reaches the model as a user turn; the earlier reply as an action block.
    assert [m["role"] for m in second.prompt] == ["system", "user", "assistant", "user"]
    assert second.prompt[-1]["content"].startswith("Tool result (write_file)")


def test_rft_keeps_passed_turns_dedups_caps_and_holds_out_by_task(
    tmp_path: Path, tasks: dict[str, list[str]]
) -> None:
    a, b, c = tasks["train"]
    h1, h2 = tasks["held"]
    other = "def add(x, y):\n    return y + x\n"
    plan = {
        # One duplicate passed episode, and one that shares its first turn with another (a duplicate row).
        a: [(GOOD, True), (GOOD, True), (other, True), (GOOD, True, "Submitted."), (BAD, False)],
        b: [(BAD, False), (BAD, False)],  # never passed: contributes nothing
        c: [(GOOD, True)],
        h1: [(GOOD, True)],
        h2: [(BAD, False)],
    }
    run = make_run(tmp_path / "archives", "r1", plan)
    out = build_dataset([run], Recipe.rft, tmp_path / "data", TrainConfig(per_task_cap=4))
    card = read_card(out)
    rows = read_rows(out)
    assert card.verdicts == {"passed": 6, "failed": 4}
    assert card.dropped["duplicate_episodes"] == 1
    # a: three distinct passed episodes x 2 turns, less the shared first turn; c: 2 rows.
    assert card.rows == {"train": 6 - 1 + 2, "heldout": 2}
    assert card.dropped["duplicate_rows"] == 1
    assert len(rows) == card.rows["train"] and {r["task_id"] for r in rows} == {a, c}
    assert card.train_tasks == sorted([a, c]) and card.heldout_tasks == sorted([h1, h2])
    assert not set(card.train_tasks) & set(card.heldout_tasks)
    assert all(split_of(r["task_id"]) is Split.train for r in rows)
    assert all(split_of(r["task_id"]) is not Split.train for r in read_rows(out, "heldout.jsonl"))
    for row in rows:  # TRL's conversational prompt-completion format
        assert row["completion"][0]["role"] == "assistant" and row["prompt"][-1]["role"] == "user"
        assert row["source"] == "rft"
    # The cap: one distinct passed episode per task.
    capped = read_card(build_dataset([run], Recipe.rft, tmp_path / "data1", TrainConfig(per_task_cap=1)))
    assert capped.dropped["capped_episodes"] == 2 and capped.rows["train"] == 2 + 2
    # The same data is the same folder (content-addressed), reused.
    assert build_dataset([run], Recipe.rft, tmp_path / "data", TrainConfig(per_task_cap=4)) == out
    assert [p.name for p in (tmp_path / "data").iterdir()] == [out.name]


def test_dpo_pairs_a_passed_and_a_failed_episode_where_they_part(
    tmp_path: Path, tasks: dict[str, list[str]]
) -> None:
    a, b, _ = tasks["train"]
    run = make_run(tmp_path, "r1", {a: [(GOOD, True), (BAD, False)], b: [(GOOD, True), (GOOD, True)]})
    out = build_dataset([run], Recipe.dpo, tmp_path / "data", TrainConfig())
    rows = read_rows(out)
    assert len(rows) == 1 and read_card(out).rows["train"] == 1
    (row,) = rows
    assert (
        row["task_id"] == a
        and row["chosen_episode"].endswith("-0")
        and row["rejected_episode"].endswith("-1")
    )
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]  # the same prompt for both
    assert "a + b" in row["chosen"][0]["content"] and "a - b" in row["rejected"][0]["content"]


def test_self_consistency_labels_the_majority_inside_the_band(
    tmp_path: Path, tasks: dict[str, list[str]]
) -> None:
    a, b, c = tasks["train"]
    alt = "def add(a, b):\n    return sum([a, b])\n"
    plan = {
        a: [(GOOD, None), (GOOD, None), (BAD, None)],  # 2/3 agree: inside [0.3, 0.7]
        b: [(GOOD, None), (GOOD, None), (GOOD, None)],  # unanimous: outside the band
        c: [(GOOD, None), (BAD, None), (alt, None)],  # no majority
    }
    run = make_run(tmp_path, "r1", plan)
    episodes = load_episodes(run)
    assert all(e.passed is None for e in episodes)
    out = build_dataset([run], Recipe.self_consistency, tmp_path / "data", TrainConfig())
    card, rows = read_card(out), read_rows(out)
    assert card.dropped["out_of_band_tasks"] == 1 and card.dropped["no_majority_tasks"] == 1
    assert {r["task_id"] for r in rows} == {a}
    assert all(
        r["source"] == "self-consistency" and r["agreement"] == pytest.approx(2 / 3, abs=1e-3) for r in rows
    )
    assert card.filters["agreement_band"] == [0.3, 0.7] and card.verdicts == {"unjudged": 9}


def test_self_consistency_votes_on_the_code_among_candidates_that_pass_the_visible_checks(
    tmp_path: Path, tasks: dict[str, list[str]]
) -> None:
    """Episodes that end in different words but write the same code agree; a candidate that failed the example
    its statement shows never votes, even when it is the most common answer."""
    a, b, _ = tasks["train"]
    run = RunDir(tmp_path, "visible")
    plan = {  # (code, visible checks passed, the final reply)
        a: [
            (GOOD, True, "Done."),
            (GOOD, True, "Submitted, bye."),
            (BAD, False, "Done."),
            (BAD, False, "Ok."),
        ],
        b: [(BAD, False, "Done."), (BAD, False, "Done."), (BAD, False, "Done."), (GOOD, True, "Done.")],
    }
    for task, attempts in plan.items():
        for attempt, (code, visible, final) in enumerate(attempts):
            record_episode(run, task, attempt, code, None, final=final)
            record_verdict(run, task, attempt, visible, visible=visible)
    episodes = load_episodes(run.path)
    assert len({e.trace for e in episodes if e.task_id == a and e.visible}) == 2  # the traces differ...
    assert len({e.answer for e in episodes if e.task_id == a and e.visible}) == 1  # ...the code is the same
    out = build_dataset(
        [run.path], Recipe.self_consistency, tmp_path / "data", TrainConfig(agreement_max=0.5)
    )
    card, rows = read_card(out), read_rows(out)
    # a: the 2 visible-check passes agree (share 2/4, inside [0.3, 0.5]); b: one voter (1/4, below the band).
    assert {r["task_id"] for r in rows} == {a} and card.dropped["out_of_band_tasks"] == 1
    episode = a.replace("/", "-")
    assert {r["episode_id"] for r in rows} == {f"{episode}-0", f"{episode}-1"}  # the two agreeing passes
    assert {r["agreement"] for r in rows} == {0.5}
    assert not any("a - b" in r["completion"][0]["content"] for r in rows)


def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path: Path, tasks: dict[str, list[str]]) -> None:
    a, b, _ = tasks["train"]
    out_root = tmp_path / "data"
    with pytest.raises(TrajectoryError, match="no llm_calls.jsonl"):
        build_dataset([tmp_path / "nothing"], Recipe.rft, out_root, TrainConfig())
    empty = RunDir(tmp_path, "empty").path
    (empty / "llm_calls.jsonl").write_text("")
    with pytest.raises(DatasetError, match="no recorded episodes"):
        build_dataset([empty], Recipe.rft, out_root, TrainConfig())
    failed = make_run(tmp_path, "failed", {a: [(BAD, False)], b: [(BAD, False), (BAD, False)]})
    with pytest.raises(DatasetError, match="all 3 judged episodes failed: RFT needs verified-passed"):
        build_dataset([failed], Recipe.rft, out_root, TrainConfig())
    with pytest.raises(DatasetError, match="DPO needs both outcomes"):
        build_dataset([failed], Recipe.dpo, out_root, TrainConfig())
    held = make_run(tmp_path, "held", {tasks["held"][0]: [(GOOD, True)]})
    with pytest.raises(DatasetError, match="outside the train split"):
        build_dataset([held], Recipe.rft, out_root, TrainConfig())
    assert not out_root.exists() or not list(out_root.iterdir())


def test_a_retried_try_keeps_only_the_last_try_of_the_episode(
    tmp_path: Path, tasks: dict[str, list[str]]
) -> None:
    t = tasks["train"][0]
    run = RunDir(tmp_path, "r1")
    record_episode(run, t, 0, BAD, None, time0=1000.0)  # a try the infrastructure spoiled (no verdict row)
    record_episode(run, t, 0, GOOD, True, time0=2000.0)  # the retry, same episode id
    (episode,) = load_episodes(run.path)
    assert episode.passed is True and len(episode.turns) == 2
    assert "a + b" in episode.turns[0].completion["content"]
