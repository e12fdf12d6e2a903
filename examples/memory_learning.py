"""Memory-only self-improvement: the seed agent learns lessons on the train split, then the held-out split is run
without and with them. No weights and no code change: only the experience library grows.

    python examples/memory_learning.py                                    # the embedded model, 3 + 3 tasks
    python examples/memory_learning.py --tasks 10 --base-url http://127.0.0.1:8000/v1 --model NAME

Lessons are proposed by the backbone reflecting on each episode and written only when a re-run of the episode's
task with the lesson passes; a small model may propose none (the summary says so).
"""

import argparse

from agentevo import load_config
from agentevo.agents import seed_agent_dir
from agentevo.gateway.launch import open_backend
from agentevo.memory.episodes import run_memory
from agentevo.orchestrate import run_suite
from agentevo.orchestrate.learning import distil_run
from agentevo.runs import RunDir
from agentevo.tasks import load_suite

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--tasks", type=int, default=3, help="Tasks of each split")
parser.add_argument("--base-url", help="An OpenAI-compatible endpoint instead of the embedded model")
parser.add_argument("--model", default="smollm2-135m-instruct", help="Model name the endpoint serves")
args = parser.parse_args()

config = load_config()
if args.base_url:
    config.llm = config.llm.model_copy(
        update={"backbone": "openai", "base_url": args.base_url, "model": args.model}
    )
config.memory.enabled = True
train = load_suite("builtin", split="train", limit=args.tasks)
held_out = load_suite("builtin", split="test", limit=args.tasks)
agent = seed_agent_dir()


def pass_rate(rows) -> str:
    return f"{sum(r.passed for r in rows)}/{len(rows)}"


with open_backend(config) as backend:
    before = run_suite(config, held_out, agent_dir=agent, run=RunDir(config.archives_dir), backend=backend)
    run = RunDir(config.archives_dir)
    with run_memory(config.memory, config.archives_dir / "memory", run_id=run.run_id) as memory:
        learnt = run_suite(config, train, agent_dir=agent, run=run, backend=backend, memory=memory)
        distilled = distil_run(config, memory, run, train, agent_dir=agent, backend=backend)
        after = run_suite(
            config, held_out, agent_dir=agent, run=RunDir(config.archives_dir), backend=backend, memory=memory
        )
        used = sorted(memory.used)
print(f"train: {pass_rate(learnt)} passed; lessons proposed {sum(len(d.proposed) for d in distilled)}, "
      f"verified and written {sum(len(d.verified) for d in distilled)}")  # fmt: skip
print(
    f"held-out without memory: {pass_rate(before)}; with memory: {pass_rate(after)} ({len(used)} lessons read)"
)
print(f"the library: {config.memory.path or config.archives_dir / 'memory'} (agentevo memory list)")
