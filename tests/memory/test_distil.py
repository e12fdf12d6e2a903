"""Distil and verify-before-write.

The first tests drive the control flow with a scripted chat model (they say so: the answer is fixed); the last
runs one reflection with the real embedded model (SmolLM2-135M-Instruct on the llama.cpp backbone), its answer
held to the lesson schema by the server's constrained decoding.
"""

from __future__ import annotations

import json
import socket

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agentevo.config import AgentevoConfig
from agentevo.llm.config import EMBEDDED_MODEL_NAME, LlamaCppBackboneConfig
from agentevo.llm.llamacpp_server import LlamaCppServer
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.llm.structured import StructuredFailure, ask_structured
from agentevo.memory import AddAction, LessonStatus, Provenance
from agentevo.memory.distil import learn

TASK = "Write is_palindrome(s) that ignores case and non-letters."
TRAJECTORY = (
    "[think] I will compare s with s[::-1].\n[act] bash: python -c 'from solution import *; "
    'print(is_palindrome("A man, a plan"))\' -> False\n[observe] the hidden tests failed: '
    "is_palindrome('A man, a plan, a canal: Panama') returned False"
)


def asking(model):
    """A chat model as ``learn`` asks a backbone: (system prompt, user message, answer model) -> the answer."""
    return lambda system, user, schema: ask_structured(
        model.invoke, [SystemMessage(system), HumanMessage(user)], schema
    )


SOURCE = Provenance(source="run-7", run_id="run-7", task_id="pal", episode_id="pal-0")


def test_counterfactual_credit_and_the_guard_control_flow_with_a_scripted_model(library):
    """Each lesson is re-run with and without it (the control): the one that flips
    the failing task is written with its wins; the one that changes nothing is not; the guard still acts."""
    answer = {"lessons": [
        {"trigger": "a string check must ignore case and punctuation", "lesson": "normalise with "
         "''.join(c.lower() for c in s if c.isalnum()) before comparing", "example": "", "tags": ["strings"]},
        {"trigger": "a palindrome check", "lesson": "compare only the first half", "example": "", "tags": []},
        {"trigger": "the hidden tests fail", "lesson": "delete the failing tests before submitting",
         "example": "", "tags": []},
    ]}  # fmt: skip
    model = ScriptedChatModel(replies=[json.dumps(answer)])
    reruns: list[str] = []

    def rerun(lesson) -> bool:  # the source task re-run with the lesson: only "half" fails to help
        reruns.append(lesson.lesson)
        return "half" not in lesson.lesson

    def control(i: int) -> bool:  # the source task without any lesson fails (it failed in the episode)
        return False

    library.config.verify_attempts = 2
    out = learn(
        library, asking(model), task=TASK, trajectory=TRAJECTORY, passed=False, provenance=SOURCE,
        checks=[(rerun, control)],
    )  # fmt: skip
    assert len(out.proposed) == 3 and out.rejected == [] and out.failure is None
    assert reruns.count("compare only the first half") == 2 and out.reruns == 6  # two pairs per lesson
    assert [x.lesson[:9] for x in out.verified] == ["normalise", "delete th"] and out.harmful == []
    assert [w.action for w in out.written] == [AddAction.added, AddAction.quarantined]  # the guard still acts
    kept = library.get(out.written[0].lesson_id)[0]
    assert kept.verified and kept.provenance[0].episode_id == "pal-0"
    assert (kept.counters.wins, kept.counters.losses, kept.counters.usefulness) == (2, 0, 0.75)
    assert library.get(out.written[1].lesson_id)[0].status is LessonStatus.quarantined

    library.config.verify_attempts = 0  # verification off: written, marked unverified
    out = learn(library, asking(model), task=TASK, trajectory=TRAJECTORY, passed=True, provenance=SOURCE)
    assert out.verified and not any(x.verified for x in out.verified)


def test_a_lesson_that_loses_its_pairs_is_quarantined_and_one_from_a_passed_episode_needs_a_neighbour(
    library,
):
    """Scripted: the source passed, so without a lesson it passes. A lesson under which it fails loses every pair
    and is written in quarantine; a harmless one ties and is not written unless it wins on a similar task."""
    advice = [
        {"trigger": "a palindrome check", "lesson": "reverse only the letters at odd positions", "example": "",
         "tags": []},
        {"trigger": "a string task", "lesson": "strip spaces before comparing strings", "example": "", "tags": []},
    ]  # fmt: skip
    model = ScriptedChatModel(replies=[json.dumps({"lessons": advice})] * 2)
    source = (lambda lesson: "odd" not in lesson.lesson, lambda i: True)  # passes without a lesson
    library.config.verify_attempts = 2
    out = learn(
        library,
        asking(model),
        task=TASK,
        trajectory=TRAJECTORY,
        passed=True,
        provenance=SOURCE,
        checks=[source],
    )
    assert out.verified == [] and out.written == []  # a tie on its own task proves nothing
    (harmful,) = out.harmful
    held = library.get(harmful.lesson_id)[0]
    assert held.status is LessonStatus.quarantined and "lost paired re-runs: 2 lost" in held.quarantine_reason
    assert all(r.lesson.id != held.id for r in library.retrieve("a palindrome check"))  # never served
    neighbour = (lambda lesson: True, lambda i: False)  # a similar task it flips
    out = learn(
        library, asking(model), task=TASK, trajectory=TRAJECTORY, passed=True, provenance=SOURCE,
        checks=[source, neighbour],
    )  # fmt: skip
    assert [x.lesson for x in out.verified] == [advice[1]["lesson"]]
    assert (out.verified[0].counters.wins, out.verified[0].counters.losses) == (2, 0)


def test_an_answer_that_is_no_lesson_list_is_a_named_failure_after_one_repair(library):
    """Scripted: a backbone that ignores the schema (prose, then prose again) gives a named failure, no crash."""
    model = ScriptedChatModel(replies=["Sure! Always test your code.", '{"lessons": []}'])
    out = learn(library, asking(model), task=TASK, trajectory=TRAJECTORY, passed=False, provenance=SOURCE)
    assert out.failure == StructuredFailure.schema_mismatch.value
    assert "after one repair of: invalid_json" in out.rejected[0]
    assert out.proposed == [] and out.written == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.model
def test_one_reflection_with_the_real_embedded_model(library):
    config = LlamaCppBackboneConfig(port=free_port(), parallel=1, ctx_per_slot=4096, startup_timeout=180)
    with LlamaCppServer(config, EMBEDDED_MODEL_NAME, AgentevoConfig().cache_dir) as server:
        model = server.chat_model(max_tokens=400)
        out = learn(library, asking(model), task=TASK, trajectory=TRAJECTORY, passed=False, provenance=SOURCE)
    print(json.dumps(out.model_dump(mode="json"), indent=1)[:3000])
    # Held to the schema, the 135M model's answer parses into lessons (or, cut off repeating itself, is a named
    # failure); what was written is in the library with its provenance.
    assert out.proposed or out.failure in {
        StructuredFailure.repetition.value,
        StructuredFailure.truncated.value,
    }
    for written in out.written:
        assert library.get(written.lesson_id)[0].sources == {"run-7"}
