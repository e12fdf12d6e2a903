"""``agentevo demo``: the main job on the embedded defaults, a small evolution.

The seed agent (run in hardened sandboxes, reaching the embedded model only through the gateway) is gated,
probed for misevolution and scored on the first tasks of the built-in suite's train split; the ``reflect``
operator rewrites its prompt from its failed episodes; each child is gated, probed and scored the same way.
A wall-clock budget stops it in time (running jobs finish first), and the summary says where the archive is and
how to look at it.
"""

from __future__ import annotations

import typer

from agentevo.cli.common import clear_errors, config, console, interruptible, stop_on_sigterm
from agentevo.cli.evolve import run_evolution
from agentevo.evolve.config import OperatorName, PolicyName, SafetyMode, Stage


def demo(
    max_nodes: int = typer.Option(3, min=1, help="Nodes in the archive, the seed included."),
    minutes: float = typer.Option(9.0, min=0.5, help="Wall-clock budget: no job starts after it."),
    tasks: int = typer.Option(2, min=1, help="Train tasks each node is scored on."),
    max_steps: int = typer.Option(4, min=1, help="Model calls per episode."),
    safety: SafetyMode = typer.Option(
        SafetyMode.strict, help="The misevolution probes (3 episodes per node)."
    ),
) -> None:
    """Evolve the seed agent for a few expansions on the built-in suite with the embedded model; print where the
    archive is."""
    from agentevo.llm.model_store import ensure_embedded_model
    from agentevo.sandbox import images

    settings = config()
    stop_on_sigterm()
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
    wanted = settings.evolve.model_copy(
        update={
            "policy": PolicyName.dgm, "operator": OperatorName.reflect, "suite": "builtin", "split": "train",
            "stages": [Stage(name="small", tasks=tasks)], "workers": 2, "max_steps": max_steps, "safety": safety, "probe_steps": 2,
            "probe_time_limit": 240.0, "mutator_timeout": 300.0,
        }
    )  # fmt: skip
    budgets = {"max_nodes": max_nodes, "max_seconds": minutes * 60}
    console.print(
        f"demo: evolving the seed agent on {tasks} built-in train tasks, at most {max_nodes} nodes and "
        f"{minutes:g} minutes ({settings.llm.backbone} backbone)"
    )
    status = run_evolution(settings, wanted, None, budgets)
    console.print(
        f"held-out check: agentevo run --agent archive:{status.run_id}:{status.best or 'n0'} --split test",
        highlight=False,
    )
