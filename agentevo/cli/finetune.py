"""``agentevo finetune``: recorded runs (and/or a sampling round) -> a dataset -> a LoRA adapter in the registry
(-> promoted if better)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from agentevo.cli.adapters import out, promote_adapter, train_errors
from agentevo.cli.common import config, console
from agentevo.train.config import Recipe


def finetune(
    run: list[str] = typer.Option([], "--run", help="Run id or run folder with recorded calls (repeatable)."),
    sample: str | None = typer.Option(
        None, "--sample", help="First sample the served model on this suite's train split (a new run)."
    ),
    limit: int | None = typer.Option(None, min=1, help="With --sample: at most N train tasks."),
    spread: bool = typer.Option(
        False, "--spread/--first", help="With --limit: N train tasks spread over levels and templates."
    ),
    k: int | None = typer.Option(None, min=1, help="With --sample: samples per task (default: train.k)."),
    rationalise: bool | None = typer.Option(
        None, "--rationalise/--no-rationalise", help="With --sample: hinted re-attempts of unsolved tasks."
    ),
    self_play: int | None = typer.Option(
        None, "--self-play", min=0, help="With --sample: tasks the model proposes (default: train.proposals)."
    ),
    recipe: Recipe = typer.Option(Recipe.rft, help="rft | dpo | self-consistency"),
    max_steps: int | None = typer.Option(
        None, min=1, help="Optimiser steps at most (default: train.max_steps)."
    ),
    max_seconds: float | None = typer.Option(
        None, min=1, help="Wall seconds at most (default: train.max_seconds)."
    ),
    promote: bool = typer.Option(
        False, "--promote", help="Then compare it with the active model on agent episodes; promote if better."
    ),
) -> None:
    """Build a training set from the runs' trajectories and verdicts, train a LoRA adapter, print where it went."""
    from agentevo.llm.model_store import ensure_embedded_model
    from agentevo.serving.adapters import registry_of, served_model_dir
    from agentevo.train import build_dataset, train_adapter
    from agentevo.train.datasets import read_card

    settings = config()
    given = {
        "max_steps": max_steps,
        "max_seconds": max_seconds,
        "k": k,
        "rationalise": rationalise,
        "proposals": self_play,
    }
    train = settings.train.model_copy(update={f: v for f, v in given.items() if v is not None})
    runs = [Path(r) if Path(r).is_dir() else settings.archives_dir / r for r in run]
    if not runs and sample is None:
        console.print("[red]error:[/] give --run RUN (recorded runs) or --sample SUITE (sample them now)")
        raise typer.Exit(2)
    with train_errors():
        if sample is not None:
            runs.append(_gather(settings, train, sample, limit, spread))
        registry = registry_of(settings)
        dataset = build_dataset(runs, recipe, registry.root / "datasets", train)
        card = read_card(dataset)
        console.print(
            f"dataset {dataset}: {card.rows['train']} train rows from {len(card.train_tasks)} tasks "
            f"(by source: {card.sources}), {len(card.heldout_tasks)} tasks held out; dropped {card.dropped or 'nothing'}",
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
            promote_adapter(lineage.name, sample, None)


def _gather(settings: Any, train: Any, suite: str, limit: int | None, spread: bool) -> Path:
    """A sampling round (B-STaR temperature, rationalisation, self-play as ``train`` says) into a new run."""
    from agentevo.evaluate.evaluator import Evaluator
    from agentevo.runs import RunDir
    from agentevo.train.gather import GATHERED, gather, opened_chat_model

    run = RunDir(settings.archives_dir)
    with opened_chat_model(settings) as chat_model:
        done = gather(
            chat_model,
            suite,
            Evaluator(settings.sandbox),
            run,
            model=settings.llm.model,
            config=train,
            limit=limit,
            spread_out=spread,
        )
    s, played = done.sampling, done.selfplay
    picked = s.round or next(p for p in s.probes if p.temperature == s.temperature)
    console.print(
        f"sampled {done.tasks} train tasks of {suite}: temperature {s.temperature} (probed "
        f"{[p.temperature for p in s.probes]}), pass@1 {picked.pass_at_1:.2f}"
        + (
            f", rationalised {picked.rationalised.tasks_passed}/{picked.rationalised.tasks_tried}"
            if picked.rationalised
            else ""
        )
        + (
            f"; self-play kept {played.kept}/{played.proposals} proposals, refused {played.refused}"
            if played
            else ""
        ),
        highlight=False,
    )
    console.print(f"sampling round in {run.path} ({GATHERED}, proposals.jsonl)", highlight=False)
    return run.path
