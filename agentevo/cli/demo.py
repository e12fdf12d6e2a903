"""``agentevo demo``: the main job on the embedded defaults, evolution you can watch, in about a quarter hour.

The seed agent (in hardened sandboxes, reaching the embedded model only through the gateway) is gated, probed for
misevolution and scored on ladder train tasks spread over the five levels; the genome operators (mutate, crossover,
bootstrap: no capable model needed) and reflect (the embedded model's edits of the prompt files the agent reads, held
to a schema), picked by a bandit, make children that are gated, probed and scored on the same tasks. Then a table
of the nodes (operator, what changed, train score against the parent's on the same tasks), and ``agentevo compare``
of the best node against the seed on as many held-out ladder tasks as the time left allows.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from agentevo.cli.common import clear_errors, config, console, interruptible, stop_on_sigterm
from agentevo.config.evolve import OperatorName, PolicyName, SafetyMode, Stage
from agentevo.runs import RESULTS_DB

STAGE = "train"
OPERATORS = [OperatorName.mutate, OperatorName.crossover, OperatorName.bootstrap, OperatorName.reflect]
COMPARE_SHARE = 0.4  # of the time left after evolution's start, kept for the held-out comparison
PARALLEL = 2  # episodes at once in the comparison


def demo(
    minutes: float = typer.Option(15.0, min=2.0, help="Wall-clock budget of the whole demo."),
    max_nodes: int = typer.Option(8, min=2, help="Nodes in the archive, the seed included."),
    tasks: int = typer.Option(
        10, min=2, help="Ladder train tasks every node is scored on (spread over levels)."
    ),
    max_steps: int = typer.Option(5, min=1, help="Model calls per episode (k samples are k calls)."),
    safety: SafetyMode = typer.Option(SafetyMode.strict, help="The misevolution probes and the canary."),
) -> None:
    """Evolve the seed agent on ladder train tasks with the genome operators, reflect and the embedded model;
    print the nodes, then compare the best with the seed on held-out ladder tasks."""
    from agentevo.cli.evolve import run_evolution
    from agentevo.tasks.spread import chosen

    started = time.monotonic()
    settings = config()
    stop_on_sigterm()
    _ready(settings)
    wanted = settings.evolve.model_copy(
        update={
            "policy": PolicyName.dgm,
            "operators": OPERATORS,
            "suite": "ladder",
            "split": "train",
            "stages": [Stage(name=STAGE, tasks=tasks)],
            "workers": 2,
            "episode_parallel": 2,
            "max_steps": max_steps,
            "safety": safety,
            "probe_steps": 2,
            "probe_time_limit": 240.0,
        }
    )
    evolving = minutes * 60 * (1 - COMPARE_SHARE) - (time.monotonic() - started)
    console.print(
        f"demo: evolving the seed on {tasks} ladder train tasks with {', '.join(o.value for o in OPERATORS)}, "
        f"at most {max_nodes} nodes and {evolving / 60:.1f} minutes ({settings.llm.backbone} backbone)"
    )
    status = run_evolution(
        settings,
        wanted,
        None,
        {"max_nodes": max_nodes, "max_seconds": evolving},
        tasks=chosen("ladder", "train", tasks, spread_out=True),
    )
    per_episode = print_nodes(status.run_dir, status.run_id)
    left = minutes * 60 - (time.monotonic() - started)
    held_out = max(4, min(239, int(left * PARALLEL / (2 * per_episode * 1.5))))
    console.print(
        f"held-out: the best node against the seed on {held_out} ladder test tasks ({left / 60:.1f} min left)"
    )
    compare_best(status.run_id, held_out)


def _ready(settings) -> None:
    """The sandbox image and the embedded model, made once (minutes the first time)."""
    from agentevo.llm.model_store import ensure_embedded_model
    from agentevo.sandbox import images

    with clear_errors(), interruptible("the demo stopped before it started evolving"):
        with console.status("checking the sandbox image (first build takes ~2 min)"):
            images.ensure_image(
                settings.sandbox.image,
                log=lambda line: console.print(line, highlight=False),
                cache_dir=settings.cache_dir,
            )
        if settings.llm.backbone != "openai":  # local, llamacpp, vllm and auto all serve the embedded model
            with console.status("checking the embedded model (first fetch takes ~1 min)"):
                ensure_embedded_model(
                    settings.cache_dir, log=lambda line: console.print(line, highlight=False)
                )


def print_nodes(run_dir: Path, run_id: str) -> float:
    """The table of nodes: operator, what changed, train score against the parent's on the same tasks; returns the
    mean seconds of one episode (what the comparison's size is planned with)."""
    from agentevo.archive import Archive
    from agentevo.compare.report import print_natural
    from agentevo.evaluate.results import ResultsStore

    table = Table(title=f"nodes of {run_id} (every node scored on the same {STAGE} tasks)")
    for column in ("node", "parent", "operator", "what changed", "train", "vs parent", "gate"):
        table.add_column(column)
    with Archive.open(run_dir) as archive:
        nodes = {n.id: n for n in archive.nodes()}
    for node in nodes.values():
        mine = node.scores.get(STAGE)
        theirs = nodes[node.parent].scores.get(STAGE) if node.parent else None
        gate = (
            "admitted"
            if node.gate and node.gate.passed
            else (node.gate.failure or "refused")
            if node.gate
            else "-"
        )
        table.add_row(
            node.id,
            node.parent or "",
            node.operator,
            Text(node.change.partition("): ")[2] or node.change),
            f"{mine.tasks_passed}/{mine.tasks}" if mine and mine.tasks else "-",
            _versus(mine, theirs),
            gate,
        )
    print_natural(console, table)
    with ResultsStore(run_dir / RESULTS_DB) as store:
        seconds = [r.seconds for r in store.rows(run_id) if r.scored]
    return sum(seconds) / len(seconds) if seconds else 30.0


def _versus(mine, theirs) -> str:
    if not (mine and mine.tasks and theirs and theirs.tasks):  # unscored, or every episode spoiled
        return ""
    delta = mine.tasks_passed - theirs.tasks_passed
    return f"{'+' if delta > 0 else ''}{delta} ({theirs.tasks_passed}/{theirs.tasks})"


def compare_best(run_id: str, limit: int) -> None:
    """``agentevo compare --arm seed=seed --arm best=archive:RUN:best --suite ladder --split test --limit N
    --spread``: the N held-out tasks spread over the levels (the split's first N are all of level 1)."""
    from agentevo.cli.compare import compare

    arms = ["seed=seed", f"best=archive:{run_id}:best"]
    flags = f"--suite ladder --split test --limit {limit} --spread"
    console.print(f"agentevo compare --arm {' --arm '.join(arms)} {flags}", highlight=False)
    compare(
        arm=arms,
        arms=None,
        suite="ladder",
        split="test",
        limit=limit,
        spread=True,
        attempts=None,
        seed=None,
        parallel=PARALLEL,
        run=None,
    )
