"""The seed's genome: its strategy as a declared, validated file (``genome.json``), not as code.

Evolution on a small model searches these settings (the ``mutate``, ``crossover`` and ``bootstrap`` operators
rewrite only this file and the prompt files); a strong model may still edit the code. The schema is versioned with
the agent contract: ``contract`` must equal ``agentevo.contract.VERSION``. Every setting changes what the agent
does (see AGENT.md for which strategy reads which setting).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentevo import contract

from .examples import visible_examples

FOLDER = Path(__file__).resolve().parent
SECTIONS_DIR = "prompts/sections"  # the library of prompt sections, one ``<name>.md`` each
SYSTEM_FILE = "prompts/system.md"  # the loop's system prompt
DIRECT_FILE = "prompts/direct.md"  # the direct strategy's system prompt
DEMO_CHARS = 2000


class Strategy(StrEnum):
    """How an episode is solved."""

    direct = "direct"  # one-function tasks: k answers at once, the filter keeps one; other tasks: the loop
    loop = "loop"  # always the multi-step tool loop


class CandidateFilter(StrEnum):
    """How one answer is kept among the k samples (and, in the loop, whether submit checks the examples)."""

    none = "none"  # the first sample that holds code
    examples = "examples"  # the statement's examples run in the sandbox; with none, agreement on model-written inputs


class CaseUse(StrEnum):
    """When the solved cases memory serves are shown (direct strategy; the loop always shows them)."""

    always = "always"  # before every answer, as worked examples
    retry = "retry"  # only in one more batch after the first answers fail the statement's examples


class Tool(StrEnum):
    bash = "bash"
    view = "view"
    create = "create"
    str_replace = "str_replace"
    submit = "submit"


class Section(StrEnum):
    """The prompt sections shipped in ``prompts/sections/``, appended to the system prompt in the genome's order."""

    restate = "restate"
    edge_cases = "edge-cases"
    example_first = "example-first"
    stdlib = "stdlib"
    signature = "signature"
    concise = "concise"


