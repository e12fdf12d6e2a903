"""Episodes joined with their verdicts per agent: an evolution run's nodes attempt the same tasks under the same
episode ids, and one node's pass must never label another node's trajectory."""

from __future__ import annotations

from agentevo.runs import RunDir
from agentevo.train.trajectories import load_episodes
from tests.train.recorded import record_answer


def test_two_agents_on_the_same_task_and_attempt_keep_their_own_turns_and_verdicts(tmp_path) -> None:
    run = RunDir(tmp_path, "evolved")
    record_answer(run, "toy/t1", 0, "6 * 7?", "42", True, agent_id="n1")
    record_answer(run, "toy/t1", 0, "6 * 7?", "41", False, agent_id="n2")
    episodes = {e.agent_id: e for e in load_episodes(run.path)}
    assert sorted(episodes) == ["n1", "n2"]
    assert [t.completion["content"] for t in episodes["n1"].turns] == ["42"] and episodes["n1"].passed is True
    assert [t.completion["content"] for t in episodes["n2"].turns] == ["41"] and episodes[
        "n2"
    ].passed is False
