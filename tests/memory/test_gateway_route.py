"""Agents read memory through the gateway socket with their episode token, read-only; the host learns after.

The backbone here is a scripted chat model (control flow only: no model call is made in this test).
"""

from __future__ import annotations

import httpx

from agentevo import contract
from agentevo.agents.seed.graph import task_prompt
from agentevo.agents.seed.lessons import fetch_lessons
from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.memory import MemoryConfig
from agentevo.memory.episodes import run_memory
from tests.memory.conftest import lesson

TASK = "Write a function that returns the n-th Fibonacci number; n can be 10000."


def post(gateway: Gateway, path: str, token: str, body: object) -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(gateway.socket_path)), timeout=60) as client:
        return client.post(
            f"http://gateway/v1{path}", json=body, headers={"authorization": f"Bearer {token}"}
        )


def test_episode_reads_lessons_with_its_token_and_the_host_counts_the_outcome(tmp_path, monkeypatch):
    backend = ChatModelBackend(ScriptedChatModel(replies=["unused"]), "scripted")
    config = MemoryConfig(enabled=True, path=tmp_path / "memory")
    with run_memory(config, tmp_path / "unused", run_id="run-1") as memory:
        tip = lesson(
            "the task computes Fibonacci numbers for a large n", "iterate with two variables, no recursion"
        )
        memory.library.add(tip)
        with Gateway(backend, run_dir=tmp_path, run_id="run-1", memory=memory) as gateway:
            access = gateway.open_episode(task_id="fib", episode_id="fib-0")
            monkeypatch.setenv(contract.SOCKET_ENV, str(gateway.socket_path))
            monkeypatch.setenv(contract.TOKEN_ENV, access.token)
            lessons = fetch_lessons(TASK)  # what the seed agent does inside its sandbox
            assert [x["id"] for x in lessons] == [tip.id]
            assert set(lessons[0]) == {"id", "trigger", "lesson", "example", "tags", "score"}  # no provenance
            assert "iterate with two variables" in task_prompt({"instructions": TASK}, lessons)
            assert gateway.lessons_served == {"fib-0": [tip.id]}

            assert post(gateway, "/memory/search", "forged-token", {"query": TASK}).status_code == 401
            monkeypatch.setenv(contract.TOKEN_ENV, "forged-token")
            assert fetch_lessons(TASK) == []
            assert post(gateway, "/memory/search", access.token, {"query": TASK, "k": 99}).status_code == 400
            assert post(gateway, "/memory/search", access.token, ["not", "an", "object"]).status_code == 400
            assert post(gateway, "/memory/add", access.token, {"lesson": "x"}).status_code in (404, 405)
            gateway.close_episode(access)
            assert post(gateway, "/memory/search", access.token, {"query": TASK}).status_code == 401

        memory.after_episode(
            task_id="fib",
            task=TASK,
            episode_id="fib-0",
            passed=True,
            score=1.0,
            served=[tip.id],
            plan="a loop",
        )
        assert memory.library.get(tip.id)[0].counters.helped == 1
        assert memory.library.similar_cases("Fibonacci of a big n")[0][0].lesson_ids == [tip.id]
        assert memory.used == {tip.id}


def test_memory_off_is_a_404_and_the_agent_runs_without_lessons(tmp_path, monkeypatch):
    backend = ChatModelBackend(ScriptedChatModel(replies=["unused"]), "scripted")
    with Gateway(backend, run_dir=tmp_path, run_id="run-2") as gateway:
        access = gateway.open_episode(task_id="t", episode_id="t-0")
        reply = post(gateway, "/memory/search", access.token, {"query": TASK})
        assert reply.status_code == 404 and "memory.enabled" in reply.json()["error"]["message"]
        monkeypatch.setenv(contract.SOCKET_ENV, str(gateway.socket_path))
        monkeypatch.setenv(contract.TOKEN_ENV, access.token)
        assert fetch_lessons(TASK) == []
    with run_memory(MemoryConfig(enabled=False), tmp_path / "m", run_id="run-2") as memory:
        assert memory is None
