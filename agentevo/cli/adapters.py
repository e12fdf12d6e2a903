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
from agentevo.runs import RUN_FILE

app = typer.Typer(
    help="LoRA adapters of the served backbone: list, promote, roll back.", no_args_is_help=True
)
out = console.__class__(soft_wrap=True)  # stdout: what the user asked for, pipeable


@contextlib.contextmanager
def train_errors() -> Iterator[None]:
    """Dataset, training and registry failures (and the usual backbone ones) as one red line, exit code 1."""
    from agentevo.compare import ArmError, CompareError
    from agentevo.train import DatasetError, RegistryError, TrainError
    from agentevo.train.selfplay import SelfPlayError
    from agentevo.train.trajectories import TrajectoryError

    failures: tuple[type[Exception], ...] = (
        DatasetError,
        TrajectoryError,
        TrainError,
        RegistryError,
        SelfPlayError,
        CompareError,
        ArmError,
        *expected_errors(),
    )
    try:
        yield
    except failures as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


def suite_of(dataset_dir: Path) -> str:
    """The suite the dataset's runs were recorded on (their run.json), where its validation tasks come from."""
    from agentevo.train import DatasetError
    from agentevo.train.datasets import read_card

    for run in read_card(dataset_dir).run_dirs:
        described = Path(run) / RUN_FILE
        suite = json.loads(described.read_text()).get("suite") if described.is_file() else None
        if suite:
            return str(suite)
    raise DatasetError(
        f"the dataset {dataset_dir} names no suite (its runs' run.json record none): give --suite SUITE"
    )


def promote_adapter(name: str, suite: str | None, sample: int | None) -> None:
    """Agent episodes of the active model and ``name`` on a fresh validation sample (``agentevo compare``, each
    arm on the configured backbone with its adapter), then the paired rule decides (docs/train.md)."""
    from agentevo.compare import RichProgress
    from agentevo.compare.promotion import EpisodeJudge
    from agentevo.llm.model_store import ensure_embedded_model
    from agentevo.serving.adapters import registry_of, served_model_dir
    from agentevo.train import promote
    from agentevo.train.registry import base_fingerprint

    settings = config()
    if sample is not None:
        settings = settings.model_copy(
            update={"train": settings.train.model_copy(update={"validation_sample": sample})}
        )
    registry = registry_of(settings)
    lineage = registry.get(name)
    model_dir = served_model_dir(settings) or ensure_embedded_model(settings.cache_dir)
    with RichProgress(console) as progress:
        judge = EpisodeJudge(settings, suite or suite_of(Path(lineage.dataset)), progress=progress)
        decision = promote(
            registry, name, judge, base_sha256=base_fingerprint(model_dir), config=settings.train
        )
    colour = "green" if decision.action == "promote" else "yellow"
    console.print(f"[{colour}]{decision.action}[/]: {decision.reason}", highlight=False)
    out.print(
        f"active adapter: {registry.active() or 'none (the base model)'}; decisions in {registry.root / 'active.json'}; "
        f"episodes in {decision.scores.get('comparison')}",
        highlight=False,
    )


@app.command("list")
def list_() -> None:
    """Every adapter version with its lineage, and which one the gateway serves."""
    from agentevo.serving.adapters import registry_of

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
            v.name,
            "*" if v.name == state.active else "",
            v.recipe,
            str(m.get("steps", "-")),
            loss,
            str(m.get("tokens_per_second", "-")),
            v.data_sha256[:12],
            v.parent or "-",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created)),
        )
    out.print(table)
    for d in state.decisions[-5:]:
        out.print(
            f"{time.strftime('%H:%M:%S', time.localtime(d.time))} {d.action}: {d.reason}", highlight=False
        )
    out.print(f"active: {state.active or 'none (the base model)'}; registry: {registry.root}")


@app.command()
def promote(
    name: str = typer.Argument(..., help="The adapter version, e.g. agent-v3."),
    suite: str | None = typer.Option(None, help="Validation tasks from this suite (default: the dataset's)."),
    sample: int | None = typer.Option(
        None, min=1, help="Validation tasks drawn (default: train.validation_sample)."
    ),
) -> None:
    """Agent episodes of the active model and NAME on a fresh validation sample; NAME becomes active only when
    the paired gain beats train.margin with p below train.promote_p on at least train.promote_min_tasks tasks."""
    with train_errors():
        promote_adapter(name, suite, sample)


@app.command()
def scale(
    name: str = typer.Argument(..., help="The adapter version, e.g. agent-v3."),
    factor: float = typer.Argument(
        ..., help="Its strength in the new version, e.g. 0.5 (half way to the base)."
    ),
) -> None:
    """A new version with NAME's weights at FACTOR of their strength (lora_alpha x FACTOR); promote or compare it
    like any other (e.g. an adapter that breaks tasks unlike its training data may keep them at 0.5)."""
    from agentevo.serving.adapters import registry_of

    with train_errors():
        registry = registry_of(config())
        made = registry.scaled(name, factor)
    out.print(f"adapter {made.name}: {name} at scale {factor} ({registry.path(made.name)})")


@app.command()
def rollback() -> None:
    """Make the previously active adapter (or the base model) active again; gateways opened later serve it."""
    from agentevo.serving.adapters import registry_of
    from agentevo.train import rollback as roll_back

    with train_errors():
        registry = registry_of(config())
        decision = roll_back(registry)
    out.print(
        f"active adapter: {decision.active or 'none (the base model)'} (was {decision.previous or 'the base'})"
    )
