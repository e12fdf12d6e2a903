"""Interleaving weight updates with code evolution: every N admitted nodes, fine-tune on what was gathered.

A separated hook for the evolution loop (``train.interleave_every``): the loop calls
:meth:`SelfTraining.on_admitted` with its count of admitted nodes and the run folders whose calls were recorded;
every N admitted nodes this builds a dataset, trains an adapter and promotes it if its judge (agent episodes on a
fresh validation sample, :mod:`agentevo.compare.promotion`) finds it better than the active model. Runs served afterwards record which adapter served them (the ``model`` of each recorded call).
Training shares the cores with the server: call it between evaluations, not during them. With ``state`` (a JSON
file in the run folder) the count survives a restart, so a resumed run neither repeats nor skips a round.
"""

from __future__ import annotations

from pathlib import Path

from agentevo.files import read_json, write_json_atomic
from agentevo.llm.supervised import AdapterServer
from agentevo.progress import Log, progress
from agentevo.train.config import Recipe, TrainConfig
from agentevo.train.datasets import DatasetError, build_dataset
from agentevo.train.judge import Judge
from agentevo.train.promote import ServesByName, promote
from agentevo.train.registry import AdapterRegistry, Decision, base_fingerprint
from agentevo.train.trainer import train_adapter


class SelfTraining:
    """Counts admitted nodes and runs a fine-tune-and-promote round every ``config.interleave_every`` of them."""

    def __init__(
        self,
        config: TrainConfig,
        model_dir: Path,
        server: AdapterServer | None,
        judge: Judge,
        *,
        backend: ServesByName | None = None,
        recipe: Recipe = Recipe.rft,
        log: Log = progress,
        state: Path | None = None,
    ) -> None:
        self.config, self.model_dir, self.server, self.judge = config, Path(model_dir), server, judge
        self.backend, self.recipe, self.log, self.state = backend, recipe, log, state
        self.registry = AdapterRegistry(config.adapters_dir, config.name)
        saved = read_json(state) if state is not None else {}
        self._next = saved.get("next_at", config.interleave_every or 0)

    def due(self, admitted: int) -> bool:
        return bool(self.config.interleave_every) and admitted >= self._next

    def on_admitted(self, admitted: int, run_dirs: list[Path]) -> Decision | None:
        """A round when ``admitted`` reached the next multiple; None when not due or nothing could be trained."""
        if not self.due(admitted):
            return None
        self._next = admitted + (self.config.interleave_every or 0)
        decision = self._round(admitted, run_dirs)
        if self.state is not None:  # after the round: a run killed during one does it again
            write_json_atomic(self.state, {"next_at": self._next})
        return decision

    def _round(self, admitted: int, run_dirs: list[Path]) -> Decision | None:
        try:
            dataset = build_dataset(run_dirs, self.recipe, self.registry.root / "datasets", self.config)
        except (DatasetError, ValueError) as exc:
            self.log(f"self-training skipped at {admitted} admitted nodes: {exc}")
            return None
        lineage = train_adapter(
            dataset, self.model_dir, self.registry, self.config, parent=self.registry.active()
        )
        return promote(
            self.registry,
            lineage.name,
            self.judge,
            base_sha256=base_fingerprint(self.model_dir),
            config=self.config,
            server=self.server,
            backend=self.backend,
        )
