"""The direct strategy for one-function tasks: k answers sampled at once, one kept by the filter, no tool loop.

The k calls go out together, so a backbone with parallel slots (llama-server's ``-np``) decodes them in one batch.
Each call is one step of the episode's budget; with the ``examples`` filter and no example in the statement, one
more call asks the model for inputs to compare the answers on (CodeT), in the same batch. With ``rounds`` > 1, a
further batch is sampled while no answer passes every example the statement shows, as long as the budget lasts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from .candidates import Trial, choose, run_trial
from .examples import Example, visible_examples
from .genome import DIRECT_FILE, FOLDER, CandidateFilter, Demo, Genome
from .prompting import code_of, demo_messages, lesson_tips
from .workspace import Workspace

ASK = "Reply with the complete `{file}` in one ```python code block."
STOP = ["\n```\n"]  # the answer's code block is closed: what a small model adds after it is not read
INPUTS = (
    "Write up to 4 calls of `{entry}` with typical and edge-case arguments, as Python expressions, for this "
    "task:\n\n{task}"
)
INPUTS_SCHEMA = {
    "type": "object",
    "properties": {"calls": {"type": "array", "items": {"type": "string", "maxLength": 160}, "maxItems": 4}},
    "required": ["calls"],
    "additionalProperties": False,
}


def direct_messages(
    task: dict[str, Any], genome: Genome, lessons: list[dict[str, Any]] | None
) -> list[BaseMessage]:
    """System prompt with the genome's sections, the worked examples, then the task with its stub."""
    file = task.get("solution_file") or "solution.py"
    stub = (task.get("files") or {}).get(file, "")
    shown = f"\n\n`{file}` now holds:\n```python\n{stub.strip()}\n```" if stub.strip() else ""
    ask = f"{task['instructions'].strip()}{shown}{lesson_tips(lessons)}\n\n{ASK.format(file=file)}"
    system = genome.system_prompt((FOLDER / DIRECT_FILE).read_text())
    return [SystemMessage(system), *demo_messages(genome.demos, task["id"]), HumanMessage(ask)]


def _ask(llm: BaseChatModel, messages: Sequence[BaseMessage], **options: Any) -> AIMessage | None:
    try:
        return llm.invoke(messages, **options)
    except Exception:  # noqa: BLE001 - a refused or failed call is one sample fewer
        return None


def solve_directly(
    llm: BaseChatModel,
    workspace: Workspace,
    task: dict[str, Any],
    genome: Genome,
    *,
    calls: int,
    lessons: list[dict[str, Any]] | None = None,
    retry_demos: Sequence[Demo] = (),
) -> dict[str, Any]:
    """Answer ``task`` in at most ``calls`` model calls; the episode's end as the loop's state reports it.
    ``retry_demos`` (solved cases under ``cases_when: retry``) are shown only in one more batch, asked when no
    answer passes the statement's examples; the examples then also choose between the answers."""
    entry = task["entry_point"]
    examples = visible_examples(task["instructions"], entry)
    wants_inputs = genome.filter is CandidateFilter.examples and not examples and genome.samples > 1
    k = max(1, min(genome.samples, calls - wants_inputs))
    messages = direct_messages(task, genome, lessons)
    with ThreadPoolExecutor(max_workers=k + 1) as pool:
        inputs = pool.submit(_inputs, llm, task) if wants_inputs and calls > k else None
        replies = _batch(pool, llm, messages, genome, range(k))
        probes, inputs_reply = inputs.result() if inputs else ([], None)
        how = CandidateFilter.examples if retry_demos else genome.filter
        judge = Judge(workspace, entry, examples, probes, how)
        left = calls - k - (inputs is not None)
        for batch in range(1, genome.rounds):
            if left < 1 or not judge.wants_more(_codes(replies, entry)):
                break
            seeds = range(batch * k, batch * k + min(k, left))
            replies += _batch(pool, llm, messages, genome, seeds)
            left -= len(seeds)
        if retry_demos and left > 0 and judge.wants_more(_codes(replies, entry)):
            informed = direct_messages(task, genome.with_demos(retry_demos), lessons)
            print(f"[direct] retry with {len(retry_demos)} solved cases", flush=True)
            done = calls - left - (inputs is not None)
            replies += _batch(pool, llm, informed, genome, range(done, done + min(k, left)))
    answered = [r for r in [*replies, inputs_reply] if r is not None]
    tokens = sum(r.usage_metadata["total_tokens"] if r.usage_metadata else 0 for r in answered)
    state = {"steps": len(answered), "tokens": tokens}
    codes = _codes(replies, entry)
    if not codes:
        reason = "no reply held code" if replies else "every model call failed"
        return {**state, "stop_reason": "stopped" if replies else "llm_error", "error": reason}
    workspace.write(task.get("solution_file") or "solution.py", judge.keep(codes))
    return {**state, "stop_reason": "submitted"}


