"""``agentevo demo``: the main job on the embedded defaults.

The seed agent runs in isolated mode (inside hardened sandboxes, reaching the embedded model only
through the gateway) on the easiest slice of the built-in suite; every episode is scored by the
hidden-test evaluator. A later issue turns this into an evolution run.
"""

from __future__ import annotations

import typer

from agentevo.cli import run as run_cli
from agentevo.cli.common import clear_errors, config, console


def demo(
    limit: int = typer.Option(6, min=1, help="How many built-in tasks (the easiest first)."),
    max_steps: int = typer.Option(6, min=1, help="Model calls per episode."),
    parallel: int = typer.Option(2, min=1, help="Episodes at once."),
) -> None:
    """Run the seed agent on the built-in suite with the embedded model; print the pass rate and where results are."""
    from agentevo.llm.model_store import ensure_embedded_model
    from agentevo.sandbox import images

    settings = config()
    with clear_errors():
        with console.status("checking the sandbox image (first build takes ~2 min)"):
            images.ensure_image(settings.sandbox.image, log=lambda line: console.print(line, highlight=False))
        if settings.llm.backbone != "openai":  # local, vllm and auto all serve the embedded model
            with console.status("checking the embedded model (first fetch takes ~1 min)"):
                ensure_embedded_model(
                    settings.cache_dir, log=lambda line: console.print(line, highlight=False)
                )
    run_cli.run(
        agent="seed",
        suite="builtin",
        split="all",
        limit=limit,
        backbone=None,
        parallel=parallel,
        attempts=1,
        max_steps=max_steps,
    )
