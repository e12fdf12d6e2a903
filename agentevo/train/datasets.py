"""Training data from recorded trajectories, in the formats TRL reads, with a card that says how it was made.

* ``rft`` (rejection sampling / STaR): every assistant turn of episodes the evaluator verified as passed, as
  ``{"prompt": [...], "completion": [assistant]}`` rows (TRL puts the loss on the completion only). Episodes a
  sampling round rationalised (STaR: a hinted re-attempt the evaluator passed, recorded under the hint-free
  prompt; :mod:`agentevo.train.rationalise`) give rows with ``source: rationalised`` and the hint's kind, counted
  apart in the card; a task's own passes come first under the cap. The other recipes leave them out: their
  replies were not drawn from the prompt they are recorded with.
* ``dpo``: for a task with a passed and a failed episode, the turn where the two first differ gives
  ``{"prompt": common context, "chosen": [passed reply], "rejected": [failed reply]}``.
* ``self-consistency`` (R-Zero style, where hidden tests are not to be trusted or not there): the majority final
  answer (the code an episode wrote, not its trace) among a task's candidates that pass its visible checks (the
  example calls its statement shows, recorded by the sampler), or where none were recorded those the suite's
  verdict did not fail; kept only when the majority's share of the task's episodes lies inside an agreement band;
  rows are marked ``source: self-consistency`` with that share.

Every recipe drops duplicates, caps what one task contributes, and holds out by task with the project's stable
split (``agentevo.tasks.model.split_of``): only train-split tasks are trained on, so no validation or test score
ever sees a task the weights were fitted to.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agentevo.files import write_json_atomic
from agentevo.runs import RESULTS_DB
from agentevo.tasks.model import Split, split_of
from agentevo.train.config import Recipe, TrainConfig
from agentevo.train.trajectories import Episode, load_episodes

Row = dict[str, Any]
CARD_NAME = "card.json"
TRAIN_FILE, HELDOUT_FILE = "train.jsonl", "heldout.jsonl"
# What TRL reads of a row; the rest (task, episode, source) is provenance the trainer drops.
TRL_COLUMNS = {Recipe.rft: ("prompt", "completion"), Recipe.dpo: ("prompt", "chosen", "rejected")}
TRL_COLUMNS[Recipe.self_consistency] = TRL_COLUMNS[Recipe.rft]
RATIONALISED = "rationalised"  # the source of rows made from hinted re-attempts


class DatasetError(ValueError):
    """No usable training data could be made; the message says why and what to do instead."""


class DatasetCard(BaseModel):
    """What a dataset holds and how it was made (``card.json`` next to the data)."""

    recipe: Recipe
    runs: list[str]
    run_dirs: list[str] = Field(
        default_factory=list, description="The run folders read (their run.json names the suite)."
    )
    created: float = Field(default_factory=time.time)
    episodes: int = Field(description="Episodes read from the runs.")
    verdicts: dict[str, int] = Field(
        description="passed / failed / unjudged episodes, and rationalised ones (hinted re-attempts that passed)."
    )
    train_tasks: list[str]
    heldout_tasks: list[str] = Field(description="Tasks not in the train split: never trained on.")
    rows: dict[str, int] = Field(description="Rows written: train / heldout.")
    dropped: dict[str, int] = Field(description="Rows or episodes left out, by reason.")
    sources: dict[str, int] = Field(description="Train rows by source.")
    rationalised: dict[str, int] = Field(
        default_factory=dict,
        description="Train rows from hinted re-attempts (STaR rationalisation), by hint kind; their prompts "
        "carry no hint.",
    )
    filters: dict[str, Any]
    data_sha256: str = Field(description="Hash of train.jsonl: the adapter lineage names its data by it.")


def _verdict(episode: Episode) -> str:
    if episode.passed is None:
        return "unjudged"
    if episode.rationalised is not None:
        return RATIONALISED
    return "passed" if episode.passed else "failed"


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _distinct(episodes: Iterable[Episode], cap: int, dropped: Counter[str]) -> list[Episode]:
    """Episodes with distinct traces, at most ``cap`` (the rest are counted as duplicates or capped)."""
    seen: set[str] = set()
    kept: list[Episode] = []
    for episode in episodes:
        if episode.trace in seen:
            dropped["duplicate_episodes"] += 1
        elif len(kept) >= cap:
            dropped["capped_episodes"] += 1
        else:
            seen.add(episode.trace)
            kept.append(episode)
    return kept


def _sft_rows(episode: Episode, source: str, **extra: Any) -> list[Row]:
    return [
        {
            "prompt": t.prompt,
            "completion": [t.completion],
            "task_id": episode.task_id,
            "episode_id": episode.episode_id,
            "source": source,
            **extra,
        }
        for t in episode.turns
    ]


def _by_task(episodes: list[Episode]) -> dict[str, list[Episode]]:
    groups: dict[str, list[Episode]] = defaultdict(list)
    for episode in sorted(episodes, key=lambda e: (e.task_id, e.run_id, e.attempt)):
        groups[episode.task_id].append(episode)
    return groups


def rft_rows(episodes: list[Episode], cap: int, dropped: Counter[str]) -> list[Row]:
    """Rejection-sampling SFT: the turns of verified-passed episodes, ``cap`` distinct ones per task (the
    task's own passes before its rationalised ones)."""
    rows = []
    for group in _by_task(episodes).values():
        passed = sorted((e for e in group if e.passed), key=lambda e: e.rationalised is not None)
        for episode in _distinct(passed, cap, dropped):
            if episode.rationalised is None:
                rows += _sft_rows(episode, Recipe.rft.value)
            else:
                rows += _sft_rows(episode, RATIONALISED, hint=episode.rationalised.value)
    return rows


def _pair(good: Episode, bad: Episode) -> Row | None:
    """The first turn where a passed and a failed episode answer the same context differently."""
    for ours, theirs in zip(good.turns, bad.turns, strict=False):
        if ours.prompt != theirs.prompt:
            return None  # they parted on a tool result, not on a reply: nothing to prefer
        if ours.completion != theirs.completion:
            return {
                "prompt": ours.prompt,
                "chosen": [ours.completion],
                "rejected": [theirs.completion],
                "task_id": good.task_id,
                "chosen_episode": good.episode_id,
                "rejected_episode": bad.episode_id,
                "source": Recipe.dpo.value,
            }
    return None


def dpo_rows(episodes: list[Episode], cap: int, dropped: Counter[str]) -> list[Row]:
    """Preference pairs: each passed episode against each failed one of its task, ``cap`` pairs per task."""
    rows = []
    for group in _by_task(episodes).values():
        passed = _distinct((e for e in group if e.passed), cap, Counter())
        failed = _distinct((e for e in group if e.passed is False), cap, Counter())
        pairs = [p for g in passed for b in failed if (p := _pair(g, b)) is not None]
        dropped["unpaired_tasks"] += int(bool(passed) and bool(failed) and not pairs)
        dropped["capped_pairs"] += max(0, len(pairs) - cap)
        rows += pairs[:cap]
    return rows


def _voters(group: list[Episode]) -> list[Episode]:
    """The candidates that may vote: those that passed their task's visible checks; where none were recorded,
    those the suite's verdict did not fail."""
    if any(e.visible is not None for e in group):
        return [e for e in group if e.visible]
    return [e for e in group if e.passed is not False]


def self_consistency_rows(
    episodes: list[Episode], cap: int, band: tuple[float, float], dropped: Counter[str]
) -> list[Row]:
    """Majority-vote labels: per task, the episodes that give the majority final answer (:attr:`Episode.answer`,
    the code written, not the trace) among the candidates that pass the visible checks, when the majority's share
    of all the task's episodes lies inside ``band`` (too low: no real majority; too high: nothing new to learn)."""
    rows = []
    for group in _by_task(episodes).values():
        voters = _voters(group)
        ranked = Counter(e.answer for e in voters).most_common(2)
        if not voters or len(group) < 2 or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
            dropped["no_majority_tasks"] += 1
            continue
        answer, count = ranked[0]
        agreement = count / len(group)
        if not band[0] <= agreement <= band[1]:
            dropped["out_of_band_tasks"] += 1
            continue
        chosen = (e for e in voters if e.answer == answer)
        for episode in _distinct(chosen, cap, dropped):
            rows += _sft_rows(episode, Recipe.self_consistency.value, agreement=round(agreement, 4))
    return rows


def _dedup(rows: list[Row], columns: tuple[str, ...], dropped: Counter[str]) -> list[Row]:
    seen: set[str] = set()
    out = []
    for row in rows:
        key = _key(*(row[c] for c in columns))
        if key in seen:
            dropped["duplicate_rows"] += 1
            continue
        seen.add(key)
        out.append(row)
    return out


def _no_data_reason(recipe: Recipe, episodes: list[Episode], verdicts: Counter[str]) -> str:
    judged = verdicts["passed"] + verdicts["failed"]
    if recipe is Recipe.rft and judged and not verdicts["passed"]:
        return (
            f"all {judged} judged episodes failed: RFT needs verified-passed episodes (run more attempts per "
            "task with `agentevo run --attempts K`, pick easier tasks, or use --recipe self-consistency)"
        )
    if recipe is Recipe.rft:
        return f"none of the {len(episodes)} episodes has a verdict that passed ({RESULTS_DB})"
    if recipe is Recipe.dpo:
        return (
            "no task has a passed and a failed episode that part on a reply: DPO needs both outcomes of one "
            "task (run more attempts per task with `agentevo run --attempts K`)"
        )
    return "no task's majority answer lies inside the agreement band (train.agreement_min/max)"


def build_rows(
    recipe: Recipe, episodes: list[Episode], config: TrainConfig
) -> tuple[list[Row], Counter[str]]:
    """The recipe's rows from ``episodes`` (deduplicated) and what was dropped, by reason."""
    dropped: Counter[str] = Counter()
    if recipe is not Recipe.rft and (hinted := sum(e.rationalised is not None for e in episodes)):
        dropped["rationalised_episodes"] = hinted
        episodes = [e for e in episodes if e.rationalised is None]
    if recipe is Recipe.rft:
        rows = rft_rows(episodes, config.per_task_cap, dropped)
    elif recipe is Recipe.dpo:
        rows = dpo_rows(episodes, config.per_task_cap, dropped)
    else:
        band = (config.agreement_min, config.agreement_max)
        rows = self_consistency_rows(episodes, config.per_task_cap, band, dropped)
    return _dedup(rows, TRL_COLUMNS[recipe], dropped), dropped


def _write_jsonl(path: Path, rows: list[Row]) -> str:
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    path.write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def build_dataset(run_dirs: list[Path], recipe: Recipe, out_root: Path, config: TrainConfig) -> Path:
    """Read the runs, build the recipe's rows, hold out by task, and write ``<out_root>/<recipe>-<hash>/``.

    The folder (``train.jsonl``, ``heldout.jsonl``, ``card.json``) appears whole or not at all; the same data
    gives the same folder, which is then reused. Raises :class:`DatasetError` when nothing can be trained on.
    """
    episodes = [e for run in run_dirs for e in load_episodes(Path(run))]
    if not episodes:
        raise DatasetError(f"no recorded episodes in {', '.join(map(str, run_dirs))}")
    verdicts = Counter(_verdict(e) for e in episodes)
    rows, dropped = build_rows(recipe, episodes, config)
    if not rows:
        raise DatasetError(_no_data_reason(recipe, episodes, verdicts))
    train = [r for r in rows if split_of(r["task_id"]) is Split.train]
    heldout = [r for r in rows if split_of(r["task_id"]) is not Split.train]
    all_tasks = sorted({e.task_id for e in episodes})
    if not train:
        raise DatasetError(
            f"all {len({r['task_id'] for r in rows})} tasks with usable data are outside the train split "
            "(held out for evaluation); record runs on train-split tasks (`agentevo run --split train`)"
        )
    filters = {"per_task_cap": config.per_task_cap, "holdout": "tasks outside the train split"}
    if recipe is Recipe.self_consistency:
        filters["agreement_band"] = [config.agreement_min, config.agreement_max]
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = out_root / f".tmp-{recipe.value}-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    try:
        digest = _write_jsonl(tmp / TRAIN_FILE, train)
        _write_jsonl(tmp / HELDOUT_FILE, heldout)
        card = DatasetCard(
            recipe=recipe,
            runs=sorted({e.run_id for e in episodes}),
            episodes=len(episodes),
            run_dirs=[str(Path(run).resolve()) for run in run_dirs],
            verdicts=dict(verdicts),
            train_tasks=sorted({r["task_id"] for r in train}),
            heldout_tasks=[t for t in all_tasks if split_of(t) is not Split.train],
            rows={"train": len(train), "heldout": len(heldout)},
            dropped=dict(dropped),
            sources=dict(Counter(r["source"] for r in train)),
            filters=filters,
            data_sha256=digest,
            rationalised=dict(Counter(r["hint"] for r in train if r["source"] == RATIONALISED)),
        )
        write_json_atomic(tmp / CARD_NAME, card.model_dump(mode="json"))
        target = out_root / f"{recipe.value}-{digest[:12]}"
        if target.is_dir():
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_card(dataset_dir: Path) -> DatasetCard:
    """A dataset folder's card (``DatasetError`` when it is not a dataset folder)."""
    try:
        return DatasetCard.model_validate_json((Path(dataset_dir) / CARD_NAME).read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"{dataset_dir} is not a dataset folder (no readable {CARD_NAME}): {exc}"
        ) from None


def read_rows(dataset_dir: Path, name: str = TRAIN_FILE) -> list[Row]:
    path = Path(dataset_dir) / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