def _batch(
    pool: ThreadPoolExecutor,
    llm: BaseChatModel,
    messages: Sequence[BaseMessage],
    genome: Genome,
    seeds: range,
) -> list[AIMessage]:
    """A batch of samples, asked at once (one seed each); the calls that failed left out."""
    asked = [pool.submit(_ask, llm, messages, stop=STOP, seed=i, **genome.sampling(i)) for i in seeds]
    return [r for r in (f.result() for f in asked) if r is not None]


def _codes(replies: list[AIMessage], entry: str) -> list[str]:
    return [c for c in (code_of(str(r.content), entry) for r in replies) if c]


def _inputs(llm: BaseChatModel, task: dict[str, Any]) -> tuple[list[str], AIMessage | None]:
    """Calls of the entry point the model proposes, to compare answers on (CodeT); [] when it gives none."""
    entry = task["entry_point"]
    ask = [HumanMessage(INPUTS.format(entry=entry, task=task["instructions"].strip()))]
    form = {"type": "json_schema", "json_schema": {"name": "inputs", "schema": INPUTS_SCHEMA, "strict": True}}
    reply = _ask(llm, ask, response_format=form)
    try:
        calls = json.loads(str(reply.content))["calls"] if reply else []
    except (ValueError, KeyError, TypeError):
        calls = []
    return [c for c in calls if isinstance(c, str) and c.strip().startswith(f"{entry}(")], reply


class Judge:
    """Ranks answers by the filter: each distinct answer is run once on the examples (or probes) and remembered."""

    def __init__(
        self,
        workspace: Workspace,
        entry: str,
        examples: list[Example],
        probes: list[str],
        how: CandidateFilter,
    ) -> None:
        self.workspace, self.entry, self.how = workspace, entry, how
        self.examples, self.checks = examples, [e.check for e in examples]
        self.probes = [e.call for e in examples if e.call] or probes
        self.trials: dict[str, Trial] = {}

    def wants_more(self, codes: list[str]) -> bool:
        """Whether another batch could help: the statement shows examples and no answer yet passes them all."""
        if self.how is CandidateFilter.none or not self.checks:
            return False
        return not any(t.defines and all(t.passed) for t in self._tried(codes))

    def keep(self, codes: list[str]) -> str:
        """The answer to write: the first, or the one the filter ranks best."""
        distinct = list(dict.fromkeys(codes))
        if self.how is CandidateFilter.none or (len(distinct) == 1 and not self.examples):
            print(f"[direct] kept answer 1 of {len(codes)} ({len(distinct)} distinct), unchecked", flush=True)
            return codes[0]
        trials = self._tried(distinct)
        index = choose(trials, [codes.count(code) for code in distinct])
        print(
            f"[direct] kept answer {index + 1} of {len(distinct)} distinct ({len(codes)} sampled): "
            f"{sum(trials[index].passed)}/{len(self.checks)} examples pass, {len(self.probes)} probes",
            flush=True,
        )
        return distinct[index]

    def _tried(self, codes: list[str]) -> list[Trial]:
        for code in dict.fromkeys(codes):
            if code not in self.trials:
                self.trials[code] = run_trial(self.workspace, code, self.entry, self.checks, self.probes)
        return [self.trials[code] for code in codes]