class Demo(BaseModel):
    """A worked example: a task the agent solved and the evaluator verified, shown before the real task."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(max_length=200, description="Never shown on its own task (no leak into a score).")
    task: str = Field(max_length=DEMO_CHARS)
    solution: str = Field(max_length=DEMO_CHARS)


class Genome(BaseModel):
    """The strategy. Defaults are the seed's: one greedy answer, no filter, no demos, no sections."""

    model_config = ConfigDict(extra="forbid")

    contract: Literal[1] = Field(
        contract.VERSION, description="The agent contract version this schema is for."
    )
    strategy: Strategy = Strategy.direct
    samples: int = Field(
        1, ge=1, le=8, description="Answers sampled at once (direct); costs that many calls."
    )
    temperature: float | None = Field(
        None, ge=0.0, le=1.2, description="Sampling temperature of every model call (None: the backbone's)."
    )
    greedy_first: bool = Field(
        False,
        description="The first of the samples decoded greedily (T 0): the one-answer agent's answer is always "
        "among the candidates, and it wins ties (direct, samples > 1).",
    )
    rounds: int = Field(
        1,
        ge=1,
        le=3,
        description="Batches of samples at most (direct, samples > 1): another batch only while no answer passes "
        "every example the statement shows, so the hard tasks get the extra calls.",
    )
    filter: CandidateFilter = CandidateFilter.none
    demos: list[Demo] = Field(default_factory=list, max_length=3)
    cases: int = Field(
        2,
        ge=0,
        le=4,
        description="Verified solutions of similar tasks fetched from memory and shown after the demos (only when "
        "the host turns memory on).",
    )
    cases_when: CaseUse = Field(
        CaseUse.retry,
        description="Solved cases before every answer (always), or only in a retry once the first answers fail "
        "the statement's examples (retry): the answer the agent gives alone is kept where it passes, so a case "
        "that distracts the small model costs nothing there.",
    )
    sections: list[Section] = Field(default_factory=list)
    max_steps: int = Field(
        12, ge=1, le=30, description="Model calls of the loop (the episode budget caps it)."
    )
    tools: list[Tool] = Field(default_factory=lambda: list(Tool))
    reply_tokens: int = Field(512, ge=64, le=1024, description="Tokens per reply (the gateway caps it too).")

    @field_validator("sections", "tools")
    @classmethod
    def _unique(cls, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise ValueError(f"names repeat in {[str(v) for v in value]}: list each once")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Genome:
        if Tool.submit not in self.tools:
            raise ValueError("tools must include submit: without it the loop can never finish")
        if self.samples > 1 and not self.temperature:
            raise ValueError("samples > 1 need a temperature above 0 (else they are one answer k times)")
        if self.samples > 1 and self.filter is CandidateFilter.none:
            raise ValueError("samples > 1 need filter: examples (without it only the first answer is read)")
        if self.samples == 1 and (self.greedy_first or self.rounds > 1):
            raise ValueError("greedy_first and rounds > 1 need samples > 1 (they shape a batch of samples)")
        return self

    def read(self) -> list[str]:
        """The settings its strategy reads on a one-function task, each free to change on its own: the direct
        strategy's filter is not, as it follows its samples (the examples filter for k > 1, a no-op for one)."""
        common = ["strategy", "temperature", "demos", "sections", "reply_tokens"]
        if self.strategy is Strategy.direct:
            return [*common, "samples", "greedy_first", "rounds"]
        return [*common, "filter", "max_steps", "tools"]

    def effective(self) -> Genome:
        """The same agent on a one-function task with what its strategy does not read at the defaults: two genomes
        with equal ``effective()`` answer alike, so a search that has tried one need not try the other."""
        unread = {"samples", "greedy_first", "rounds", "filter", "max_steps", "tools"} - set(self.read())
        data = self.model_dump() | {name: getattr(DEFAULTS, name) for name in unread}
        if self.strategy is Strategy.direct and self.samples > 1:
            data["filter"] = CandidateFilter.examples
        return Genome.model_validate(data)

    def direct_for(self, task: dict[str, Any]) -> bool:
        """Whether ``task`` is answered directly: the strategy says so, and the task is one function, given as a
        stub to complete or shown by examples to check against."""
        entry = task.get("entry_point")
        if self.strategy is not Strategy.direct or not entry:
            return False
        stub = (task.get("files") or {}).get(task.get("solution_file") or "solution.py", "")
        return f"def {entry}(" in stub or bool(visible_examples(task.get("instructions", ""), entry))

    def sampling(self, sample: int | None = None) -> dict[str, float]:
        """Options for a model call (``sample``: its index in the direct strategy's samples): the temperature,
        when the genome sets one; T 0 for the first sample under ``greedy_first``."""
        if self.greedy_first and sample == 0:
            return {"temperature": 0.0}
        return {} if self.temperature is None else {"temperature": self.temperature}

    def with_demos(self, demos: Sequence[Demo]) -> Genome:
        """The same genome with ``demos`` shown after its own worked examples."""
        return self.model_copy(update={"demos": [*self.demos, *demos]}) if demos else self

    def prompt_files(self) -> list[str]:
        """The prompt files it reads on a one-function task (as ``read``), relative to its folder: its strategy's
        system prompt and its sections. An edit of any other prompt file changes nothing on such a task."""
        base = DIRECT_FILE if self.strategy is Strategy.direct else SYSTEM_FILE
        return [base, *(f"{SECTIONS_DIR}/{s.value}.md" for s in self.sections)]

    def system_prompt(self, base: str, folder: Path = FOLDER) -> str:
        """``base`` followed by the genome's sections, read from the agent's own library."""
        texts = [(folder / SECTIONS_DIR / f"{s.value}.md").read_text().strip() for s in self.sections]
        return "\n\n".join([base.strip(), *texts])


DEFAULTS = Genome()


def load_genome(folder: Path = FOLDER) -> Genome:
    """The agent's genome; a missing file is the defaults, a bad one fails with what to fix."""
    path = Path(folder) / contract.GENOME_FILE
    if not path.is_file():
        return Genome()
    return Genome.model_validate(json.loads(path.read_text()))


def dump_genome(genome: Genome, declared: Collection[str] | None = None) -> str:
    """The file text of ``genome`` (stable: fields as declared, two-space indent). With ``declared`` (the settings
    a parent's file names), only those and the ones set away from their defaults: an agent whose code predates a
    setting still reads a child's file, unless the child needs that setting."""
    data = genome.model_dump(mode="json")
    if declared is not None:
        defaults = DEFAULTS.model_dump(mode="json")
        data = {name: value for name, value in data.items() if name in declared or value != defaults[name]}
    return json.dumps(data, indent=2) + "\n"
