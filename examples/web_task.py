"""A web task: the web seed agent plays a MiniWoB++ page in a sandboxed browser, and the page itself scores it.

    python examples/web_task.py                                  # the embedded model on click-button
    python examples/web_task.py --task enter-text --base-url http://127.0.0.1:8000/v1 --model NAME

The agent runs in its own sandbox and acts only through the browser tools on the page of a second, network-less
sandbox; the reward is read from the page by the host, never taken from the agent.
"""

import argparse

from agentevo import load_config
from agentevo.agents.episode import EpisodeBudget, web_seed_agent_dir
from agentevo.orchestrate import run_suite
from agentevo.runs import RunDir
from agentevo.tasks import load_suite

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--task", default="click-button", help="MiniWoB++ task(s), comma-separated")
parser.add_argument("--base-url", help="An OpenAI-compatible endpoint instead of the embedded model")
parser.add_argument("--model", default="smollm2-135m-instruct", help="Model name the endpoint serves")
parser.add_argument("--max-steps", type=int, default=4, help="Model calls per episode")
args = parser.parse_args()

config = load_config()
if args.base_url:
    config.llm = config.llm.model_copy(
        update={"backbone": "openai", "base_url": args.base_url, "model": args.model}
    )
tasks = load_suite(f"miniwob:{args.task}")
run = RunDir(config.archives_dir)
rows = run_suite(
    config, tasks, agent_dir=web_seed_agent_dir(), run=run, agent_id="web_seed", parallel=1,
    budget=EpisodeBudget(max_steps=args.max_steps),
)  # fmt: skip
for row in rows:
    print(f"{row.task_id}: passed={row.passed} score={row.score:.2f} tokens={row.tokens}")
print(f"results: {run.path}")
