"""``agentevo adapters list|promote|rollback``: the LoRA adapter registry and which adapter is served."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.table import Table

from agentevo.cli.common import config, console, expected_errors

app = typer.Typer(
    help="LoRA adapters of the served backbone: list, promote, roll back.", no_args_is_help=True
)
out = console.__class__(soft_wrap=True)  # stdout: what the user asked for, pipeable


@contextlib.contextmanager
def train_errors() -> Iterator[None]:
    """Dataset, training and registry failures (and the usual backbone ones) as one red line, exit code 1."""
    from agentevo.train import DatasetError, RegistryError, TrainError
    from agentevo.train.trajectories import TrajectoryError

    try:
        yield
    except (DatasetError, TrajectoryError, TrainError, RegistryError, *expected_errors()) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


def heldout_tasks(dataset_dir: Path, limit: int | None) -> list:
    """The dataset's held-out tasks, loaded from the suites its runs were recorded on (their run.json)."""
    from agentevo.tasks.suites import load_suite
    from agentevo.train import DatasetError
    from agentevo.train.datasets import read_card

    card = read_card(dataset_dir)
    wanted = set(card.heldout_tasks)
    suites = set()
    for run in card.run_dirs:
        described = Path(run) / "run.json"
        suite = json.loads(described.read_text()).get("suite") if described.is_file() else None
        if suite:
            suites.add(suite)
    tasks = [t for spec in sorted(suites) for t in load_suite(spec) if t.id in wanted]
    if not tasks:
        raise DatasetError(
            f"the dataset {dataset_dir} names no held-out task of a known suite (its runs' run.json record "
            "none): record runs with `agentevo run --split all` so some tasks are held out"
        )
    return tasks[:limit] if limit else tasks


def promote_adapter(name: str, limit: int | None) -> None:
    """Start the configured server, score ``name`` against the active model on held-out tasks, and decide."""
    from agentevo.evaluate.evaluator import Evaluator
    from agentevo.llm.backbone import make_chat_model
    from agentevo.llm.model_store import ensure_embedded_model
    from agentevo.train import RegistryError, promote
    from agentevo.train.registry import base_fingerprint
    from agentevo.train.scoring import TaskScorer, served_ask
    from agentevo.train.serving import registry_of, served_model_dir

    settings = config()
    registry = registry_of(settings)
    lineage = registry.get(name)
    tasks = heldout_tasks(Path(lineage.dataset), limit)
    model_dir = served_model_dir(settings) or ensure_embedded_model(settings.cache_dir)
    chat = make_chat_model(settings.llm, settings.cache_dir)
    server = getattr(chat, "server", None)
    if server is None:
        raise RegistryError(
            f"llm.backbone {settings.llm.backbone} serves no adapters; promote with llamacpp or vllm"
        )
    try:
        console.print(f"scoring {name} and the active model on {len(tasks)} held-out tasks")
        scorer = TaskScorer(
            served_ask(server, settings.train.eval_max_tokens), tasks, Evaluator(settings.sandbox)
        )
        decision = promote(
            registry,
            server,
            name,
            scorer,
            base_sha256=base_fingerprint(model_dir),
            margin=settings.train.margin,
        )
    finally:
        server.stop()
    colour = "green" if decision.action == "promote" else "yellow"
    console.print(f"[{colour}]{decision.action}[/]: {decision.reason}")
    out.print(
        f"active adapter: {registry.active() or 'none (the base model)'}; decisions in {registry.root / 'active.json'}"
    )


@app.command("list")
def list_() -> None:
    """Every adapter version with its lineage, and which one the gateway serves."""
    from agentevo.train.serving import registry_of

    with train_errors():
        registry = registry_of(config())
        versions, state = registry.versions(), registry.state()
    if not versions:
        out.print(f"no adapters in {registry.root} (train one with `agentevo finetune --run RUN`)")
        return
    table = Table("name", "active", "recipe", "steps", "loss", "tokens/s", "data", "parent", "created")
    for v in versions:
        m = v.metrics
        loss = f"{m['train_loss']:.3f}" if m.get("train_loss") is not None else "-"
        table.add_row(
            v.name, "*" if v.name == state.active else "", v.recipe, str(m.get("steps", "-")), loss,
            str(m.get("tokens_per_second", "-")), v.data_sha256[:12], v.parent or "-",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created)),
        )  # fmt: skip
    out.print(table)
    for d in state.decisions[-5:]:
        out.print(
            f"{time.strftime('%H:%M:%S', time.localtime(d.time))} {d.action}: {d.reason}", highlight=False
        )
    out.print(f"active: {state.active or 'none (the base model)'}; registry: {registry.root}")


@app.command()
def promote(
    name: str = typer.Argument(..., help="The adapter version, e.g. agent-v3."),
    limit: int | None = typer.Option(None, min=1, help="Score on at most N held-out tasks."),
) -> None:
    """Serve NAME beside the active model, score both on held-out tasks, and make NAME active only if better."""
    with train_errors():
        promote_adapter(name, limit)


@app.command()
def rollback() -> None:
    """Make the previously active adapter (or the base model) active again; gateways opened later serve it."""
    from agentevo.train import rollback as roll_back
    from agentevo.train.serving import registry_of

    with train_errors():
        registry = registry_of(config())
        decision = roll_back(registry)
    out.print(
        f"active adapter: {decision.active or 'none (the base model)'} (was {decision.previous or 'the base'})"
    )
