"""``agentevo compare``: arms side by side on the same tasks, paired, with confidence intervals and exact tests."""

from __future__ import annotations

from pathlib import Path

import typer

from agentevo.cli.common import clear_errors, config, console, stop_on_sigterm
from agentevo.cli.run import INTERRUPTED, _interruptible, print_infrastructure
from agentevo.runs import COMPARISON_FILE, PLAN_FILE, REPORT_FILE, RESULTS_DB

ARM_HELP = (
    "NAME=AGENT[,KEY=VALUE,...], once per arm; the first is the baseline. AGENT: seed, a folder, archive:RUN:NODE "
    "or archive:RUN:best. KEYS: memory=off|on|PATH, adapter=none|active|NAME, backbone, base_url, model, "
    "temperature, max_steps, max_tokens, or any SECTION.FIELD of the configuration. E.g. --arm base=seed "
    "--arm short=seed,max_steps=1 (docs/compare.md)."
)


def compare(
    arm: list[str] = typer.Option([], "--arm", help=ARM_HELP),
    arms: Path | None = typer.Option(
        None, "--arms", help="A YAML file mapping arm names to specs (after --arm)."
    ),
    suite: str | None = typer.Option(
        None, help="builtin | ladder | humaneval:PATH | mbpp:PATH | exercism:PATH (default builtin)."
    ),
    split: str | None = typer.Option(None, help="train | validation | test | all (default test)."),
    limit: int | None = typer.Option(
        None, min=1, help="The first N tasks of the split, the same for every arm."
    ),
    spread: bool | None = typer.Option(
        None,
        "--spread/--first",
        help="With --limit: N tasks spread over levels and templates, not the first N.",
    ),
    attempts: int | None = typer.Option(
        None, min=1, help="Attempts per task and arm, for pass@k (default 1)."
    ),
    seed: int | None = typer.Option(
        None, help="Seed of the bootstrap and of sampled permutations (default 0)."
    ),
    parallel: int = typer.Option(2, min=1, help="Episodes at once."),
    run: str | None = typer.Option(
        None,
        "--run",
        help="Go on with this comparison (run id or folder): resume it, or add the arms given (only those run).",
    ),
) -> None:
    """Run every arm on the same tasks, k attempts each, and compare them with the first: pass@1 with 95 %
    bootstrap intervals, pass@k, the paired difference, an exact paired test, tasks won and lost, and the smallest
    gain the design detects. Resumable: after an interruption the same command with --run RUN runs only the
    missing episodes."""
    from agentevo.archive import ArchiveError
    from agentevo.compare import (
        ArmError,
        CompareError,
        RichProgress,
        load_arms,
        parse_arm,
        summary_line,
    )
    from agentevo.compare.report import print_table
    from agentevo.compare.run import compare as run_comparison
    from agentevo.orchestrate import RunInterrupted
    from agentevo.runs import new_run_id

    settings = config()
    stop_on_sigterm()
    run_id = _run_id(run, settings.archives_dir) or new_run_id()
    try:
        chosen = [parse_arm(text) for text in arm] + (load_arms(arms) if arms else [])
    except ArmError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    with (
        clear_errors(),
        _interruptible(run_dir_hint=settings.archives_dir),
        RichProgress(console) as progress,
    ):
        try:
            result = run_comparison(
                chosen,
                suite=suite,
                split=split,
                limit=limit,
                attempts=attempts,
                seed=seed,
                spread=spread,
                config=settings,
                run_id=run_id,
                parallel=parallel,
                progress=progress,
            )
        except (ArmError, CompareError, ArchiveError) as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except RunInterrupted as stop:
            console.print(f"[yellow]interrupted:[/] {stop}; go on with: agentevo compare --run {run_id}")
            raise typer.Exit(INTERRUPTED) from None
    print_table(console, result)
    failure = print_infrastructure(result.run_dir)
    console.print(summary_line(result), highlight=False)
    console.print(f"results: {result.run_dir / COMPARISON_FILE} and {result.run_dir / REPORT_FILE}")
    console.print(f"rows: {result.run_dir / RESULTS_DB} (agent_id = arm); plan: {result.run_dir / PLAN_FILE}")
    if failure:
        console.print(f"[red]error:[/] {failure}", highlight=False)
        raise typer.Exit(1)


def _run_id(run: str | None, archives_dir: Path) -> str | None:
    """``--run`` as a run id under ``archives_dir`` (a run folder given by path must lie there)."""
    if run is None:
        return None
    path = Path(run)
    if path.is_dir() and path.resolve().parent != Path(archives_dir).resolve():
        console.print(
            f"[red]error:[/] --run {run}: the comparison must be under archives_dir ({archives_dir})"
        )
        raise typer.Exit(2)
    if not (Path(archives_dir) / path.name / PLAN_FILE).is_file():
        console.print(
            f"[red]error:[/] --run {run}: no comparison there (no {archives_dir}/{path.name}/{PLAN_FILE})"
        )
        raise typer.Exit(2)
    return path.name
