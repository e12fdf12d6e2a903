"""``agentevo finetune``: recorded runs -> a dataset -> a LoRA adapter in the registry (-> promoted if better)."""

from __future__ import annotations

from pathlib import Path

import typer

from agentevo.cli.adapters import out, promote_adapter, train_errors
from agentevo.cli.common import config, console
from agentevo.train.config import Recipe


def finetune(
    run: list[str] = typer.Option(
        ..., "--run", help="Run id or run folder with recorded calls (repeatable)."
    ),
    recipe: Recipe = typer.Option(Recipe.rft, help="rft | dpo | self-consistency"),
    max_steps: int | None = typer.Option(
        None, min=1, help="Optimiser steps at most (default: train.max_steps)."
    ),
    max_seconds: float | None = typer.Option(
        None, min=1, help="Wall seconds at most (default: train.max_seconds)."
    ),
    promote: bool = typer.Option(
        False, "--promote", help="Then score it on held-out tasks; promote if better."
    ),
    limit: int | None = typer.Option(None, min=1, help="With --promote: at most N held-out tasks."),
) -> None:
    """Build a training set from the runs' trajectories and verdicts, train a LoRA adapter, print where it went."""
    from agentevo.llm.model_store import ensure_embedded_model
    from agentevo.train import build_dataset, train_adapter
    from agentevo.train.datasets import read_card
    from agentevo.train.serving import registry_of, served_model_dir

    settings = config()
    updates = {k: v for k, v in {"max_steps": max_steps, "max_seconds": max_seconds}.items() if v is not None}
    train = settings.train.model_copy(update=updates)
    runs = [Path(r) if Path(r).is_dir() else settings.archives_dir / r for r in run]
    with train_errors():
        registry = registry_of(settings)
        dataset = build_dataset(runs, recipe, registry.root / "datasets", train)
        card = read_card(dataset)
        console.print(
            f"dataset {dataset}: {card.rows['train']} train rows from {len(card.train_tasks)} tasks, "
            f"{len(card.heldout_tasks)} tasks held out; dropped {card.dropped or 'nothing'}",
            highlight=False,
        )
        model_dir = served_model_dir(settings) or ensure_embedded_model(settings.cache_dir)
        lineage = train_adapter(dataset, model_dir, registry, train, parent=registry.active())
        m = lineage.metrics
        out.print(
            f"adapter {lineage.name}: {registry.path(lineage.name)} ({m['steps']} steps, {m['seconds']:.0f} s, "
            f"loss {m['train_loss']}, {m['tokens_per_second']} tokens/s)",
            highlight=False,
        )
        if promote:
            promote_adapter(lineage.name, limit)
