"""Evolution on a web suite: the web seed is the run's seed, its child passes the contract check, and both are
scored by the page through the same loop as coding agents. A scripted chat model (control flow, not skill)
answers every step with ``stop()``; a scripted operator makes the child.
"""

from __future__ import annotations

from collections import Counter

import pytest

from agentevo.archive import Archive
from agentevo.config.evolve import Stage
from agentevo.evaluate.results import ResultsStore
from agentevo.evolve.start import evolve_run, open_run
from agentevo.gateway import ChatModelBackend
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.tasks import load_suite
from tests.evolve import scripted


def terse_prompt(folder) -> None:
    (folder / "prompts" / "system.md").write_text("Act on the page. Answer with one action.\n")


@pytest.mark.timeout(600)
def test_evolve_on_a_web_suite(tmp_path, web_image, sandbox_image) -> None:
    config, evolve = scripted.settings(
        tmp_path / "archives",
        max_nodes=2,
        suite="miniwob:click-button",
        stages=[Stage(name="small", tasks=1)],
    )
    run, evolve = open_run(config, evolve)
    backend = ChatModelBackend(ScriptedChatModel(replies=["stop()"]), "scripted")
    status = evolve_run(
        config, evolve, run, backend=backend, mutator_backend=backend,
        operator=scripted.ScriptedOperator([terse_prompt]), tasks=load_suite("miniwob:click-button"),
    )  # fmt: skip
    assert status.nodes == 2 and status.error is None, status
    with Archive.open(run.path) as archive, ResultsStore(run.path / "results.sqlite") as store:
        nodes = {n.id: n for n in archive.nodes()}
        assert (
            archive.export("n0", tmp_path / "seed") / "actions.py"
        ).is_file()  # the web seed, not the coder
        assert nodes["n1"].gate.passed, nodes["n1"].gate  # the contract check passes a web agent
        assert nodes["n0"].scores["small"].tasks == nodes["n1"].scores["small"].tasks == 1
        rows = store.rows(run.run_id)
    assert Counter(r.agent_id for r in rows) == {"n0": 1, "n1": 1}
    assert {(r.task_id, r.passed) for r in rows} == {("miniwob/click-button", False)}  # stop() never clicks
