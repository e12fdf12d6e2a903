"""Optional weight updates: self-training the served backbone with LoRA adapters.

Recorded gateway trajectories and the evaluator's verdicts become TRL datasets (:func:`build_dataset`); a LoRA
adapter is trained on them with peft/TRL (:func:`train_adapter`) into a registry of versioned folders with their
lineage (:class:`AdapterRegistry`); :func:`promote` hot-loads it into the running server and makes it the active
name only if it beats the active one on held-out tasks, and :func:`rollback` undoes that in one step. See
docs/train.md.
"""

from agentevo.train.config import Recipe, TrainConfig
from agentevo.train.datasets import DatasetCard, DatasetError, build_dataset
from agentevo.train.promote import promote, rollback
from agentevo.train.registry import AdapterRegistry, Decision, Lineage, RegistryError
from agentevo.train.trainer import TrainError, train_adapter

__all__ = [
    "AdapterRegistry",
    "DatasetCard",
    "DatasetError",
    "Decision",
    "Lineage",
    "Recipe",
    "RegistryError",
    "TrainConfig",
    "TrainError",
    "build_dataset",
    "promote",
    "rollback",
    "train_adapter",
]
