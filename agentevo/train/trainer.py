"""LoRA training with peft and TRL on the backbone's own weights: CPU or GPU, bounded by steps and by time.

SFT recipes train on TRL's prompt-completion rows with the loss on the completion (the assistant's turn) only;
DPO trains the same adapter shape on preference pairs, the reference being the base with the adapter disabled.
Checkpoints go to ``<adapters_dir>/.work/<run key>/``: a training run killed midway is resumed from its last
complete checkpoint by the next call with the same data and settings. The finished adapter is saved into a
staging folder and committed to the registry in one rename, with its lineage.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentevo.files import acquire_lock
from agentevo.progress import Log, progress
from agentevo.train.config import Recipe, TrainConfig
from agentevo.train.datasets import TRL_COLUMNS, read_card, read_rows
from agentevo.train.registry import AdapterRegistry, Lineage, base_fingerprint

WORK_DIR = ".work"
STATE_FILE = "trainer_state.json"  # written last into a checkpoint: its presence marks a complete one


class TrainError(RuntimeError):
    """Training cannot start or did not finish; the message says why and what to do."""


class TrainMetrics(BaseModel):
    """What one training call did (into the adapter's lineage, and what ``bench/train.py`` reports)."""

    steps: int
    resumed_from_step: int | None
    stopped_by: str  # max_steps | max_seconds
    seconds: float
    seconds_per_step: float
    tokens: int
    tokens_per_second: float
    train_loss: float | None
    rows: int
    trainable_parameters: int


def last_checkpoint(work: Path) -> Path | None:
    """The newest complete checkpoint in ``work``; incomplete ones (a kill while saving) are deleted."""
    complete = []
    for folder in work.glob("checkpoint-*"):
        if (folder / STATE_FILE).is_file():
            complete.append(folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return max(complete, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _settings_key(config: TrainConfig, recipe: Recipe, data_sha256: str, base_sha256: str) -> str:
    """Which interrupted run a call may resume: the same data, base and training settings."""
    fields = config.model_dump(
        mode="json",
        include={
            "lora_r",
            "lora_alpha",
            "lora_dropout",
            "target_modules",
            "learning_rate",
            "batch_size",
            "max_length",
            "dpo_beta",
            "max_steps",
            "save_steps",
            "seed",
        },
    )
    blob = json.dumps([fields, recipe.value, data_sha256, base_sha256], sort_keys=True).encode()
    return f"{recipe.value}-{data_sha256[:12]}-{hashlib.sha256(blob).hexdigest()[:8]}"


def _budget_callback(max_seconds: float) -> Any:
    """A TrainerCallback that stops training once ``max_seconds`` have passed, and notes where it started."""
    from transformers import TrainerCallback

    class Budget(TrainerCallback):
        started = 0.0
        first_step = 0
        first_tokens = 0
        timed_out = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()
            self.first_step, self.first_tokens = state.global_step, state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kwargs):
            if time.monotonic() - self.started >= max_seconds:
                self.timed_out = True
                control.should_training_stop = True
                control.should_save = True
            return control

    return Budget()


def train_dtype(torch: Any) -> tuple[Any, bool]:
    """The weights' dtype and whether the trainer runs in bf16: bfloat16 on a GPU that has it, else float32
    (the CPU's fastest, and exact; fp16 training would need loss scaling for no gain on these small models)."""
    bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return (torch.bfloat16 if bf16 else torch.float32), bf16


def _trainer(
    recipe: Recipe, model_dir: Path, rows: list[dict[str, Any]], work: Path, config: TrainConfig
) -> Any:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    gpu = torch.cuda.is_available()
    dtype, bf16 = train_dtype(torch)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    common: dict[str, Any] = dict(  # TrainingArguments' keywords, shared by both recipes' configs
        output_dir=str(work),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        seed=config.seed,
        max_length=config.max_length,
        use_cpu=not gpu,
        bf16=bf16,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
    )
    data = Dataset.from_list([{c: row[c] for c in TRL_COLUMNS[recipe]} for row in rows])
    if recipe is Recipe.dpo:
        from trl import DPOConfig, DPOTrainer

        dpo = DPOConfig(beta=config.dpo_beta, **common)
        return DPOTrainer(
            model=model, args=dpo, train_dataset=data, processing_class=tokenizer, peft_config=lora
        )
    from trl import SFTConfig, SFTTrainer

    sft = SFTConfig(completion_only_loss=True, **common)
    return SFTTrainer(model=model, args=sft, train_dataset=data, processing_class=tokenizer, peft_config=lora)


def train_adapter(
    dataset_dir: Path,
    model_dir: Path,
    registry: AdapterRegistry,
    config: TrainConfig,
    *,
    parent: str | None = None,
    log: Log = progress,
) -> Lineage:
    """Train a LoRA adapter on a dataset folder (``build_dataset``) and commit it to the registry.

    Resumes an interrupted run of the same data and settings from its last checkpoint. Raises
    :class:`TrainError` for an empty dataset, a missing base model, or a second trainer on the same run.
    """
    from agentevo.llm.model_store import offline_env

    offline_env()
    try:
        import peft  # noqa: F401
        import trl  # noqa: F401
    except ImportError as exc:
        raise TrainError(
            f"LoRA training needs the train extra ({exc}): pip install 'agentevo[train]'"
        ) from None
    card = read_card(dataset_dir)
    rows = read_rows(dataset_dir)
    if not rows:
        raise TrainError(f"the dataset {dataset_dir} has no training rows: nothing to train on")
    if not (Path(model_dir) / "config.json").is_file():
        raise TrainError(f"{model_dir} is not a model folder (no config.json); run `agentevo model fetch`")
    base_sha = base_fingerprint(Path(model_dir))
    work = registry.root / WORK_DIR / _settings_key(config, card.recipe, card.data_sha256, base_sha)
    work.mkdir(parents=True, exist_ok=True)
    lock = acquire_lock(
        Path(f"{work}.lock"),
        timeout=0,
        error=lambda _: TrainError(f"another process is training into {work} (same data and settings)"),
    )
    try:
        return _train_locked(
            Path(dataset_dir), rows, Path(model_dir), base_sha, work, registry, config, parent, log
        )
    finally:
        lock.release()


def _train_locked(
    dataset_dir: Path,
    rows: list[dict[str, Any]],
    model_dir: Path,
    base_sha: str,
    work: Path,
    registry: AdapterRegistry,
    config: TrainConfig,
    parent: str | None,
    log: Log,
) -> Lineage:
    import torch

    card = read_card(dataset_dir)
    if config.threads:
        torch.set_num_threads(config.threads)
    resume = last_checkpoint(work)
    trainer = _trainer(card.recipe, model_dir, rows, work, config)
    budget = _budget_callback(config.max_seconds)
    trainer.add_callback(budget)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    log(
        f"training a LoRA adapter ({card.recipe.value}, {len(rows)} rows, {trainable:,} trainable parameters)"
        + (f", resuming from {resume.name}" if resume else "")
    )
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    state = trainer.state
    seconds = time.monotonic() - budget.started
    steps = state.global_step - budget.first_step
    tokens = int(state.num_input_tokens_seen - budget.first_tokens)
    metrics = TrainMetrics(
        steps=state.global_step,
        resumed_from_step=budget.first_step if resume else None,
        stopped_by="max_seconds" if budget.timed_out else "max_steps",
        seconds=round(seconds, 2),
        seconds_per_step=round(seconds / max(steps, 1), 3),
        tokens=tokens,
        tokens_per_second=round(tokens / seconds, 1) if seconds > 0 else 0.0,
        train_loss=output.metrics.get("train_loss"),
        rows=len(rows),
        trainable_parameters=trainable,
    )
    staged = registry.staging()
    try:
        trainer.model.save_pretrained(staged)
        for path in staged.iterdir():  # servers run as other users
            path.chmod(0o644)
        lineage = registry.commit(
            staged,
            {
                "base_model": str(model_dir),
                "base_model_sha256": base_sha,
                "recipe": card.recipe.value,
                "dataset": str(dataset_dir.resolve()),
                "data_sha256": card.data_sha256,
                "parent": parent,
                "config": config.model_dump(mode="json"),
                "metrics": metrics.model_dump(mode="json"),
            },
        )
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    log(
        f"adapter {lineage.name}: {metrics.steps} steps in {metrics.seconds:.0f} s, loss {metrics.train_loss}"
    )
    return lineage
