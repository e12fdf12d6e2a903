"""Promotion judged by comparison: the judges that give :mod:`agentevo.train.judge` its evidence.

* :class:`EpisodeJudge`: agent episodes (the multi-turn tool-calling format the adapter is trained on and served in)
  through ``agentevo.compare`` on a sample of the validation split; each call draws the tasks looked at least so
  far, so interleaved rounds do not select on the same tasks, and a task looked at before lowers the threshold
  (Bonferroni over looks). Looks are counted in ``<adapters_dir>/validation_looks.json``.
* :class:`ScoreJudge`: any :class:`~agentevo.train.scoring.Scorer` (probe answers, direct prompts), the same rule
  with the exact sign test on its per-task outcomes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from random import Random

from agentevo.compare.arms import Arm, parse_arm
from agentevo.compare.plan import Plan
from agentevo.compare.run import BackendFactory, CompareProgress, compare
from agentevo.compare.stats import sign_test
from agentevo.config import AgentevoConfig
from agentevo.files import read_json, write_json_atomic
from agentevo.gateway.backends import Backend, ChatModelBackend
from agentevo.llm.supervised import AdapterServer
from agentevo.runs import PLAN_FILE, new_run_id
from agentevo.tasks import Task, load_suite
from agentevo.train.config import TrainConfig
from agentevo.train.judge import Evidence
from agentevo.train.registry import AdapterRegistry
from agentevo.train.scoring import Scorer

LOOKS_FILE = "validation_looks.json"
BASE_ARM = "base"


class ScoreJudge:
    """A scorer's per-task outcomes of both, loaded side by side into ``server``, with the exact sign test."""

    def __init__(
        self, scorer: Scorer, server: AdapterServer, registry: AdapterRegistry, config: TrainConfig
    ) -> None:
        self.scorer, self.server, self.registry, self.config = scorer, server, registry, config

    def __call__(self, incumbent: str | None, candidate: str) -> Evidence:
        for name in (incumbent, candidate):
            if name is not None:
                self.server.load_adapter(name, self.registry.path(name))
        old_name = incumbent or self.server.served_name
        new, old = self.scorer(candidate), self.scorer(old_name)
        both = [t for t in new.per_task if t in old.per_task]
        won = sum(new.per_task[t] and not old.per_task[t] for t in both)
        lost = sum(old.per_task[t] and not new.per_task[t] for t in both)
        return Evidence(
            incumbent=old_name,
            candidate=candidate,
            tasks=len(both),
            difference=(won - lost) / max(len(both), 1),
            p_value=sign_test(won, lost),
            test="exact McNemar (sign) test",
            won=won,
            lost=lost,
            alpha=self.config.promote_p,
            scores={candidate: new.rate, old_name: old.rate},
        )


class EpisodeJudge:
    """Agent episodes of the seed agent (the format the adapter is trained on) on a fresh validation sample,
    compared by ``agentevo.compare`` (paired, with its test).

    ``settings`` is the ``AgentevoConfig`` the episodes run under (its ``train`` section holds the rule and the
    registry); ``backend`` opens what an arm calls (default: the configured backbone, serving the arm's adapter).
    """

    def __init__(
        self,
        settings: AgentevoConfig,
        suite: str,
        *,
        split: str = "validation",
        backend: BackendFactory | None = None,
        progress: CompareProgress | None = None,
    ) -> None:
        self.settings, self.suite, self.split = settings, suite, split
        self.backend, self.progress = backend, progress
        self.looks_file = Path(settings.train.adapters_dir) / LOOKS_FILE

    def draw(self) -> tuple[list[Task], int]:
        """``train.validation_sample`` tasks of the split, the least looked at first (ties in a seeded order that
        changes every round), and how often the most looked-at of them was looked at before."""
        looks: dict[str, int] = read_json(self.looks_file).get("looks", {})
        rng = Random(f"{self.suite}/{self.split}/{sum(looks.values())}")
        tasks = sorted(
            load_suite(self.suite, split=self.split), key=lambda t: (looks.get(t.id, 0), rng.random())
        )
        chosen = tasks[: self.settings.train.validation_sample]
        return chosen, max((looks.get(t.id, 0) for t in chosen), default=0)

    def __call__(self, incumbent: str | None, candidate: str) -> Evidence:
        tasks, before = self.draw()
        train = self.settings.train
        arms = [
            parse_arm(f"{incumbent or BASE_ARM}=seed,adapter={incumbent or 'none'}"),
            parse_arm(f"{candidate}=seed,adapter={candidate}"),
        ]
        run_id = _planned(self.settings, self.suite, self.split, tasks, arms, train.promote_attempts)
        compared = compare(
            arms, run_id=run_id, config=self.settings, backend=self.backend, progress=self.progress
        )
        self._looked(t.id for t in tasks)
        paired = compared.paired[0]
        return Evidence(
            incumbent=arms[0].name,
            candidate=candidate,
            tasks=paired.tasks,
            difference=paired.difference,
            p_value=paired.p_value,
            test=paired.test.value,
            won=paired.won,
            lost=paired.lost,
            alpha=train.promote_p / (1 + before),
            scores={a.name: a.pass_at_1 for a in compared.arms},
            comparison=str(compared.run_dir),
        )

    def _looked(self, ids: Iterator[str]) -> None:
        saved = read_json(self.looks_file).get("looks", {})
        for task_id in ids:
            saved[task_id] = saved.get(task_id, 0) + 1
        self.looks_file.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.looks_file, {"looks": saved})


def _planned(
    settings: AgentevoConfig, suite: str, split: str, tasks: list[Task], arms: list[Arm], attempts: int
) -> str:
    """A new comparison's plan on exactly ``tasks`` (compare goes on with a saved plan); its run id."""
    run_id = new_run_id()
    plan = Plan(
        suite=suite,
        split=split,
        attempts=attempts,
        seed=0,
        tasks=[t.id for t in tasks],
        levels={t.id: t.difficulty for t in tasks},
        arms=arms,
        agents={},
    )
    folder = Path(settings.archives_dir) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / PLAN_FILE, plan.model_dump(mode="json"))
    return run_id


def live_backend(
    server: AdapterServer, backend: ChatModelBackend, registry: AdapterRegistry
) -> BackendFactory:
    """Arms served by a running server and its gateway backend (an evolution run's), the arm's adapter loaded."""

    @contextlib.contextmanager
    def serve(arm: Arm, settings: AgentevoConfig) -> Iterator[Backend]:
        name = arm.adapter or server.served_name
        if arm.adapter is not None:
            server.load_adapter(name, registry.path(name))
        backend.serve(name)
        yield backend

    return serve
