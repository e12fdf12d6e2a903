"""Memory-only self-improvement: the seed agent learns lessons on the train split into a fresh library, then the
held-out split is compared without and with them (``agentevo.compare``: paired, with a confidence interval and an
exact test). No weights and no code change: only the experience library grows.

    python examples/memory_learning.py                                    # the embedded model, 3 + 3 tasks
    python examples/memory_learning.py --tasks 10 --attempts 2 --base-url http://127.0.0.1:8000/v1 --model NAME
    python examples/memory_learning.py --library ~/lessons               # learn into (and compare with) your own

Lessons are proposed by the backbone reflecting on each episode and written only when a re-run of the episode's
task with the lesson passes; a small model may propose none (the summary says so). Each run starts from a new,
empty library in its run folder unless ``--library`` names one.
"""

import argparse
from pathlib import Path

from rich.console import Console

from agentevo import load_config
from agentevo.agents import seed_agent_dir
from agentevo.compare import compare, parse_arm, print_table, summary_line
from agentevo.memory.episodes import run_memory
from agentevo.orchestrate import run_suite
from agentevo.orchestrate.learning import distil_run
from agentevo.runs import RunDir
from agentevo.serving.backbone import open_backend
from agentevo.tasks import load_suite

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--tasks", type=int, default=3, help="Tasks of each split")
parser.add_argument("--attempts", type=int, default=1, help="Held-out attempts per task and arm")
parser.add_argument(
    "--library", type=Path, help="A library to learn into (default: a new one in the run folder)"
)
parser.add_argument("--base-url", help="An OpenAI-compatible endpoint instead of the embedded model")
parser.add_argument("--model", default="smollm2-135m-instruct", help="Model name the endpoint serves")
args = parser.parse_args()

config = load_config()
endpoint = ""
if args.base_url:
    config.llm = config.llm.model_copy(
        update={"backbone": "openai", "base_url": args.base_url, "model": args.model}
    )
    endpoint = f",base_url={args.base_url},model={args.model}"
run = RunDir(config.archives_dir)
library = (args.library or run.path / "memory").expanduser().resolve()
config.memory = config.memory.model_copy(update={"enabled": True, "path": library})
train = load_suite("builtin", split="train", limit=args.tasks)
agent = seed_agent_dir()

with open_backend(config) as backend, run_memory(config.memory, library, run_id=run.run_id) as memory:
    learnt = run_suite(config, train, agent_dir=agent, run=run, backend=backend, memory=memory)
    distilled = distil_run(config, memory, run, train, agent_dir=agent, backend=backend)
print(f"train: {sum(r.passed for r in learnt)}/{len(learnt)} passed; lessons proposed "
      f"{sum(len(d.proposed) for d in distilled)}, verified and written {sum(len(d.verified) for d in distilled)}")  # fmt: skip

arms = [parse_arm(f"off=seed{endpoint}"), parse_arm(f"on=seed{endpoint},memory={library}")]
result = compare(arms, suite="builtin", split="test", limit=args.tasks, attempts=args.attempts, config=config)
print_table(Console(stderr=True), result)
print(summary_line(result))
print(f"the library: {library} (agentevo memory list); the comparison: {result.run_dir / 'comparison.json'}")
