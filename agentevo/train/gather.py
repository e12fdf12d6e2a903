"""A sampling round before training: what ``agentevo finetune --sample SUITE`` gathers from the served model.

The backbone is sampled on the suite's train split by direct prompting (B-STaR: the temperature picked by probe
rounds, :func:`~agentevo.train.sampling.sampling_round`; STaR rationalisation of unsolved tasks with
``train.rationalise``), then, with ``train.proposals``, self-play (:mod:`agentevo.train.selfplay`) at the picked
temperature. Everything lands in one new run folder, which the dataset builders read like any other run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from agentevo.files import write_json_atomic
from agentevo.runs import RunDir
from agentevo.tasks import load_suite
from agentevo.tasks.spread import chosen
from agentevo.train.config import TrainConfig
from agentevo.train.sampling import SamplingRecord, model_chat, sampling_round
from agentevo.train.selfplay import SelfPlay, SelfPlayRecord

GATHERED = "gathered.json"  # in the run folder: this record


class Gathered(BaseModel):
    """What a gathering round did; written as ``gathered.json`` into its run folder."""

    suite: str
    tasks: int
    sampling: SamplingRecord
    selfplay: SelfPlayRecord | None = None


def gather(
    chat_model: Any,
    suite: str,
    evaluator: Any,
    run: RunDir,
    *,
    model: str,
    config: TrainConfig,
    limit: int | None = None,
    spread_out: bool = False,
) -> Gathered:
    """Sample the suite's train split (at most ``limit`` tasks, the first or spread over levels) and, with
    ``config.proposals``, play."""
    run.describe(command="agentevo finetune --sample", suite=suite, model=model)
    tasks = chosen(suite, "train", limit, spread_out)
    chat = model_chat(chat_model)
    sampled = sampling_round(chat, tasks, evaluator, run, model=model, config=config)
    played = None
    if config.proposals:
        play = SelfPlay(
            chat_model.invoke,
            chat,
            load_suite(suite),
            evaluator,
            run,
            model=model,
            config=config,
            temperature=sampled.temperature,
        )
        played = play()
    gathered = Gathered(suite=suite, tasks=len(tasks), sampling=sampled, selfplay=played)
    write_json_atomic(run.path / GATHERED, gathered.model_dump(mode="json"))
    return gathered


@contextlib.contextmanager
def opened_chat_model(settings: Any) -> Iterator[Any]:
    """The configured backbone's chat model (``AgentevoConfig.llm``), closed afterwards: its server ended, its
    in-process generations stopped."""
    from agentevo.llm.backbone import make_chat_model
    from agentevo.llm.local import LocalChatModel
    from agentevo.llm.supervised import served_by

    chat_model = make_chat_model(settings.llm, settings.cache_dir)
    try:
        yield chat_model
    finally:
        server = served_by(chat_model)
        if server is not None:
            server.stop()
        if isinstance(chat_model, LocalChatModel):
            chat_model.close()
