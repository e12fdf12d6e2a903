"""Self-training with agentevo.train: recorded trajectories -> a dataset -> (optionally) a LoRA adapter.

    .venv/bin/python examples/self_training.py                 # a small recorded run of its own, dataset only
    .venv/bin/python examples/self_training.py --run archives/RUN --train

Without ``--run`` it records a small run itself through the gateway's recorder: each question answered once
correctly (the evaluator's verdict: passed) and once not. ``--train`` then trains a LoRA adapter on the embedded
model (a few steps, about a minute on 2 idle cores) into ``./adapters-example``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from agentevo.config import AgentevoConfig
from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder
from agentevo.llm.model_store import ensure_embedded_model
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.tasks.model import Split, split_of
from agentevo.train import AdapterRegistry, Recipe, TrainConfig, build_dataset, train_adapter
from agentevo.train.datasets import read_card

QUESTIONS = {"What is 2 + 3?": "5", "What is 10 - 4?": "6", "What is 3 * 3?": "9", "What is 8 / 2?": "4"}


def record_demo_run(archives: Path) -> Path:
    """One run folder in the format `agentevo run` writes: llm_calls.jsonl and results.sqlite."""
    run = RunDir(archives, "demo")
    recorder = TrajectoryRecorder(run.path)
    store = ResultsStore(run.path / RESULTS_DB)
    for i, (question, answer) in enumerate(QUESTIONS.items()):
        task = next(f"arith/q{i}-{n}" for n in range(100) if split_of(f"arith/q{i}-{n}") is Split.train)
        for attempt, reply in enumerate([answer, "I cannot say."]):
            recorder.append(
                CallRecord(
                    run_id=run.run_id, agent_id="demo", task_id=task,
                    episode_id=f"{task.replace('/', '-')}-{attempt}",
                    request={"messages": [{"role": "user", "content": question}]},
                    response={"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]},
                )
            )  # fmt: skip
            store.add(
                ResultRow(
                    run_id=run.run_id, agent_id="demo", task_id=task, attempt=attempt, passed=attempt == 0
                )
            )
    store.close()
    return run.path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, help="A run folder with recorded calls (default: a demo run).")
    parser.add_argument("--recipe", type=Recipe, default=Recipe.rft, choices=list(Recipe))
    parser.add_argument("--train", action="store_true", help="Also train a LoRA adapter (a few steps).")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="agentevo-example-"))
    run = args.run or record_demo_run(work / "archives")
    config = TrainConfig(adapters_dir=Path("adapters-example"), max_steps=4, batch_size=4, learning_rate=1e-3)
    dataset = build_dataset([run], args.recipe, work / "datasets", config)
    card = read_card(dataset)
    print(
        f"dataset: {card.rows['train']} train rows from tasks {card.train_tasks}; held out: {card.heldout_tasks}"
    )
    print(f"dropped: {card.dropped}; data sha256 {card.data_sha256[:12]}; folder {dataset}")
    if args.train:
        model_dir = ensure_embedded_model(AgentevoConfig().cache_dir)
        lineage = train_adapter(dataset, model_dir, AdapterRegistry(config.adapters_dir), config)
        print(f"adapter {lineage.name} in {config.adapters_dir / lineage.name}: {lineage.metrics}")


if __name__ == "__main__":
    main()
