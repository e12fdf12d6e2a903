"""A small real evolution for the report and status tests, run in a child process so the test can watch it live:
the real loop, archive (git, event log), gates and Docker evaluations, driven by the scripted model and scripted
operators of tests/evolve/scripted.py (control flow, not model quality).

The seed is weakened; the first child restores it (admitted, scores higher), the second edits a protected file
and the third changes nothing (both refused at their gates, with the reason). The contract check (a smoke episode
per node) is off to keep the run short; tests/evolve covers it.

    python -m tests.report.scripted_run ARCHIVES_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from agentevo.config.evolve import Price, Stage
from agentevo.evolve.start import evolve_run, open_run
from tests.evolve import scripted

NODES = 4


def main(archives: str) -> None:
    config, evolve = scripted.settings(
        Path(archives),
        max_nodes=NODES,
        stages=[Stage(name="small", tasks=1)],
        contract_check=False,
        prices={"*": Price(prompt=3.0, completion=15.0)},  # the report plots dollars where calls are priced
    )
    run, evolve = open_run(config, evolve, seed=scripted.weakened_seed(Path(archives) / "seed"))
    run.describe(command="python -m tests.report.scripted_run")
    print(f"RUN {run.run_id}", flush=True)
    operator = scripted.ScriptedOperator([scripted.fix, scripted.edit_protected, scripted.no_change])
    status = evolve_run(
        config, evolve, run, backend=scripted.backend(), mutator_backend=scripted.backend(), operator=operator,
        tasks=scripted.tasks()[1:2],  # one task the scripted answer solves once the seed is fixed
    )  # fmt: skip
    print(f"DONE {status.cause.value} {status.nodes}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
