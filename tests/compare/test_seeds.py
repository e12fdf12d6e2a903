"""Recorded seeds: a comparison seeds every attempt's model calls, one seed per (arm, task, attempt), mixed by the
gateway with the seed an agent asks for and recorded in the call's request. The gateway is real, the model
scripted (this test is about the seeds it is sent, not what it answers)."""

from __future__ import annotations

import httpx

from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.gateway.recorder import TrajectoryRecorder
from agentevo.gateway.server import call_seed
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.orchestrate.attempts import attempt_seed

BODY = {"messages": [{"role": "user", "content": "hi"}]}


def _ask(gateway: Gateway, token: str, **extra: object) -> None:
    transport = httpx.HTTPTransport(uds=str(gateway.socket_path))
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(transport=transport, base_url="http://gateway", headers=headers, timeout=60) as client:
        assert client.post("/v1/chat/completions", json={**BODY, **extra}).status_code == 200


def test_each_attempt_has_its_own_seed_and_a_redone_attempt_the_same():
    seeds = {attempt_seed(0, arm, task, a) for arm in ("a", "b") for task in ("t1", "t2") for a in range(3)}
    assert len(seeds) == 12  # arms, tasks and attempts all differ (an A/A comparison's arms sample apart)
    assert attempt_seed(0, "a", "t1", 2) == attempt_seed(0, "a", "t1", 2) != attempt_seed(1, "a", "t1", 2)
    assert (
        call_seed(7, 0) == call_seed(7, None) != call_seed(7, 1) != call_seed(8, 1)
    )  # the agent's own counts


def test_the_gateway_sends_and_records_the_episode_seed(tmp_path):
    model = ScriptedChatModel(replies=["ok"])  # scripted: the test is about the request, not the reply
    with Gateway(ChatModelBackend(model, "scripted"), run_dir=tmp_path, run_id="seeds") as gateway:
        seeded, plain = gateway.open_episode(episode_id="e1", seed=7), gateway.open_episode(episode_id="e2")
        _ask(gateway, seeded.token)
        _ask(gateway, seeded.token, seed=1)
        _ask(gateway, plain.token, seed=1)
    sent = [(r.episode_id, r.request.get("seed")) for r in TrajectoryRecorder(tmp_path).read()]
    assert sent == [("e1", call_seed(7, None)), ("e1", call_seed(7, 1)), ("e2", 1)]  # unseeded: left as asked
