"""``reflect``'s structured edits: the schema offers only declared surfaces and their own lines, and a reflection
that changes nothing fails with a named reason instead of making a child that would be refused as an empty diff.

The operator runs through a real gateway (Unix socket, recorded calls). The scripted chat model stands in for
the backbone where a test needs a fixed answer (it says so); the last test asks the real embedded model on the
llama.cpp server, whose decoding is held to the schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel

from agentevo.config import AgentevoConfig
from agentevo.evolve.operators import (
    REFLECT_TEMPERATURE,
    REFLECT_TRIES,
    Edits,
    MutationFailed,
    Parent,
    Reflect,
    ReflectFailure,
    apply_edits,
    copy_agent,
    edits_schema,
)
from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.gateway.client import HostLLM
from agentevo.llm.backbone import make_chat_model
from agentevo.llm.config import EMBEDDED_MODEL_NAME, LLMConfig
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.llm.structured import StructuredFailure
from tests.llm.conftest import free_port, llamacpp_test_config

PROMPT = "You are a careful programmer.\nTest your code with bash.\nCall submit when done.\n"
FILES = {"prompts/system.md": PROMPT}
SEED = Path(__file__).resolve().parents[2] / "agentevo" / "agents" / "seed"


@pytest.fixture
def llamacpp_chat_model() -> Iterator[BaseChatModel]:
    config = LLMConfig(backbone="llamacpp", llamacpp=llamacpp_test_config(free_port(), parallel=1))
    model = make_chat_model(config, AgentevoConfig().cache_dir)
    try:
        yield model
    finally:
        model.server.stop()


def _parent(tmp_path: Path) -> Parent:
    folder = tmp_path / "parent"
    (folder / "prompts").mkdir(parents=True)
    (folder / "prompts" / "system.md").write_text(PROMPT)
    (folder / "run.py").write_text("print('run')\n")
    return Parent(id="n0", folder=folder, failed=[])


def _reflect(tmp_path: Path, backend: ChatModelBackend) -> tuple[Reflect, Gateway]:
    gateway = Gateway(backend, run_dir=tmp_path / "run", run_id="r").start()
    return Reflect(HostLLM(gateway, scope="evolve", timeout=300), ["prompts/*.md"]), gateway


def test_the_schema_names_only_surfaces_and_their_lines():
    schema = edits_schema(FILES)
    branches = schema["properties"]["edits"]["items"]["anyOf"]
    assert {b["properties"]["path"]["enum"][0] for b in branches} == {"prompts/system.md"}
    assert branches[0]["properties"]["search"]["enum"] == PROMPT.splitlines()
    assert branches[1]["properties"]["content"]["maxLength"] > len(PROMPT)


def test_edits_apply_or_are_dropped_with_a_reason():
    edits = Edits.model_validate(
        {"edits": [
            {"path": "prompts/system.md", "search": "Test your code with bash.", "replace": "Run the tests first."},
            {"path": "run.py", "content": "hacked"},
        ]}
    )  # fmt: skip
    new, dropped = apply_edits(edits, FILES)
    assert new == {"prompts/system.md": PROMPT.replace("Test your code with bash.", "Run the tests first.")}
    assert dropped == [f"{ReflectFailure.outside_surfaces.value}: run.py"]
    same = Edits.model_validate({"edits": [{"path": "prompts/system.md", "content": PROMPT}]})
    assert apply_edits(same, FILES) == ({}, [f"{ReflectFailure.no_change.value}: prompts/system.md"])


UNCHANGED = {
    "path": "prompts/system.md",
    "search": "Call submit when done.",
    "replace": "Call submit when done.",
}
SPACES = {
    "path": "prompts/system.md",
    "search": "Call submit when done.",
    "replace": "Call submit when done.   ",
}


def _answers(*edits: dict) -> list[str]:
    return [json.dumps({"edits": [edit]}) for edit in edits]


def test_a_reflection_that_changes_nothing_fails_by_name(tmp_path):
    """Scripted: every answer repeats a line as it is (or adds trailing spaces), so after REFLECT_TRIES answers no
    child is made and the reason names each."""
    reflect, gateway = _reflect(
        tmp_path, ChatModelBackend(ScriptedChatModel(replies=_answers(UNCHANGED, SPACES)), "m")
    )
    with gateway, pytest.raises(MutationFailed, match=f"no file in {REFLECT_TRIES} answers") as failed:
        reflect.propose(_parent(tmp_path), tmp_path / "work")
    assert str(failed.value).count("no_change: prompts/system.md") == REFLECT_TRIES
    assert not (tmp_path / "work").exists()


def test_an_answer_that_changes_nothing_costs_a_call_not_the_expansion(tmp_path):
    """Scripted: a line repeated, then only trailing spaces added, then a real edit: one child, from the third
    answer, and three calls recorded."""
    real = {**UNCHANGED, "replace": "Run the examples before you submit."}
    reflect, gateway = _reflect(
        tmp_path, ChatModelBackend(ScriptedChatModel(replies=_answers(UNCHANGED, SPACES, real)), "m")
    )
    with gateway:
        proposal = reflect.propose(_parent(tmp_path), tmp_path / "work")
    written = (proposal.folder / "prompts" / "system.md").read_text()
    assert written == PROMPT.replace("Call submit when done.", real["replace"])
    assert len((tmp_path / "run" / "llm_calls.jsonl").read_text().splitlines()) == 3


def test_garbage_twice_is_a_named_failure_and_both_calls_are_recorded(tmp_path):
    """Scripted: a backbone that ignores the schema; each answer's repair is asked once, then the failure is
    named."""
    reflect, gateway = _reflect(
        tmp_path, ChatModelBackend(ScriptedChatModel(replies=["I would edit it."]), "m")
    )
    with gateway, pytest.raises(MutationFailed, match=StructuredFailure.invalid_json.value):
        reflect.propose(_parent(tmp_path), tmp_path / "work")
    records = [json.loads(line) for line in (tmp_path / "run" / "llm_calls.jsonl").read_text().splitlines()]
    assert [r["structured_failure"] for r in records] == ["invalid_json"] * 2 * REFLECT_TRIES
    assert all(r["request"]["response_format"]["json_schema"]["name"] == "Edits" for r in records)


@pytest.mark.model
def test_the_embedded_model_answers_edits_that_apply(tmp_path, llamacpp_chat_model):
    """The real 135M model on llama.cpp, held to the schema: its answer parses as edits of the surface (or the
    reflection fails with a named reason; it never crashes and never writes outside the surface)."""
    reflect, gateway = _reflect(tmp_path, ChatModelBackend(llamacpp_chat_model, EMBEDDED_MODEL_NAME))
    with gateway:
        try:
            proposal = reflect.propose(_parent(tmp_path), tmp_path / "work")
        except MutationFailed as exc:
            assert any(r.value in str(exc) for r in [*ReflectFailure, *StructuredFailure]), exc
            return
    assert proposal.change == "reflect: rewrote prompts/system.md"
    assert (proposal.folder / "run.py").read_text() == "print('run')\n"
    assert (proposal.folder / "prompts" / "system.md").read_text() != PROMPT


def _offered_paths(request: dict) -> set[str]:
    schema = request["response_format"]["json_schema"]["schema"]
    return {b["properties"]["path"]["enum"][0] for b in schema["properties"]["edits"]["items"]["anyOf"]}


@pytest.mark.parametrize(
    ("settings", "offered"),
    [
        ({"sections": []}, {"prompts/direct.md"}),
        ({"sections": ["concise"]}, {"prompts/direct.md", "prompts/sections/concise.md"}),
        ({"strategy": "loop", "sections": ["concise"]}, {"prompts/system.md", "prompts/sections/concise.md"}),
    ],
)
def test_reflect_offers_only_the_prompt_files_the_genome_reads(tmp_path, settings, offered):
    """Scripted: the seed's own folder, whose `prompts/*.md` glob also matches the section library and the other
    strategy's prompt. Only the strategy's own prompt and the genome's sections are offered (the files it reads on a
    one-function task); an edit of an unread file would make a child that behaves as its parent. The reflection is
    sampled, so that a second one of the same parent may differ."""
    folder = copy_agent(SEED, tmp_path / "parent")
    genome = json.loads((folder / "genome.json").read_text()) | settings
    (folder / "genome.json").write_text(json.dumps(genome))
    base = "prompts/system.md" if settings.get("strategy") == "loop" else "prompts/direct.md"
    first = (folder / base).read_text().splitlines()[0]
    reply = json.dumps({"edits": [{"path": base, "search": first, "replace": "Be exact."}]})
    reflect, gateway = _reflect(tmp_path, ChatModelBackend(ScriptedChatModel(replies=[reply]), "m"))
    with gateway:
        proposal = reflect.propose(Parent(id="n0", folder=folder, failed=[]), tmp_path / "work")
    [record] = [json.loads(line) for line in (tmp_path / "run" / "llm_calls.jsonl").read_text().splitlines()]
    assert _offered_paths(record["request"]) == offered
    assert record["request"]["temperature"] == REFLECT_TEMPERATURE
    assert (proposal.folder / base).read_text().startswith("Be exact.\n")
